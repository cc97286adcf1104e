//! The one authorization function. Every request on every surface becomes an [`AuthzRequest`]
//! and is decided here, so no route can forget a check or apply a different rule.

use berth_core::AccountId;

use crate::Principal;
use crate::policy::{Effect, Policy, Statement};
use crate::policy_eval::{ContextKeys, Named, action_and_resource_match, conditions_hold, principal_named};

/// The `ecr:*` actions berth authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    BatchCheckLayerAvailability,
    BatchDeleteImage,
    BatchGetImage,
    CompleteLayerUpload,
    CreateRepository,
    CreateRepositoryCreationTemplate,
    DeleteRepository,
    DeleteRepositoryCreationTemplate,
    DescribeRepositoryCreationTemplates,
    UpdateRepositoryCreationTemplate,
    DescribeImages,
    DescribeRepositories,
    GetAuthorizationToken,
    GetDownloadUrlForLayer,
    InitiateLayerUpload,
    ListImages,
    ListTagsForResource,
    PutImage,
    PutImageScanningConfiguration,
    PutImageTagMutability,
    TagResource,
    UntagResource,
    UploadLayerPart,
    DescribeRegistry,
    SetRepositoryPolicy,
    GetRepositoryPolicy,
    DeleteRepositoryPolicy,
    PutRegistryPolicy,
    GetRegistryPolicy,
    DeleteRegistryPolicy,
    PutLifecyclePolicy,
    GetLifecyclePolicy,
    DeleteLifecyclePolicy,
    StartLifecyclePolicyPreview,
    GetLifecyclePolicyPreview,
    UpdateImageStorageClass,
    StartImageScan,
    DescribeImageScanFindings,
    PutRegistryScanningConfiguration,
    GetRegistryScanningConfiguration,
    BatchGetRepositoryScanningConfiguration,
}

impl Action {
    /// Every action berth authorizes.
    pub const ALL: [Action; 41] = [
        Self::BatchCheckLayerAvailability,
        Self::BatchDeleteImage,
        Self::BatchGetImage,
        Self::CompleteLayerUpload,
        Self::CreateRepository,
        Self::CreateRepositoryCreationTemplate,
        Self::DeleteRepository,
        Self::DeleteRepositoryCreationTemplate,
        Self::DescribeRepositoryCreationTemplates,
        Self::UpdateRepositoryCreationTemplate,
        Self::DescribeImages,
        Self::DescribeRepositories,
        Self::GetAuthorizationToken,
        Self::GetDownloadUrlForLayer,
        Self::InitiateLayerUpload,
        Self::ListImages,
        Self::ListTagsForResource,
        Self::PutImage,
        Self::PutImageScanningConfiguration,
        Self::PutImageTagMutability,
        Self::TagResource,
        Self::UntagResource,
        Self::UploadLayerPart,
        Self::DescribeRegistry,
        Self::SetRepositoryPolicy,
        Self::GetRepositoryPolicy,
        Self::DeleteRepositoryPolicy,
        Self::PutRegistryPolicy,
        Self::GetRegistryPolicy,
        Self::DeleteRegistryPolicy,
        Self::PutLifecyclePolicy,
        Self::GetLifecyclePolicy,
        Self::DeleteLifecyclePolicy,
        Self::StartLifecyclePolicyPreview,
        Self::GetLifecyclePolicyPreview,
        Self::UpdateImageStorageClass,
        Self::StartImageScan,
        Self::DescribeImageScanFindings,
        Self::PutRegistryScanningConfiguration,
        Self::GetRegistryScanningConfiguration,
        Self::BatchGetRepositoryScanningConfiguration,
    ];

    /// The action named `name` (`ecr:PutImage`, any case), if berth authorizes it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Whether the action reads, replaces or deletes a repository or registry policy.
    pub fn manages_resource_policy(self) -> bool {
        matches!(
            self,
            Self::SetRepositoryPolicy
                | Self::GetRepositoryPolicy
                | Self::DeleteRepositoryPolicy
                | Self::PutRegistryPolicy
                | Self::GetRegistryPolicy
                | Self::DeleteRegistryPolicy
        )
    }

