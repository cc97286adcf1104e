//! Whether one statement of a policy applies to a request: principal, action, resource and
//! condition matching with IAM's rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::Principal;
use crate::policy::{Condition, Matcher, Operator, PrincipalEntry, SetQualifier, Statement};

/// Glob matching with `*` (any run) and `?` (one character).
pub(crate) fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    berth_core::glob_matches(pattern, text, ignore_case)
}

/// How specifically a resource-policy statement names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Named {
    No,
    /// The caller's whole account: the account then decides through its identity policies.
    Account,
    /// The caller itself (its ARN, its account's root when it is the root, or `*`).
    Caller,
}

fn entry_names(entry: &PrincipalEntry, principal: &Principal) -> Named {
    match (entry, principal) {
        (PrincipalEntry::Anyone, _) => Named::Caller,
        (PrincipalEntry::Account(a), Principal::Root { account }) if a == account.as_str() => Named::Caller,
        (PrincipalEntry::Account(a), Principal::User { account, .. }) if a == account.as_str() => {
            Named::Account
        }
        (PrincipalEntry::Arn(arn), p) if *arn == p.arn() => Named::Caller,
        _ => Named::No,
    }
}

pub(crate) fn principal_named(matcher: &Matcher<PrincipalEntry>, principal: &Principal) -> Named {
    let best = matcher.items.iter().map(|e| entry_names(e, principal)).max().unwrap_or(Named::No);
    match (matcher.negated, best) {
        (false, named) => named,
        // NotPrincipal: everyone it does not name.
        (true, Named::No) => Named::Caller,
        (true, _) => Named::No,
    }
}

fn matches_any(matcher: &Matcher<String>, value: &str, ignore_case: bool) -> bool {
    matcher.items.iter().any(|p| glob(p, value, ignore_case)) != matcher.negated
}

/// Action and resource matching (the principal is checked by the caller, per policy kind).
pub(crate) fn action_and_resource_match(statement: &Statement, action: &str, resource_arn: &str) -> bool {
    // Action names are case-insensitive; resource ARNs are not.
    matches_any(&statement.action, action, true)
        && statement.resource.as_ref().is_none_or(|r| matches_any(r, resource_arn, false))
}

