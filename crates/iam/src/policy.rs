//! The IAM policy language as ECR uses it: parsing and validation. Evaluation lives in
//! `policy_eval`; the combination of policies into one decision in `authorize`.
//!
//! A policy that is not valid is refused with a message that names the offending statement,
//! so that `SetRepositoryPolicy` and friends can answer like ECR's `InvalidParameterException`.

use serde_json::{Map, Value};

/// Longest policy document accepted (ECR's limit for repository and registry policies).
pub const MAX_POLICY_BYTES: usize = 10_240;

/// Where a policy is attached, which decides the shape it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user: no `Principal`, a `Resource` in every statement.
    Identity,
    /// Attached to a repository or a registry: a `Principal` in every statement.
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Who a resource-policy statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// `"*"`: everyone, including anonymous callers.
    Anyone,
    /// A whole account: `123456789012` or `arn:aws:iam::123456789012:root`.
    Account(String),
    /// One principal by ARN (a user or role).
    Arn(String),
    /// A service principal; berth has none, so these never match.
    Service(String),
}

/// A list of patterns, or its negation (`NotAction`, `NotResource`, `NotPrincipal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher<T> {
    pub negated: bool,
    pub items: Vec<T>,
}

/// The operators of a condition, without their `IfExists` and set qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    Null,
}

impl Operator {
    const ALL: [(&'static str, Self); 26] = [
        ("StringEquals", Self::StringEquals),
        ("StringNotEquals", Self::StringNotEquals),
        ("StringEqualsIgnoreCase", Self::StringEqualsIgnoreCase),
        ("StringNotEqualsIgnoreCase", Self::StringNotEqualsIgnoreCase),
        ("StringLike", Self::StringLike),
        ("StringNotLike", Self::StringNotLike),
        ("ArnEquals", Self::ArnEquals),
        ("ArnNotEquals", Self::ArnNotEquals),
        ("ArnLike", Self::ArnLike),
        ("ArnNotLike", Self::ArnNotLike),
        ("NumericEquals", Self::NumericEquals),
        ("NumericNotEquals", Self::NumericNotEquals),
        ("NumericLessThan", Self::NumericLessThan),
        ("NumericLessThanEquals", Self::NumericLessThanEquals),
        ("NumericGreaterThan", Self::NumericGreaterThan),
        ("NumericGreaterThanEquals", Self::NumericGreaterThanEquals),
        ("DateEquals", Self::DateEquals),
        ("DateNotEquals", Self::DateNotEquals),
        ("DateLessThan", Self::DateLessThan),
        ("DateLessThanEquals", Self::DateLessThanEquals),
        ("DateGreaterThan", Self::DateGreaterThan),
        ("DateGreaterThanEquals", Self::DateGreaterThanEquals),
        ("Bool", Self::Bool),
        ("IpAddress", Self::IpAddress),
        ("NotIpAddress", Self::NotIpAddress),
        ("Null", Self::Null),
    ];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }

    /// Negated operators hold when no value matches (and when the key is absent).
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Self::StringNotEquals
                | Self::StringNotEqualsIgnoreCase
                | Self::StringNotLike
                | Self::ArnNotEquals
                | Self::ArnNotLike
                | Self::NumericNotEquals
                | Self::DateNotEquals
                | Self::NotIpAddress
        )
    }
}

/// How a multi-valued key is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    pub if_exists: bool,
    pub qualifier: Option<SetQualifier>,
    /// The context key, lower-cased (keys are case-insensitive).
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Matcher<PrincipalEntry>>,
    pub action: Matcher<String>,
    /// `None` in a resource policy means "the resource the policy is attached to".
    pub resource: Option<Matcher<String>>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Whether any condition of the policy names a key that starts with `prefix` (lower case),
    /// so that a caller can leave out context nobody asks about.
    pub fn asks_about(&self, prefix: &str) -> bool {
        self.statements.iter().flat_map(|s| &s.conditions).any(|c| c.key.starts_with(prefix))
    }
}

/// Why a policy document was refused, naming the statement when one is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", statement.as_ref().map(|s| format!("{s}: ")).unwrap_or_default())]
pub struct PolicyError {
    pub statement: Option<String>,
    pub reason: String,
}