    /// The action's name as written in policies.
    pub fn name(self) -> &'static str {
        match self {
            Self::BatchCheckLayerAvailability => "ecr:BatchCheckLayerAvailability",
            Self::BatchDeleteImage => "ecr:BatchDeleteImage",
            Self::BatchGetImage => "ecr:BatchGetImage",
            Self::CompleteLayerUpload => "ecr:CompleteLayerUpload",
            Self::CreateRepository => "ecr:CreateRepository",
            Self::CreateRepositoryCreationTemplate => "ecr:CreateRepositoryCreationTemplate",
            Self::DeleteRepository => "ecr:DeleteRepository",
            Self::DeleteRepositoryCreationTemplate => "ecr:DeleteRepositoryCreationTemplate",
            Self::DescribeRepositoryCreationTemplates => "ecr:DescribeRepositoryCreationTemplates",
            Self::UpdateRepositoryCreationTemplate => "ecr:UpdateRepositoryCreationTemplate",
            Self::DescribeImages => "ecr:DescribeImages",
            Self::DescribeRepositories => "ecr:DescribeRepositories",
            Self::GetAuthorizationToken => "ecr:GetAuthorizationToken",
            Self::GetDownloadUrlForLayer => "ecr:GetDownloadUrlForLayer",
            Self::InitiateLayerUpload => "ecr:InitiateLayerUpload",
            Self::ListImages => "ecr:ListImages",
            Self::ListTagsForResource => "ecr:ListTagsForResource",
            Self::PutImageScanningConfiguration => "ecr:PutImageScanningConfiguration",
            Self::PutImageTagMutability => "ecr:PutImageTagMutability",
            Self::TagResource => "ecr:TagResource",
            Self::UntagResource => "ecr:UntagResource",
            Self::DescribeRegistry => "ecr:DescribeRegistry",
            Self::SetRepositoryPolicy => "ecr:SetRepositoryPolicy",
            Self::GetRepositoryPolicy => "ecr:GetRepositoryPolicy",
            Self::DeleteRepositoryPolicy => "ecr:DeleteRepositoryPolicy",
            Self::PutRegistryPolicy => "ecr:PutRegistryPolicy",
            Self::GetRegistryPolicy => "ecr:GetRegistryPolicy",
            Self::DeleteRegistryPolicy => "ecr:DeleteRegistryPolicy",
            Self::PutImage => "ecr:PutImage",
            Self::UploadLayerPart => "ecr:UploadLayerPart",
            Self::PutLifecyclePolicy => "ecr:PutLifecyclePolicy",
            Self::GetLifecyclePolicy => "ecr:GetLifecyclePolicy",
            Self::DeleteLifecyclePolicy => "ecr:DeleteLifecyclePolicy",
            Self::StartLifecyclePolicyPreview => "ecr:StartLifecyclePolicyPreview",
            Self::GetLifecyclePolicyPreview => "ecr:GetLifecyclePolicyPreview",
            Self::UpdateImageStorageClass => "ecr:UpdateImageStorageClass",
            Self::StartImageScan => "ecr:StartImageScan",
            Self::DescribeImageScanFindings => "ecr:DescribeImageScanFindings",
            Self::PutRegistryScanningConfiguration => "ecr:PutRegistryScanningConfiguration",
            Self::GetRegistryScanningConfiguration => "ecr:GetRegistryScanningConfiguration",
            Self::BatchGetRepositoryScanningConfiguration => "ecr:BatchGetRepositoryScanningConfiguration",
        }
    }
}

/// One question: may `principal` perform `action` on the resource named `resource_arn`, owned
/// by `resource_account`, under these policies and this request context?
#[derive(Debug, Clone)]
pub struct AuthzRequest<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub resource_account: &'a AccountId,
    pub resource_arn: &'a str,
    /// Context keys the caller knows (`aws:SourceIp`, `aws:SecureTransport`, resource tags),
    /// lower-cased. Keys about the principal and the time are added here.
    pub context: &'a ContextKeys,
}

/// The policies that bear on a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policies<'a> {
    /// Policies attached to the calling user.
    pub identity: &'a [Policy],
    /// The repository's policy.
    pub resource: Option<&'a Policy>,
    /// The resource account's registry policy.
    pub registry: Option<&'a Policy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the message AWS would give.
    Deny(String),
}

