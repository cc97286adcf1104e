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

// The brute-force model. Policies are drawn from small vocabularies (three accounts, two
// repositories, three actions, two source addresses) and decided by restating AWS's
// policy-evaluation rules as DESIGN §4 gives them, statement by statement, without the
// evaluator's structure: a statement applies when its principal, action, resource and condition
// all match; an applicable Deny anywhere wins (but an account's root always manages its own
// resource policies); inside the owner's account an Allow from either side suffices (a resource
// statement that names only the account delegates to the account's identity policies); across
// accounts both sides must allow; anonymous callers need a resource statement for everyone.

const ACCOUNTS: [&str; 3] = ["123456789012", "111111111111", "222222222222"];
const OWNER: usize = 0;
const ACTIONS: [Action; 3] = [Action::BatchGetImage, Action::PutImage, Action::SetRepositoryPolicy];
const REPOSITORIES: [&str; 2] = ["app", "lib"];
const ADDRESSES: [&str; 2] = ["10.1.2.3", "192.168.0.9"];

fn repository_arn(repository: usize) -> String {
    format!("arn:aws:ecr:us-east-1:{}:repository/{}", ACCOUNTS[OWNER], REPOSITORIES[repository])
}

/// Who a resource-side statement names.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anyone,
    Account(usize),
    User(usize),
}

/// What a statement's Resource says, if it says anything.
#[derive(Debug, Clone, Copy)]
enum Resource {
    /// No Resource: in a repository or registry policy, the resources it is attached to.
    Absent,
    Everything,
    /// One repository by its ARN.
    Exactly(usize),
    /// `arn:aws:ecr:*:<owner>:repository/a*`: repositories whose names start with `a`.
    StartsWithA,
}

/// A condition on the source address.
#[derive(Debug, Clone, Copy)]
enum OnAddress {
    None,
    /// IpAddress aws:SourceIp 10.0.0.0/8.
    InTen,
    /// NotIpAddress aws:SourceIp 10.0.0.0/8.
    OutsideTen,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    allow: bool,
    who: Who,
    /// An index into ACTIONS, or None for `ecr:*`.
    action: Option<usize>,
    resource: Resource,
    condition: OnAddress,
}

/// The caller: anonymous, an account's root, or that account's user `u`.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    Root(usize),
    User(usize),
}