fn doc_error(reason: impl Into<String>) -> PolicyError {
    PolicyError { statement: None, reason: reason.into() }
}

/// Strings of a field that may be one string or a list of strings.
fn strings(value: &Value, field: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{field} must hold only strings")))
            .collect(),
        Value::Array(_) => Err(format!("{field} must not be empty")),
        _ => Err(format!("{field} must be a string or a list of strings")),
    }
}

/// Condition values may also be numbers or booleans; they are compared as text.
fn condition_values(value: &Value, field: &str) -> Result<Vec<String>, String> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!("{field} values must be strings, numbers or booleans")),
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Array(_) => Err(format!("{field} must not be empty")),
        other => Ok(vec![one(other)?]),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn principal_entry(value: &str) -> Result<PrincipalEntry, String> {
    if value == "*" {
        return Ok(PrincipalEntry::Anyone);
    }
    if is_account_id(value) {
        return Ok(PrincipalEntry::Account(value.to_owned()));
    }
    let not_found = || format!("Principal not found: {value:?} is not an account id, an IAM ARN or \"*\"");
    let rest = value.strip_prefix("arn:aws:iam::").ok_or_else(not_found)?;
    let (account, resource) = rest.split_once(':').ok_or_else(not_found)?;
    if !is_account_id(account) {
        return Err(not_found());
    }
    match resource {
        "root" => Ok(PrincipalEntry::Account(account.to_owned())),
        r if (r.starts_with("user/") || r.starts_with("role/")) && r.len() > 5 => {
            Ok(PrincipalEntry::Arn(value.to_owned()))
        }
        _ => Err(not_found()),
    }
}

