//! The condition keys a policy may name, and on which requests berth sets each one.
//!
//! A key the validator accepts is either set wherever AWS sets it for ECR requests, or never set
//! because the circumstance AWS sets it in cannot arise in berth (temporary credentials, VPC
//! endpoints, calls by AWS services). Every other key is refused when a policy is set, with a
//! message that names it, so that no condition can silently never apply.

use crate::Action;

/// When a key is present in a request's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// On every request.
    Always,
    /// On every request that carries credentials.
    Authenticated,
    /// On requests by IAM users.
    Users,
    /// When the request carries the HTTP header of this name.
    Header(&'static str),
    /// On requests for an action on a repository that exists, for each of its resource tags.
    RepositoryTags,
    /// On requests for these actions that set tags (one key per tag key).
    RequestTags(&'static [Action]),
    /// On requests for these actions that set or remove tags.
    TagKeys(&'static [Action]),
    /// Never on a berth request, for the reason given: AWS sets it only where berth has no
    /// counterpart.
    Never(&'static str),
}

/// One key, or a family of keys when `name` ends in `/` (`aws:ResourceTag/<tag key>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionKey {
    /// The key as AWS documents it; lookups ignore case.
    pub name: &'static str,
    pub presence: Presence,
}

/// Actions that carry `aws:RequestTag/*`: those that create or tag a repository.
const TAGGING: &[Action] = &[Action::CreateRepository, Action::TagResource];
/// Actions that carry `aws:TagKeys`.
const TAG_KEYS: &[Action] = &[Action::CreateRepository, Action::TagResource, Action::UntagResource];

const TEMPORARY: &str = "AWS sets it only for temporary credentials; berth's access keys are long-term";
const VPC: &str = "AWS sets it only for requests through a VPC endpoint, which berth does not have";
const SERVICE: &str = "AWS sets it only when an AWS service makes the request, which never happens in berth";

/// Every key berth accepts in a policy condition.
pub const CONDITION_KEYS: &[ConditionKey] = &[
    ConditionKey { name: "aws:CurrentTime", presence: Presence::Always },
    ConditionKey { name: "aws:EpochTime", presence: Presence::Always },
    ConditionKey { name: "aws:SourceIp", presence: Presence::Always },
    ConditionKey { name: "aws:SecureTransport", presence: Presence::Always },
    ConditionKey { name: "aws:RequestedRegion", presence: Presence::Always },
    ConditionKey { name: "aws:ResourceAccount", presence: Presence::Always },
    ConditionKey { name: "aws:PrincipalType", presence: Presence::Always },
    ConditionKey { name: "aws:ViaAWSService", presence: Presence::Always },
    ConditionKey { name: "aws:PrincipalIsAWSService", presence: Presence::Always },
    ConditionKey { name: "aws:PrincipalAccount", presence: Presence::Authenticated },
    ConditionKey { name: "aws:PrincipalArn", presence: Presence::Authenticated },
    ConditionKey { name: "aws:username", presence: Presence::Users },
    ConditionKey { name: "aws:UserAgent", presence: Presence::Header("user-agent") },
    ConditionKey { name: "aws:Referer", presence: Presence::Header("referer") },
    ConditionKey { name: "aws:ResourceTag/", presence: Presence::RepositoryTags },
    ConditionKey { name: "ecr:ResourceTag/", presence: Presence::RepositoryTags },
    ConditionKey { name: "aws:RequestTag/", presence: Presence::RequestTags(TAGGING) },
    ConditionKey { name: "aws:TagKeys", presence: Presence::TagKeys(TAG_KEYS) },
    ConditionKey { name: "aws:MultiFactorAuthPresent", presence: Presence::Never(TEMPORARY) },
    ConditionKey { name: "aws:MultiFactorAuthAge", presence: Presence::Never(TEMPORARY) },
    ConditionKey { name: "aws:TokenIssueTime", presence: Presence::Never(TEMPORARY) },
    ConditionKey { name: "aws:SourceVpc", presence: Presence::Never(VPC) },
    ConditionKey { name: "aws:SourceVpce", presence: Presence::Never(VPC) },
    ConditionKey { name: "aws:VpcSourceIp", presence: Presence::Never(VPC) },
    ConditionKey { name: "aws:CalledVia", presence: Presence::Never(SERVICE) },
    ConditionKey { name: "aws:CalledViaFirst", presence: Presence::Never(SERVICE) },
    ConditionKey { name: "aws:CalledViaLast", presence: Presence::Never(SERVICE) },
    ConditionKey { name: "aws:SourceAccount", presence: Presence::Never(SERVICE) },
    ConditionKey { name: "aws:SourceArn", presence: Presence::Never(SERVICE) },
    ConditionKey {
        name: "ecr:AccountSetting",
        presence: Presence::Never(
            "ECR sets it only on GetAccountSetting and PutAccountSetting, which berth does not serve",
        ),
    },
];

/// Keys AWS knows that berth refuses, with what to use instead.
const REFUSED: &[(&str, &str)] = &[
    (
        "aws:PrincipalOrgID",
        "berth has no organizations; name the accounts in Principal or aws:PrincipalAccount",
    ),
    (
        "aws:PrincipalOrgPaths",
        "berth has no organizations; name the accounts in Principal or aws:PrincipalAccount",
    ),
    ("aws:ResourceOrgID", "berth has no organizations; name the accounts in aws:ResourceAccount"),
    ("aws:ResourceOrgPaths", "berth has no organizations; name the accounts in aws:ResourceAccount"),
    ("aws:PrincipalTag/", "berth's users carry no tags; name them in Principal or aws:PrincipalArn"),
    ("aws:userid", "berth's users have no unique ids; use aws:username or aws:PrincipalArn"),
];

fn matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('/') {
        Some(family) => key
            .get(..=family.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(pattern) && key.len() > pattern.len()),
        None => key.eq_ignore_ascii_case(pattern),
    }
}

/// The catalogue entry for `key` (any case), if berth accepts it.
pub fn lookup(key: &str) -> Option<&'static ConditionKey> {
    CONDITION_KEYS.iter().find(|k| matches(k.name, key))
}