fn statement_json(rule: &Rule, with_principal: bool) -> String {
    let mut fields = vec![format!(r#""Effect":"{}""#, if rule.allow { "Allow" } else { "Deny" })];
    if with_principal {
        let principal = match rule.who {
            Who::Anyone => r#""*""#.to_owned(),
            Who::Account(a) => format!(r#"{{"AWS":"{}"}}"#, ACCOUNTS[a]),
            Who::User(a) => format!(r#"{{"AWS":"arn:aws:iam::{}:user/u"}}"#, ACCOUNTS[a]),
        };
        fields.push(format!(r#""Principal":{principal}"#));
    }
    let action = rule.action.map_or("ecr:*", |a| ACTIONS[a].name());
    fields.push(format!(r#""Action":"{action}""#));
    match rule.resource {
        Resource::Absent => {}
        Resource::Everything => fields.push(r#""Resource":"*""#.to_owned()),
        Resource::Exactly(r) => fields.push(format!(r#""Resource":"{}""#, repository_arn(r))),
        Resource::StartsWithA => {
            fields.push(format!(r#""Resource":"arn:aws:ecr:*:{}:repository/a*""#, ACCOUNTS[OWNER]));
        }
    }
    match rule.condition {
        OnAddress::None => {}
        OnAddress::InTen => {
            fields.push(r#""Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#.to_owned())
        }
        OnAddress::OutsideTen => {
            fields.push(r#""Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#.to_owned());
        }
    }
    format!("{{{}}}", fields.join(","))
}

fn policy_json(rules: &[Rule], with_principal: bool) -> String {
    let statements: Vec<String> = rules.iter().map(|r| statement_json(r, with_principal)).collect();
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

/// One request of the model.
#[derive(Debug, Clone, Copy)]
struct Ask {
    caller: Caller,
    action: usize,
    repository: usize,
    address: usize,
}

/// Whether a statement's action, resource and condition match the request (its principal is
/// judged separately, by side).
fn matches(rule: &Rule, ask: &Ask) -> bool {
    let action = rule.action.is_none_or(|a| a == ask.action);
    let resource = match rule.resource {
        Resource::Absent | Resource::Everything => true,
        Resource::Exactly(r) => r == ask.repository,
        Resource::StartsWithA => REPOSITORIES[ask.repository].starts_with('a'),
    };
    let in_ten = ADDRESSES[ask.address].starts_with("10.");
    let condition = match rule.condition {
        OnAddress::None => true,
        OnAddress::InTen => in_ten,
        OnAddress::OutsideTen => !in_ten,
    };
    action && resource && condition
}

/// How a resource-side statement names the caller: (the caller itself, only its account).
fn names(who: Who, caller: Caller) -> (bool, bool) {
    match (who, caller) {
        (Who::Anyone, _) => (true, false),
        (Who::Account(a), Caller::Root(c)) => (a == c, false),
        (Who::Account(a), Caller::User(c)) => (false, a == c),
        (Who::User(a), Caller::User(c)) => (a == c, false),
        _ => (false, false),
    }
}

fn model(ask: &Ask, identity: &[Rule], repository: &[Rule], registry: &[Rule]) -> bool {
    if matches!(ask.caller, Caller::Root(OWNER)) && ACTIONS[ask.action] == Action::SetRepositoryPolicy {
        return true;
    }
    let identity: Vec<&Rule> = match ask.caller {
        Caller::User(_) => identity.iter().filter(|r| matches(r, ask)).collect(),
        _ => Vec::new(),
    };
    // Resource-side statements that apply and name the caller, with how they name it.
    let resource: Vec<(&Rule, bool)> = repository
        .iter()
        .chain(registry)
        .filter(|r| matches(r, ask))
        .filter_map(|r| match names(r.who, ask.caller) {
            (true, _) => Some((r, true)),
            (false, true) => Some((r, false)),
            (false, false) => None,
        })
        .collect();
    if identity.iter().any(|r| !r.allow) || resource.iter().any(|(r, _)| !r.allow) {
        return false;
    }
    let identity_allows = matches!(ask.caller, Caller::Root(_)) || identity.iter().any(|r| r.allow);
    let names_caller = resource.iter().any(|(r, itself)| r.allow && *itself);
    let names_account = resource.iter().any(|(r, _)| r.allow);
    match ask.caller {
        Caller::Anonymous => resource.iter().any(|(r, _)| r.allow && matches!(r.who, Who::Anyone)),
        Caller::Root(OWNER) | Caller::User(OWNER) => identity_allows || names_caller,
        _ => identity_allows && names_account,
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

fn condition() -> impl Strategy<Value = OnAddress> {
    prop_oneof![Just(OnAddress::None), Just(OnAddress::InTen), Just(OnAddress::OutsideTen)]
}

fn action() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![Just(None), (0..3usize).prop_map(Some)]
}

/// Statements of a policy attached to a user: a Resource always, no principal.
fn identity_rule() -> impl Strategy<Value = Rule> {
    let resource = prop_oneof![
        Just(Resource::Everything),
        (0..2usize).prop_map(Resource::Exactly),
        Just(Resource::StartsWithA)
    ];
    (any::<bool>(), action(), resource, condition()).prop_map(|(allow, action, resource, condition)| Rule {
        allow,
        who: Who::Anyone,
        action,
        resource,
        condition,
    })
}

/// Statements of a repository or registry policy: a principal; a Resource or none.
fn resource_rule() -> impl Strategy<Value = Rule> {
    let resource = prop_oneof![
        Just(Resource::Absent),
        Just(Resource::Everything),
        (0..2usize).prop_map(Resource::Exactly),
        Just(Resource::StartsWithA)
    ];
    (any::<bool>(), who(), action(), resource, condition()).prop_map(
        |(allow, who, action, resource, condition)| Rule { allow, who, action, resource, condition },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn authorize_agrees_with_the_brute_force_model(
        identity in proptest::collection::vec(identity_rule(), 0..3),
        repository in proptest::collection::vec(resource_rule(), 0..3),
        registry in proptest::collection::vec(resource_rule(), 0..3),
        caller in caller(),
        action in 0..3usize,
        repository_index in 0..2usize,
        address in 0..2usize,
    ) {
        let parsed = |rules: &[Rule], kind: PolicyKind| {
            (!rules.is_empty()).then(|| {
                parse(&policy_json(rules, kind == PolicyKind::Resource), kind).expect("a generated policy parses")
            })
        };
        let identity_policy = parsed(&identity, PolicyKind::Identity);
        let repository_policy = parsed(&repository, PolicyKind::Resource);
        let registry_policy = parsed(&registry, PolicyKind::Resource);
        let principal = match caller {
            Caller::Anonymous => Principal::Anonymous,
            Caller::Root(a) => Principal::Root { account: ACCOUNTS[a].parse().expect("account") },
            Caller::User(a) => Principal::User { account: ACCOUNTS[a].parse().expect("account"), name: "u".to_owned() },
        };
        let owner = ACCOUNTS[OWNER].parse().expect("account");
        let context = ContextKeys::from([("aws:sourceip".to_owned(), vec![ADDRESSES[address].to_owned()])]);
        let arn = repository_arn(repository_index);
        let request = AuthzRequest { principal: &principal, action: ACTIONS[action], resource_account: &owner, resource_arn: &arn, context: &context };
        let identities: Vec<_> = identity_policy.into_iter().collect();
        let policies = Policies { identity: &identities, resource: repository_policy.as_ref(), registry: registry_policy.as_ref() };
        let decision = authorize(&request, &policies);
        let ask = Ask { caller, action, repository: repository_index, address };
        prop_assert_eq!(decision == Decision::Allow, model(&ask, &identity, &repository, &registry), "{:?}", decision);
    }
}