fn principals(value: &Value) -> Result<Vec<PrincipalEntry>, String> {
    match value {
        Value::String(s) if s == "*" => Ok(vec![PrincipalEntry::Anyone]),
        Value::Object(map) if !map.is_empty() => {
            let mut out = Vec::new();
            for (kind, ids) in map {
                let ids = strings(ids, &format!("Principal.{kind}"))?;
                match kind.as_str() {
                    "AWS" => {
                        out.extend(ids.iter().map(|id| principal_entry(id)).collect::<Result<Vec<_>, _>>()?)
                    }
                    "Service" => out.extend(ids.into_iter().map(PrincipalEntry::Service)),
                    other => {
                        return Err(format!(
                            "Principal type {other:?} is not supported (use AWS or Service)"
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err("Principal must be \"*\" or an object such as {\"AWS\": [...]}".to_owned()),
    }
}

fn action_pattern(action: &str) -> Result<String, String> {
    if action == "*" {
        return Ok(action.to_owned());
    }
    match action.split_once(':') {
        Some((service, name))
            if !service.is_empty()
                && !name.is_empty()
                && service.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?') =>
        {
            Ok(action.to_owned())
        }
        _ => Err(format!("Action {action:?} must be \"*\" or <service>:<action>, such as ecr:BatchGetImage")),
    }
}

fn resource_pattern(resource: &str) -> Result<String, String> {
    if resource == "*" || resource.starts_with("arn:") {
        Ok(resource.to_owned())
    } else {
        Err(format!("Resource {resource:?} must be \"*\" or an ARN"))
    }
}

/// Reads the one of `positive`/`negative` that a statement has.
fn either<T>(
    statement: &Map<String, Value>,
    positive: &str,
    negative: &str,
    read: impl Fn(&Value) -> Result<Vec<T>, String>,
) -> Result<Option<Matcher<T>>, String> {
    match (statement.get(positive), statement.get(negative)) {
        (Some(_), Some(_)) => Err(format!("a statement cannot have both {positive} and {negative}")),
        (Some(v), None) => Ok(Some(Matcher { negated: false, items: read(v)? })),
        (None, Some(v)) => Ok(Some(Matcher { negated: true, items: read(v)? })),
        (None, None) => Ok(None),
    }
}

fn conditions(value: &Value, check_keys: bool) -> Result<Vec<Condition>, String> {
    let Value::Object(operators) = value else {
        return Err("Condition must be an object of operators".to_owned());
    };
    let mut out = Vec::new();
    for (name, keys) in operators {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let operator = Operator::from_name(base)
            .ok_or_else(|| format!("condition operator {name:?} is not supported"))?;
        if operator == Operator::Null && (if_exists || qualifier.is_some()) {
            return Err(format!("condition operator {name:?} is not valid"));
        }
        let Value::Object(keys) = keys else {
            return Err(format!("Condition {name} must be an object of keys and values"));
        };
        for (key, values) in keys {
            if check_keys {
                crate::condition_keys::check(key)?;
            }
            let values = condition_values(values, &format!("Condition {name} {key}"))?;
            if check_keys
                && matches!(operator, Operator::IpAddress | Operator::NotIpAddress)
                && let Some(bad) = values.iter().find(|v| v.parse::<berth_core::Cidr>().is_err())
            {
                return Err(format!("Condition {name} {key}: {bad:?} is not an IP address or CIDR network"));
            }
            out.push(Condition { operator, if_exists, qualifier, key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(out)
}

fn statement(value: &Value, kind: PolicyKind, check_keys: bool) -> Result<Statement, String> {
    let Value::Object(map) = value else { return Err("a statement must be an object".to_owned()) };
    const KNOWN: [&str; 10] = [
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Id",
    ];
    if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let sid = match map.get("Sid") {
        None => None,
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(s.clone()),
        Some(_) => return Err("Sid must be a string of letters and digits".to_owned()),
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err("Effect must be \"Allow\" or \"Deny\"".to_owned()),
    };
    let principal = either(map, "Principal", "NotPrincipal", principals)?;
    match (kind, &principal) {
        (PolicyKind::Resource, None) => {
            return Err("a resource policy statement needs a Principal".to_owned());
        }
        (PolicyKind::Identity, Some(_)) => {
            return Err("an identity policy statement cannot have a Principal".to_owned());
        }
        _ => {}
    }
    let action = either(map, "Action", "NotAction", |v| {
        strings(v, "Action")?.iter().map(|a| action_pattern(a)).collect()
    })?
    .ok_or("a statement needs an Action or NotAction")?;
    let resource = either(map, "Resource", "NotResource", |v| {
        strings(v, "Resource")?.iter().map(|r| resource_pattern(r)).collect()
    })?;
    if kind == PolicyKind::Identity && resource.is_none() {
        return Err("an identity policy statement needs a Resource or NotResource".to_owned());
    }
    let conditions = map.get("Condition").map(|c| conditions(c, check_keys)).transpose()?.unwrap_or_default();
    Ok(Statement { sid, effect, principal, action, resource, conditions })
}

/// Parses a policy document of the given kind, as stored: the shape is checked, condition keys
/// are not (a key unknown today evaluates as absent, as it did when the policy was set).
pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
    parse_checked(text, kind, false)
}

/// Parses and validates a policy document about to be set: besides its shape, every condition
/// key must be one berth sets (see [`crate::condition_keys`]), so that no condition can silently
/// never apply.
pub fn validate(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
    parse_checked(text, kind, true)
}

fn parse_checked(text: &str, kind: PolicyKind, check_keys: bool) -> Result<Policy, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(doc_error(format!("the policy is longer than {MAX_POLICY_BYTES} characters")));
    }
    let document: Value =
        serde_json::from_str(text).map_err(|e| doc_error(format!("the policy is not valid JSON: {e}")))?;
    let Value::Object(top) = document else { return Err(doc_error("the policy must be a JSON object")) };
    if let Some(unknown) = top.keys().find(|k| !["Version", "Statement", "Id"].contains(&k.as_str())) {
        return Err(doc_error(format!("unknown field {unknown:?}")));
    }
    match top.get("Version").and_then(Value::as_str) {
        Some("2012-10-17" | "2008-10-17") => {}
        _ => return Err(doc_error("Version must be \"2012-10-17\" (or \"2008-10-17\")")),
    }
    let raw = match top.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(doc_error("Statement must be a statement or a non-empty list of them")),
    };
    let mut statements = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        let name = match value.get("Sid").and_then(Value::as_str) {
            Some(sid) => format!("statement {} (Sid {sid:?})", i + 1),
            None => format!("statement {}", i + 1),
        };
        statements.push(
            statement(value, kind, check_keys)
                .map_err(|reason| PolicyError { statement: Some(name), reason })?,
        );
    }
    Ok(Policy { statements })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow",
        "Principal":{"AWS":["arn:aws:iam::111111111111:root","222222222222"]},
        "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;

    /// A resource policy whose one statement is `statement`.
    fn resource_with(statement: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
    }

    #[test]
    fn every_shape_rule_refuses_what_it_should_and_no_more() {
        let ok = |s: &str| validate(&resource_with(s), PolicyKind::Resource).is_ok();
        let base = r#""Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"ecr:BatchGetImage""#;
        assert!(ok(&format!("{{{base}}}")));
        for (accepted, statement) in [
            // Lists must not be empty.
            (false, r#"{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":[]}"#),
            (false, r#"{"Effect":"Allow","Principal":{"AWS":[]},"Action":"ecr:*"}"#),
            (false, r#"{"Effect":"Allow","Principal":{},"Action":"ecr:*"}"#),
            (false, r#"{"Effect":"Allow","Principal":"**","Action":"ecr:*"}"#),
            (
                false,
                r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:PrincipalAccount":[]}}}"#,
            ),
            // Condition values may be numbers and booleans.
            (
                true,
                r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"NumericLessThan":{"aws:EpochTime":5}}}"#,
            ),
            (
                true,
                r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":true}}}"#,
            ),
            // Accounts are exactly 12 digits; principal ARNs name root, a user or a role.
            (false, r#"{"Effect":"Allow","Principal":{"AWS":"1111111111111"},"Action":"ecr:*"}"#),
            (false, r#"{"Effect":"Allow","Principal":{"AWS":"11111111111a"},"Action":"ecr:*"}"#),
            (
                false,
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1111111111111:root"},"Action":"ecr:*"}"#,
            ),
            (
                true,
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/u"},"Action":"ecr:*"}"#,
            ),
            (
                true,
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/r"},"Action":"ecr:*"}"#,
            ),
            (
                false,
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/"},"Action":"ecr:*"}"#,
            ),
            (
                false,
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:group/g"},"Action":"ecr:*"}"#,
            ),
            // Actions are * or service:name, with only letters, digits and wildcards in the name.
            (
                true,
                r#"{"Effect":"Allow","Principal":"*","Action":["ecr:Batch*","ecr:Get?ownloadUrlForLayer","*"]}"#,
            ),
            (false, r#"{"Effect":"Allow","Principal":"*","Action":":BatchGetImage"}"#),
            (false, r#"{"Effect":"Allow","Principal":"*","Action":"ecr:"}"#),
            (false, r#"{"Effect":"Allow","Principal":"*","Action":"e c r:BatchGetImage"}"#),
            (false, r#"{"Effect":"Allow","Principal":"*","Action":"ecr:Batch-GetImage"}"#),
            (true, r#"{"Effect":"Allow","Principal":"*","Action":"aws-marketplace:View"}"#),
            // Null takes neither IfExists nor a set qualifier.
            (
                false,
                r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"NullIfExists":{"aws:SourceIp":"true"}}}"#,
            ),
            (
                false,
                r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"ForAnyValue:Null":{"aws:TagKeys":"true"}}}"#,
            ),
            (
                true,
                r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"Null":{"aws:SourceIp":"true"}}}"#,
            ),
            // Sids are letters and digits.
            (true, r#"{"Sid":"Pull1","Effect":"Allow","Principal":"*","Action":"ecr:*"}"#),
            (false, r#"{"Sid":"pull-1","Effect":"Allow","Principal":"*","Action":"ecr:*"}"#),
        ] {
            assert_eq!(ok(statement), accepted, "{statement}");
        }
        // An empty list is named as such.
        let empty = validate(
            &resource_with(r#"{"Effect":"Allow","Principal":"*","Action":[]}"#),
            PolicyKind::Resource,
        );
        assert!(empty.expect_err("refused").reason.contains("Action must not be empty"));
        // An identity policy statement names no principal.
        let with_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#;
        assert!(validate(with_principal, PolicyKind::Identity).is_err());
        // The document is at most 10,240 characters.
        let sized = |len: usize| {
            let head = r#"{"Version":"2012-10-17","Id":""#;
            let tail = r#"","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#;
            format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
        };
        assert!(validate(&sized(MAX_POLICY_BYTES), PolicyKind::Resource).is_ok());
        assert!(validate(&sized(MAX_POLICY_BYTES + 1), PolicyKind::Resource).is_err());
    }

    #[test]
    fn a_policy_tells_whether_it_asks_about_a_key() {
        let policy = parse(
            &resource_with(r#"{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}}"#),
            PolicyKind::Resource,
        )
        .expect("valid");
        assert!(policy.asks_about("aws:resourcetag/"));
        assert!(!policy.asks_about("ecr:resourcetag/"));
    }

    #[test]
    fn parses_a_cross_account_pull_policy() {
        let policy = parse(PULL, PolicyKind::Resource).expect("valid");
        let s = &policy.statements[0];
        assert_eq!(s.effect, Effect::Allow);
        assert_eq!(
            s.principal.as_ref().map(|p| p.items.clone()),
            Some(vec![
                PrincipalEntry::Account("111111111111".to_owned()),
                PrincipalEntry::Account("222222222222".to_owned())
            ])
        );
        assert_eq!(s.action.items.len(), 3);
        assert!(s.resource.is_none());
    }

    #[test]
    fn parses_conditions_with_qualifiers() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*",
            "Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"},
                         "ForAnyValue:StringLikeIfExists":{"aws:PrincipalArn":["arn:aws:iam::*:user/ci-*"]},
                         "Bool":{"aws:SecureTransport":false}}}}"#;
        let policy = parse(text, PolicyKind::Resource).expect("valid");
        let conditions = &policy.statements[0].conditions;
        assert_eq!(conditions.len(), 3);
        let like = conditions.iter().find(|c| c.operator == Operator::StringLike).expect("StringLike");
        assert_eq!(
            (like.if_exists, like.qualifier, like.key.as_str()),
            (true, Some(SetQualifier::ForAnyValue), "aws:principalarn")
        );
        let b = conditions.iter().find(|c| c.operator == Operator::Bool).expect("Bool");
        assert_eq!(b.values, ["false"]);
    }

    #[test]
    fn invalid_policies_name_the_statement_at_fault() {
        let cases = [
            ("not json", None, "not valid JSON"),
            (r#"{"Statement":[]}"#, None, "Version"),
            (r#"{"Version":"2012-10-17","Statement":[]}"#, None, "Statement"),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#,
                Some("statement 1"),
                "Principal",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},
                    {"Sid":"Bad","Effect":"Maybe","Principal":"*","Action":"ecr:*"}]}"#,
                Some("statement 2 (Sid \"Bad\")"),
                "Effect",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"ecr:*"}]}"#,
                Some("statement 1"),
                "Principal not found",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"BatchGetImage"}]}"#,
                Some("statement 1"),
                "Action",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","NotAction":"ecr:x"}]}"#,
                Some("statement 1"),
                "both",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringWeird":{"a":"b"}}}]}"#,
                Some("statement 1"),
                "not supported",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Effects":"x"}]}"#,
                Some("statement 1"),
                "unknown field",
            ),
        ];
        for (text, statement, reason) in cases {
            let err = parse(text, PolicyKind::Resource).expect_err(text);
            assert_eq!(err.statement.as_deref(), statement, "{text}: {err}");
            assert!(err.reason.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn identity_policies_need_resources_and_no_principal() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage",
            "Resource":"arn:aws:ecr:*:123456789012:repository/mlops/*"}]}"#;
        assert!(parse(ok, PolicyKind::Identity).is_ok());
        assert!(parse(PULL, PolicyKind::Identity).is_err());
        let no_resource = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#;
        assert!(parse(no_resource, PolicyKind::Identity).is_err());
    }

    #[test]
    fn oversized_policies_are_refused() {
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{}"}}]}}"#,
            "a".repeat(MAX_POLICY_BYTES)
        );
        assert!(parse(&big, PolicyKind::Resource).expect_err("too long").reason.contains("longer"));
    }
}