/// The request's context with the keys AWS derives from the request itself: the time, the
/// principal, the resource's account, and that no AWS service is involved.
fn request_keys(request: &AuthzRequest<'_>) -> ContextKeys {
    let mut keys = request.context.clone();
    let mut set = |k: &str, v: String| {
        keys.insert(k.to_owned(), vec![v]);
    };
    set("aws:currenttime", crate::time::iso8601(std::time::SystemTime::now()));
    set("aws:epochtime", crate::time::unix_seconds(std::time::SystemTime::now()).to_string());
    set("aws:resourceaccount", request.resource_account.to_string());
    set("aws:viaawsservice", "false".to_owned());
    set("aws:principalisawsservice", "false".to_owned());
    let principal = request.principal;
    match principal {
        Principal::Anonymous => {
            set("aws:principaltype", "Anonymous".to_owned());
        }
        Principal::Root { account } => {
            set("aws:principalaccount", account.to_string());
            set("aws:principalarn", principal.arn());
            set("aws:principaltype", "Account".to_owned());
        }
        Principal::User { account, name } => {
            set("aws:principalaccount", account.to_string());
            set("aws:principalarn", principal.arn());
            set("aws:principaltype", "User".to_owned());
            set("aws:username", name.rsplit('/').next().unwrap_or(name).to_owned());
        }
    }
    keys
}

