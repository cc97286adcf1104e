//! Property tests: the parsers of untrusted input never panic, and the authorization function
//! agrees with a small brute-force model of DESIGN's rules on random policies.

use proptest::prelude::*;

use crate::policy::{PolicyKind, parse};
use crate::sigv4::parse_authorization;
use crate::{Action, AuthzRequest, ContextKeys, Decision, Policies, Principal, authorize};

const SEED_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow",
 "Principal":{"AWS":["arn:aws:iam::111111111111:root","222222222222"]},"Action":["ecr:BatchGetImage","ecr:*"],
 "Resource":"arn:aws:ecr:*:123456789012:repository/x/*",
 "Condition":{"StringEquals":{"aws:PrincipalAccount":["111111111111"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
const SEED_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/ecr/aws4_request, \
    SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=d72bc61b91243dc29bcc1122ae7045e1ddf902348d8a908f4dceb09adced8d3d";

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn policy_parser_never_panics(text in "\\PC{0,400}") {
        let _ = parse(&text, PolicyKind::Resource);
        let _ = parse(&text, PolicyKind::Identity);
    }

    #[test]
    fn mutated_policies_never_panic(flips in proptest::collection::vec((0..SEED_POLICY.len(), any::<u8>()), 1..10)) {
        let mut bytes = SEED_POLICY.as_bytes().to_vec();
        for (at, value) in flips {
            bytes[at] = value;
        }
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = parse(&text, PolicyKind::Resource);
        }
    }

    #[test]
    fn sigv4_header_parser_never_panics(text in "\\PC{0,300}", cut in 0..SEED_AUTH.len()) {
        let _ = parse_authorization(&text);
        let _ = parse_authorization(&SEED_AUTH[..cut]);
        let _ = parse_authorization(&format!("AWS4-HMAC-SHA256 {text}"));
    }
}

// The brute-force model: a policy is a list of (effect, principal, action) triples over tiny
// vocabularies, decided by restating DESIGN's rules as plainly as possible.

const ACCOUNTS: [&str; 3] = ["123456789012", "111111111111", "222222222222"];
const OWNER: &str = "123456789012";
const ACTIONS: [Action; 3] = [Action::BatchGetImage, Action::PutImage, Action::BatchDeleteImage];
const REPO: &str = "arn:aws:ecr:us-east-1:123456789012:repository/app";

#[derive(Debug, Clone, Copy)]
enum Who {
    Anyone,
    Account(usize),
    User(usize),
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    allow: bool,
    who: Who,
    action: usize,
}

fn principal_json(who: Who) -> String {
    match who {
        Who::Anyone => r#""*""#.to_owned(),
        Who::Account(a) => format!(r#"{{"AWS":"{}"}}"#, ACCOUNTS[a]),
        Who::User(a) => format!(r#"{{"AWS":"arn:aws:iam::{}:user/u"}}"#, ACCOUNTS[a]),
    }
}

fn resource_policy(rules: &[Rule]) -> String {
    let statements: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                r#"{{"Effect":"{}","Principal":{},"Action":"{}"}}"#,
                if r.allow { "Allow" } else { "Deny" },
                principal_json(r.who),
                ACTIONS[r.action].name()
            )
        })
        .collect();
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

fn identity_policy(rules: &[(bool, usize)]) -> String {
    let statements: Vec<String> = rules
        .iter()
        .map(|(allow, action)| {
            format!(
                r#"{{"Effect":"{}","Action":"{}","Resource":"*"}}"#,
                if *allow { "Allow" } else { "Deny" },
                ACTIONS[*action].name()
            )
        })
        .collect();
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

/// The caller: anonymous, an account's root, or that account's user `u`.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    Root(usize),
    User(usize),
}

fn model(caller: Caller, action: usize, resource: &[Rule], identity: &[(bool, usize)]) -> bool {
    // Does a resource rule name this caller: specifically, or only through its account?
    let names = |who: Who| -> (bool, bool) {
        match (who, caller) {
            (Who::Anyone, _) => (true, false),
            (Who::Account(a), Caller::Root(c)) => (a == c, false),
            (Who::Account(a), Caller::User(c)) => (false, a == c),
            (Who::User(a), Caller::User(c)) => (a == c, false),
            _ => (false, false),
        }
    };
    let resource_rules: Vec<(bool, bool, bool)> = resource
        .iter()
        .filter(|r| r.action == action)
        .map(|r| {
            let (specific, account) = names(r.who);
            (r.allow, specific, account)
        })
        .filter(|(_, specific, account)| *specific || *account)
        .collect();
    let identity_rules: Vec<bool> = match caller {
        Caller::User(_) => identity.iter().filter(|(_, a)| *a == action).map(|(allow, _)| *allow).collect(),
        _ => Vec::new(),
    };
    if resource_rules.iter().any(|(allow, _, _)| !allow) || identity_rules.iter().any(|allow| !allow) {
        return false;
    }
    let resource_specific = resource_rules.iter().any(|(_, specific, _)| *specific);
    let resource_any = !resource_rules.is_empty();
    let identity_allows = matches!(caller, Caller::Root(_)) || identity_rules.iter().any(|allow| *allow);
    match caller {
        Caller::Anonymous => resource_specific,
        Caller::Root(0) | Caller::User(0) => identity_allows || resource_specific,
        _ => identity_allows && resource_any,
    }
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::Anyone), (0..3usize).prop_map(Who::Account), (0..3usize).prop_map(Who::User)]
}

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![
        Just(Caller::Anonymous),
        (0..3usize).prop_map(Caller::Root),
        (0..3usize).prop_map(Caller::User)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn authorize_agrees_with_the_brute_force_model(
        resource in proptest::collection::vec((any::<bool>(), who(), 0..3usize).prop_map(|(allow, who, action)| Rule { allow, who, action }), 0..4),
        identity in proptest::collection::vec((any::<bool>(), 0..3usize), 0..3),
        caller in caller(),
        action in 0..3usize,
    ) {
        let resource_policy = (!resource.is_empty())
            .then(|| parse(&resource_policy(&resource), PolicyKind::Resource).expect("generated resource policy parses"));
        let identity_policy = (!identity.is_empty())
            .then(|| parse(&identity_policy(&identity), PolicyKind::Identity).expect("generated identity policy parses"));
        let principal = match caller {
            Caller::Anonymous => Principal::Anonymous,
            Caller::Root(a) => Principal::Root { account: ACCOUNTS[a].parse().expect("account") },
            Caller::User(a) => Principal::User { account: ACCOUNTS[a].parse().expect("account"), name: "u".to_owned() },
        };
        let owner = OWNER.parse().expect("account");
        let context = ContextKeys::new();
        let request = AuthzRequest { principal: &principal, action: ACTIONS[action], resource_account: &owner, resource_arn: REPO, context: &context };
        let identities: Vec<_> = identity_policy.into_iter().collect();
        let decision = authorize(&request, &Policies { identity: &identities, resource: resource_policy.as_ref(), registry: None });
        prop_assert_eq!(decision == Decision::Allow, model(caller, action, &resource, &identity));
    }
}