/// Accepts a key berth knows, or says why it cannot be used.
pub fn check(key: &str) -> Result<(), String> {
    if lookup(key).is_some() {
        return Ok(());
    }
    if let Some((name, instead)) = REFUSED.iter().find(|(name, _)| matches(name, key)) {
        let name = name.trim_end_matches('/');
        return Err(format!("condition key {key:?} is not supported: {instead} ({name})"));
    }
    Err(format!(
        "condition key {key:?} is not set on ECR requests; the keys berth sets are {}",
        CONDITION_KEYS
            .iter()
            .filter(|k| !matches!(k.presence, Presence::Never(_)))
            .map(|k| if k.name.ends_with('/') { format!("{}<key>", k.name) } else { k.name.to_owned() })
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_case() {
        assert!(lookup("aws:resourcetag/env").is_some());
        assert!(lookup("AWS:ResourceTag/Env").is_some());
        assert!(lookup("aws:resourcetag/").is_none(), "a family needs a tag key");
        assert!(lookup("aws:sourceip").is_some());
        assert!(lookup("aws:sourceipx").is_none());
        assert!(lookup("s3:prefix").is_none());
    }

    #[test]
    fn refusals_name_the_key_and_say_what_to_use() {
        let e = check("aws:PrincipalOrgID").expect_err("refused");
        assert!(e.contains("aws:PrincipalOrgID") && e.contains("organizations"), "{e}");
        let e = check("aws:principaltag/team").expect_err("refused");
        assert!(e.contains("aws:principaltag/team") && e.contains("no tags"), "{e}");
        let e = check("ecr:nothing").expect_err("refused");
        assert!(e.contains("ecr:nothing") && e.contains("aws:SourceIp"), "{e}");
        assert!(check("aws:TagKeys").is_ok());
    }
}