/// Decides a request, as DESIGN states it: an explicit Deny anywhere wins (except against an
/// account's root managing its own resource policies, so that a policy can always be undone); inside one account
/// an Allow from an identity policy or a resource policy naming the caller suffices; across
/// accounts both the caller's identity side and a resource policy must allow. An account's
/// root holds every identity permission, so its requests need only the resource side when
/// they cross accounts. Anonymous callers need a resource policy granting `"*"`.
pub fn authorize(request: &AuthzRequest<'_>, policies: &Policies<'_>) -> Decision {
    if request.action.manages_resource_policy()
        && matches!(request.principal, Principal::Root { account } if account == request.resource_account)
    {
        // An account's root can always read, replace and delete the policies on its own
        // resources, whatever they say: no policy can lock an owner out of undoing it.
        return Decision::Allow;
    }
    let keys = request_keys(request);
    let action = request.action.name();
    let applies = |st: &Statement| {
        action_and_resource_match(st, action, request.resource_arn) && conditions_hold(st, &keys)
    };

    let identity: Vec<&Statement> = match request.principal {
        Principal::User { .. } => {
            policies.identity.iter().flat_map(|p| &p.statements).filter(|s| applies(s)).collect()
        }
        _ => Vec::new(),
    };
    // Resource-side statements that apply, with how specifically they name the caller.
    let resource: Vec<(&Statement, Named)> = policies
        .resource
        .into_iter()
        .chain(policies.registry)
        .flat_map(|p| &p.statements)
        .filter(|s| applies(s))
        .map(|s| (s, s.principal.as_ref().map_or(Named::No, |m| principal_named(m, request.principal))))
        .filter(|(_, named)| *named != Named::No)
        .collect();

    let denied = identity.iter().any(|s| s.effect == Effect::Deny)
        || resource.iter().any(|(s, _)| s.effect == Effect::Deny);
    let refuse = |why: &str| {
        Decision::Deny(format!(
            "User: {} is not authorized to perform: {action} on resource: {}{why}",
            request.principal.arn(),
            request.resource_arn
        ))
    };
    if denied {
        return refuse(" with an explicit deny");
    }
    let identity_allows = matches!(request.principal, Principal::Root { .. })
        || identity.iter().any(|s| s.effect == Effect::Allow);
    let resource_names = resource.iter().filter(|(s, _)| s.effect == Effect::Allow).map(|(_, n)| *n).max();
    let same_account = request.principal.account() == Some(request.resource_account);

    let allowed = match request.principal {
        Principal::Anonymous => resource_names == Some(Named::Caller),
        _ if same_account => identity_allows || resource_names == Some(Named::Caller),
        _ => identity_allows && resource_names.is_some(),
    };
    if allowed {
        Decision::Allow
    } else if !same_account && identity_allows {
        refuse(&format!(" because no resource-based policy allows the {action} action"))
    } else {
        refuse("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(s: &str) -> AccountId {
        s.parse().expect("account")
    }

    #[test]
    fn roots_act_only_inside_their_own_account() {
        let owner = account("123456789012");
        let other = account("333333333333");
        let arn = "arn:aws:ecr:us-east-1:123456789012:repository/mlops/python-base";
        let context = ContextKeys::new();
        let ask = |principal: &Principal| {
            authorize(
                &AuthzRequest {
                    principal,
                    action: Action::BatchGetImage,
                    resource_account: &owner,
                    resource_arn: arn,
                    context: &context,
                },
                &Policies::default(),
            )
        };
        assert_eq!(ask(&Principal::Root { account: owner.clone() }), Decision::Allow);
        let denied = ask(&Principal::Root { account: other.clone() });
        assert_eq!(
            denied,
            Decision::Deny(format!(
                "User: arn:aws:iam::333333333333:root is not authorized to perform: ecr:BatchGetImage on resource: {arn} \
                 because no resource-based policy allows the ecr:BatchGetImage action"
            ))
        );
        assert!(matches!(ask(&Principal::Anonymous), Decision::Deny(_)));
        assert!(
            matches!(
                ask(&Principal::User { account: owner.clone(), name: "dev".to_owned() }),
                Decision::Deny(_)
            ),
            "users hold nothing until a policy grants it"
        );
    }
}

#[cfg(test)]
mod action_tests {
    use super::*;

    #[test]
    fn actions_are_found_by_name_in_any_case() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
            assert_eq!(Action::from_name(&action.name().to_uppercase()), Some(action));
        }
        assert_eq!(Action::from_name("ecr:NoSuchAction"), None);
        assert_eq!(Action::from_name("s3:GetObject"), None);
    }

    #[test]
    fn only_a_cross_account_refusal_blames_the_resource_policy() {
        let owner: AccountId = "123456789012".parse().expect("account");
        let arn = "arn:aws:ecr:us-east-1:123456789012:repository/app";
        let context = ContextKeys::new();
        let user = Principal::User { account: owner.clone(), name: "dev".to_owned() };
        let request = AuthzRequest {
            principal: &user,
            action: Action::PutImage,
            resource_account: &owner,
            resource_arn: arn,
            context: &context,
        };
        assert_eq!(
            authorize(&request, &Policies::default()),
            Decision::Deny(format!(
                "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: ecr:PutImage on resource: {arn}"
            )),
            "inside one account no resource policy is needed, so none is blamed"
        );
        // Across accounts, a user its own account grants nothing is not told about resource policies.
        let stranger =
            Principal::User { account: "111111111111".parse().expect("account"), name: "dev".to_owned() };
        let request = AuthzRequest { principal: &stranger, ..request };
        assert_eq!(
            authorize(&request, &Policies::default()),
            Decision::Deny(format!(
                "User: arn:aws:iam::111111111111:user/dev is not authorized to perform: ecr:PutImage on resource: {arn}"
            ))
        );
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use crate::policy::{PolicyKind, parse};

    const SHARED: &str = "123456789012";
    const REPO: &str = "arn:aws:ecr:us-east-1:123456789012:repository/mlops/python-base";

    fn root(account: &str) -> Principal {
        Principal::Root { account: account.parse().expect("account") }
    }

    fn user(account: &str, name: &str) -> Principal {
        Principal::User { account: account.parse().expect("account"), name: name.to_owned() }
    }

    fn resource(text: &str) -> Policy {
        parse(text, PolicyKind::Resource).expect("valid resource policy")
    }

    fn identity(text: &str) -> Policy {
        parse(text, PolicyKind::Identity).expect("valid identity policy")
    }

    fn decide(principal: &Principal, action: Action, identity: &[Policy], repo: Option<&Policy>) -> bool {
        let owner: AccountId = SHARED.parse().expect("account");
        let context = ContextKeys::from([("aws:sourceip".to_owned(), vec!["198.51.100.7".to_owned()])]);
        let request = AuthzRequest {
            principal,
            action,
            resource_account: &owner,
            resource_arn: REPO,
            context: &context,
        };
        authorize(&request, &Policies { identity, resource: repo, registry: None }) == Decision::Allow
    }

    const CROSS_ACCOUNT_PULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow",
        "Principal":{"AWS":["111111111111","arn:aws:iam::222222222222:root"]},
        "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;
    const DEV_PULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
        "Resource":"arn:aws:ecr:*:123456789012:repository/mlops/*"}]}"#;

    #[test]
    fn the_shared_registry_scenario() {
        let pull_policy = resource(CROSS_ACCOUNT_PULL);
        let dev_policy = identity(DEV_PULL);
        // The allowed account's root pulls; its user pulls only with an identity policy.
        assert!(decide(&root("111111111111"), Action::BatchGetImage, &[], Some(&pull_policy)));
        assert!(decide(
            &user("111111111111", "dev"),
            Action::BatchGetImage,
            std::slice::from_ref(&dev_policy),
            Some(&pull_policy)
        ));
        assert!(!decide(&user("111111111111", "dev"), Action::BatchGetImage, &[], Some(&pull_policy)));
        // Nobody of the allowed accounts may push; other accounts get nothing.
        assert!(!decide(
            &user("111111111111", "dev"),
            Action::PutImage,
            std::slice::from_ref(&dev_policy),
            Some(&pull_policy)
        ));
        assert!(!decide(&root("333333333333"), Action::BatchGetImage, &[], Some(&pull_policy)));
        assert!(!decide(
            &user("333333333333", "x"),
            Action::BatchGetImage,
            &[dev_policy],
            Some(&pull_policy)
        ));
        assert!(!decide(&Principal::Anonymous, Action::BatchGetImage, &[], Some(&pull_policy)));
        // Without the repository policy, the identity side alone never crosses accounts.
        assert!(!decide(&root("111111111111"), Action::BatchGetImage, &[], None));
    }

    #[test]
    fn inside_one_account_either_side_allows() {
        let owner_user = user(SHARED, "ci");
        assert!(decide(&root(SHARED), Action::PutImage, &[], None));
        assert!(!decide(&owner_user, Action::PutImage, &[], None), "users start with nothing");
        let push = identity(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#,
        );
        assert!(decide(&owner_user, Action::PutImage, &[push], None));
        let names_user = resource(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::123456789012:user/ci"},"Action":"ecr:PutImage"}]}"#,
        );
        assert!(decide(&owner_user, Action::PutImage, &[], Some(&names_user)));
        // Naming the account delegates to the account's own identity policies.
        let names_account = resource(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"123456789012"},"Action":"ecr:PutImage"}]}"#,
        );
        assert!(!decide(&owner_user, Action::PutImage, &[], Some(&names_account)));
    }

    #[test]
    fn explicit_deny_wins_everywhere() {
        let deny = resource(
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"ecr:*"},
            {"Sid":"NoDelete","Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}"#,
        );
        assert!(
            !decide(&root(SHARED), Action::BatchDeleteImage, &[], Some(&deny)),
            "not even the owner's root"
        );
        assert!(decide(&root(SHARED), Action::BatchGetImage, &[], Some(&deny)));
        let self_deny = identity(
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecr:*","Resource":"*"},
            {"Effect":"Deny","NotAction":"ecr:BatchGetImage","Resource":"*"}]}"#,
        );
        assert!(decide(&user(SHARED, "ro"), Action::BatchGetImage, std::slice::from_ref(&self_deny), None));
        assert!(!decide(&user(SHARED, "ro"), Action::PutImage, &[self_deny], None));
    }

    #[test]
    fn public_read_and_conditions() {
        let public = resource(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#,
        );
        assert!(decide(&Principal::Anonymous, Action::BatchGetImage, &[], Some(&public)));
        assert!(!decide(&Principal::Anonymous, Action::PutImage, &[], Some(&public)));
        let from_corp = resource(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"ecr:BatchGetImage","Condition":{"IpAddress":{"aws:SourceIp":"198.51.100.0/24"}}}]}"#,
        );
        assert!(decide(&Principal::Anonymous, Action::BatchGetImage, &[], Some(&from_corp)));
        let elsewhere = resource(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"ecr:BatchGetImage","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#,
        );
        assert!(!decide(&Principal::Anonymous, Action::BatchGetImage, &[], Some(&elsewhere)));
        let by_account = resource(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:PrincipalAccount":"111111111111"}}}]}"#,
        );
        assert!(decide(&root("111111111111"), Action::BatchGetImage, &[], Some(&by_account)));
        assert!(!decide(&root("222222222222"), Action::BatchGetImage, &[], Some(&by_account)));
    }

    #[test]
    fn refusals_say_why_as_aws_does() {
        let owner: AccountId = SHARED.parse().expect("account");
        let context = ContextKeys::new();
        let principal = root("111111111111");
        let request = AuthzRequest {
            principal: &principal,
            action: Action::BatchGetImage,
            resource_account: &owner,
            resource_arn: REPO,
            context: &context,
        };
        assert_eq!(
            authorize(&request, &Policies::default()),
            Decision::Deny(format!(
                "User: arn:aws:iam::111111111111:root is not authorized to perform: ecr:BatchGetImage on resource: {REPO} \
                 because no resource-based policy allows the ecr:BatchGetImage action"
            ))
        );
    }
}