/// The request's context keys, lower-cased, each with one or more values.
pub type ContextKeys = BTreeMap<String, Vec<String>>;

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Seconds since the epoch of `2024-01-02`, `2024-01-02T03:04:05Z` (optionally with
/// fractional seconds) or a plain number of epoch seconds.
fn parse_date(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if s.get(4..5) != Some("-") || s.get(7..8) != Some("-") {
        return None;
    }
    let (hour, minute, second) = if s.len() == 10 {
        (0, 0, 0)
    } else {
        if s.get(10..11) != Some("T") || !s.ends_with('Z') {
            return None;
        }
        (num(11..13)?, num(14..16)?, num(17..19)?)
    };
    if !crate::time::valid(month, day, hour, minute, second) {
        return None;
    }
    Some(crate::time::days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn in_cidr(value: &str, cidr: &str) -> bool {
    match (value.trim().parse::<IpAddr>(), cidr.parse::<berth_core::Cidr>()) {
        (Ok(address), Ok(network)) => network.contains(address),
        _ => false,
    }
}

/// Whether one request value satisfies the positive form of `operator` against one policy value.
fn positive_match(operator: Operator, request: &str, policy: &str) -> bool {
    use Operator as O;
    match operator {
        O::StringEquals | O::StringNotEquals => request == policy,
        O::StringEqualsIgnoreCase | O::StringNotEqualsIgnoreCase => request.eq_ignore_ascii_case(policy),
        O::StringLike | O::StringNotLike | O::ArnEquals | O::ArnNotEquals | O::ArnLike | O::ArnNotLike => {
            glob(policy, request, false)
        }
        O::NumericEquals | O::NumericNotEquals => compare_numbers(request, policy, |a, b| a == b),
        O::NumericLessThan => compare_numbers(request, policy, |a, b| a < b),
        O::NumericLessThanEquals => compare_numbers(request, policy, |a, b| a <= b),
        O::NumericGreaterThan => compare_numbers(request, policy, |a, b| a > b),
        O::NumericGreaterThanEquals => compare_numbers(request, policy, |a, b| a >= b),
        O::DateEquals | O::DateNotEquals => compare_dates(request, policy, |a, b| a == b),
        O::DateLessThan => compare_dates(request, policy, |a, b| a < b),
        O::DateLessThanEquals => compare_dates(request, policy, |a, b| a <= b),
        O::DateGreaterThan => compare_dates(request, policy, |a, b| a > b),
        O::DateGreaterThanEquals => compare_dates(request, policy, |a, b| a >= b),
        O::Bool => request.eq_ignore_ascii_case(policy),
        O::IpAddress | O::NotIpAddress => in_cidr(request, policy),
        O::Null => false,
    }
}

fn compare_numbers(request: &str, policy: &str, cmp: impl Fn(f64, f64) -> bool) -> bool {
    matches!((parse_number(request), parse_number(policy)), (Some(a), Some(b)) if cmp(a, b))
}

fn compare_dates(request: &str, policy: &str, cmp: impl Fn(i64, i64) -> bool) -> bool {
    matches!((parse_date(request), parse_date(policy)), (Some(a), Some(b)) if cmp(a, b))
}

/// Whether one condition holds for the request's context.
pub(crate) fn condition_holds(condition: &Condition, keys: &ContextKeys) -> bool {
    let present = keys.get(&condition.key).filter(|v| !v.is_empty());
    if condition.operator == Operator::Null {
        let want_absent = condition.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        return present.is_none() == want_absent;
    }
    let negated = condition.operator.is_negated();
    // A request value "satisfies" the operator: for negated operators, it matches no value.
    let satisfies = |request: &String| {
        let any = condition.values.iter().any(|policy| positive_match(condition.operator, request, policy));
        any != negated
    };
    match (condition.qualifier, present) {
        (_, None) if condition.if_exists => true,
        (Some(SetQualifier::ForAllValues), None) => true,
        (Some(SetQualifier::ForAnyValue), None) => false,
        (None, None) => negated,
        (Some(SetQualifier::ForAllValues), Some(values)) => values.iter().all(satisfies),
        (Some(SetQualifier::ForAnyValue), Some(values)) => values.iter().any(satisfies),
        (None, Some(values)) => {
            if negated {
                values.iter().all(satisfies)
            } else {
                values.iter().any(satisfies)
            }
        }
    }
}

pub(crate) fn conditions_hold(statement: &Statement, keys: &ContextKeys) -> bool {
    statement.conditions.iter().all(|c| condition_holds(c, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(operator: Operator, key: &str, values: &[&str]) -> Condition {
        Condition {
            operator,
            if_exists: false,
            qualifier: None,
            key: key.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn keys(pairs: &[(&str, &[&str])]) -> ContextKeys {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect())).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("ecr:*", "ecr:BatchGetImage", false));
        assert!(glob("ecr:batch*", "ecr:BatchGetImage", true));
        assert!(!glob("ecr:batch*", "ecr:BatchGetImage", false));
        assert!(glob(
            "arn:aws:ecr:*:123456789012:repository/mlops/*",
            "arn:aws:ecr:us-east-1:123456789012:repository/mlops/base",
            false
        ));
        assert!(!glob(
            "arn:aws:ecr:*:123456789012:repository/mlops/*",
            "arn:aws:ecr:us-east-1:111111111111:repository/mlops/base",
            false
        ));
        assert!(glob("v?.0", "v1.0", false) && !glob("v?.0", "v10.0", false));
    }

    #[test]
    fn operators_follow_iam_semantics() {
        let k = keys(&[
            ("aws:sourceip", &["203.0.113.7"]),
            ("aws:principalaccount", &["111111111111"]),
            ("n", &["5"]),
        ]);
        assert!(condition_holds(&cond(Operator::IpAddress, "aws:sourceip", &["203.0.113.0/24"]), &k));
        assert!(!condition_holds(&cond(Operator::NotIpAddress, "aws:sourceip", &["203.0.113.0/24"]), &k));
        assert!(condition_holds(
            &cond(Operator::NotIpAddress, "aws:sourceip", &["10.0.0.0/8", "192.168.0.0/16"]),
            &k
        ));
        assert!(condition_holds(
            &cond(Operator::StringEquals, "aws:principalaccount", &["1", "111111111111"]),
            &k
        ));
        assert!(!condition_holds(
            &cond(Operator::StringNotEquals, "aws:principalaccount", &["111111111111"]),
            &k
        ));
        assert!(condition_holds(&cond(Operator::NumericLessThan, "n", &["6"]), &k));
        assert!(!condition_holds(&cond(Operator::NumericLessThan, "n", &["five"]), &k));
        // Absent keys: positive operators fail, negated hold, IfExists holds, Null tells.
        assert!(!condition_holds(&cond(Operator::StringEquals, "absent", &["x"]), &k));
        assert!(condition_holds(&cond(Operator::StringNotEquals, "absent", &["x"]), &k));
        let mut if_exists = cond(Operator::StringEquals, "absent", &["x"]);
        if_exists.if_exists = true;
        assert!(condition_holds(&if_exists, &k));
        assert!(condition_holds(&cond(Operator::Null, "absent", &["true"]), &k));
        assert!(!condition_holds(&cond(Operator::Null, "n", &["true"]), &k));
    }

    #[test]
    fn set_qualifiers() {
        let k = keys(&[("tags", &["a", "b"])]);
        let mut any = cond(Operator::StringEquals, "tags", &["b", "z"]);
        any.qualifier = Some(SetQualifier::ForAnyValue);
        assert!(condition_holds(&any, &k));
        let mut all = cond(Operator::StringEquals, "tags", &["b", "z"]);
        all.qualifier = Some(SetQualifier::ForAllValues);
        assert!(!condition_holds(&all, &k));
        all.values.push("a".to_owned());
        assert!(condition_holds(&all, &k));
        all.key = "absent".to_owned();
        assert!(condition_holds(&all, &k), "ForAllValues over nothing holds");
        any.key = "absent".to_owned();
        assert!(!condition_holds(&any, &k), "ForAnyValue over nothing fails");
    }

    #[test]
    fn every_numeric_and_date_operator_at_its_boundaries() {
        use Operator as O;
        let k = keys(&[("n", &["5"]), ("t", &["2024-01-02T00:00:00Z"])]);
        // (operator, key, policy value below, equal, above the request's value): whether each holds.
        let table: [(Operator, &str, [&str; 3], [bool; 3]); 12] = [
            (O::NumericEquals, "n", ["4", "5", "6"], [false, true, false]),
            (O::NumericNotEquals, "n", ["4", "5", "6"], [true, false, true]),
            (O::NumericLessThan, "n", ["4", "5", "6"], [false, false, true]),
            (O::NumericLessThanEquals, "n", ["4", "5", "6"], [false, true, true]),
            (O::NumericGreaterThan, "n", ["4", "5", "6"], [true, false, false]),
            (O::NumericGreaterThanEquals, "n", ["4", "5", "6"], [true, true, false]),
            (O::DateEquals, "t", ["2024-01-01", "2024-01-02", "2024-01-03"], [false, true, false]),
            (O::DateNotEquals, "t", ["2024-01-01", "2024-01-02", "2024-01-03"], [true, false, true]),
            (O::DateLessThan, "t", ["2024-01-01", "2024-01-02", "2024-01-03"], [false, false, true]),
            (O::DateLessThanEquals, "t", ["2024-01-01", "2024-01-02", "2024-01-03"], [false, true, true]),
            (O::DateGreaterThan, "t", ["2024-01-01", "2024-01-02", "2024-01-03"], [true, false, false]),
            (O::DateGreaterThanEquals, "t", ["2024-01-01", "2024-01-02", "2024-01-03"], [true, true, false]),
        ];
        for (operator, key, values, holds) in table {
            for (value, expected) in values.into_iter().zip(holds) {
                assert_eq!(
                    condition_holds(&cond(operator, key, &[value]), &k),
                    expected,
                    "{operator:?} {key} {value}"
                );
            }
        }
        // A value that is not a date or a number matches nothing.
        assert!(!condition_holds(&cond(O::DateEquals, "t", &["yesterday"]), &k));
        assert!(!condition_holds(&cond(O::NumericEquals, "n", &["five"]), &k));
    }

    #[test]
    fn dates_and_cidrs() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400));
        assert_eq!(parse_date("2024-01-02T03:04:05Z"), Some(1_704_164_645));
        assert_eq!(parse_date("1704164645"), Some(1_704_164_645));
        assert_eq!(parse_date("2024-13-02"), None);
        for malformed in
            ["2024x01-02", "2024-01x02", "2024/01/02", "2024-01-02X03:04:05Z", "2024-01-02T03:04:05"]
        {
            assert_eq!(parse_date(malformed), None, "{malformed}");
        }
        let k = keys(&[("aws:currenttime", &["2024-01-02T03:04:05Z"])]);
        assert!(condition_holds(
            &cond(Operator::DateLessThan, "aws:currenttime", &["2025-01-01T00:00:00Z"]),
            &k
        ));
        assert!(in_cidr("2001:db8::1", "2001:db8::/32"));
        assert!(!in_cidr("2001:db9::1", "2001:db8::/32"));
        assert!(!in_cidr("10.0.0.1", "2001:db8::/32"));
        assert!(in_cidr("10.1.2.3", "0.0.0.0/0"));
        assert!(!in_cidr("not an ip", "10.0.0.0/8"));
        assert!(!in_cidr("10.0.0.1", "10.0.0.0/99"));
    }
}
