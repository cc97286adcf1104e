//! The difference between the file and the registry: for each repository, what changes (each
//! attribute before and after) and the ECR calls that make the change. Computed from plain values
//! only, so that every rule here is tested without a registry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Value, json};

use crate::file::{Encryption, Repository};

/// The statement id of the pull grant berth writes for `allowed_account_ids`. Statements with any
/// other id are a person's, and every apply keeps them as they are.
pub const PULL_STATEMENT_SID: &str = "BerthApplyAllowedAccountsPull";

/// What an account in `allowed_account_ids` may do: pull, and nothing else.
pub const PULL_ACTIONS: [&str; 3] =
    ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];

/// The encryption a new repository gets when its block names none: as the module promises, KMS
/// under the account's default key (`alias/aws/ecr`).
const DEFAULT_ENCRYPTION: &str = "KMS";

/// A repository as the registry has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub name: String,
    pub uri: String,
    pub arn: String,
    pub tag_mutability: String,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The repository policy's text.
    pub policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    /// Whether it holds any image (looked up only for repositories `--prune` would delete).
    pub holds_images: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Keep,
    Delete,
}

/// One attribute's change, as the plan prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub attribute: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One call to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create {
        tag_mutability: String,
        scan_on_push: bool,
        encryption: Encryption,
        tags: BTreeMap<String, String>,
    },
    SetTagMutability(String),
    SetScanOnPush(bool),
    Tag(BTreeMap<String, String>),
    Untag(Vec<String>),
    SetPolicy(String),
    DeletePolicy,
    PutLifecyclePolicy(String),
    DeleteLifecyclePolicy,
    Delete {
        force: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub action: Action,
    pub changes: Vec<Change>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub entries: Vec<Entry>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.entries.iter().filter(|e| e.action == action).count()
    }

    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| e.action != Action::Keep)
    }
}

/// Why the file cannot be applied as it stands, found before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{repository}: {message}")]
pub struct Conflict {
    pub repository: String,
    pub message: String,
}

/// What `--prune` and `--force` allow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub prune: bool,
    pub force: bool,
}

/// The plan that makes the registry match the file. `observed` holds every repository of the
/// account (by name).
pub fn plan(
    desired: &[Repository],
    observed: &BTreeMap<String, Observed>,
    options: Options,
) -> Result<Plan, Vec<Conflict>> {
    let mut entries = Vec::new();
    let mut conflicts = Vec::new();
    for repository in desired {
        let name = repository.name.as_str();
        match observed.get(name) {
            None => entries.push(create(repository)),
            Some(current) => match update(repository, current) {
                Ok(entry) => entries.push(entry),
                Err(conflict) => conflicts.push(conflict),
            },
        }
    }
    if options.prune {
        let wanted: BTreeSet<&str> = desired.iter().map(|r| r.name.as_str()).collect();
        for (name, current) in observed {
            if wanted.contains(name.as_str()) {
                continue;
            }
            let holds_images = current.holds_images.unwrap_or(true);
            if holds_images && !options.force {
                conflicts.push(Conflict {
                    repository: name.clone(),
                    message: "not in the file, and it holds images: --prune deletes it only with --force, \
                              which deletes its images too"
                        .to_owned(),
                });
                continue;
            }
            entries.push(Entry {
                name: name.clone(),
                action: Action::Delete,
                changes: vec![Change {
                    attribute: "repository".to_owned(),
                    before: Some(if holds_images { "with its images" } else { "empty" }.to_owned()),
                    after: None,
                }],
                steps: vec![Step::Delete { force: holds_images }],
            });
        }
    }
    if conflicts.is_empty() { Ok(Plan { entries }) } else { Err(conflicts) }
}

fn create(repository: &Repository) -> Entry {
    let encryption = repository
        .encryption
        .clone()
        .unwrap_or_else(|| Encryption { kind: DEFAULT_ENCRYPTION.to_owned(), kms_key: None });
    let mut changes = vec![
        added("image_tag_mutability", repository.tag_mutability.as_str().to_owned()),
        added("scan_on_push", repository.scan_on_push.to_string()),
        added("encryption", encryption.to_string()),
    ];
    changes.extend(repository.tags.iter().map(|(k, v)| added(&format!("tags.{k}"), v.clone())));
    let mut steps = vec![Step::Create {
        tag_mutability: repository.tag_mutability.as_str().to_owned(),
        scan_on_push: repository.scan_on_push,
        encryption,
        tags: repository.tags.clone(),
    }];
    if !repository.pull_accounts.is_empty() {
        changes.push(added("allowed_account_ids", accounts_list(&pull_accounts(repository))));
        steps.push(Step::SetPolicy(merged_policy(None, repository).unwrap_or_default()));
    }
    if let Some(policy) = &repository.lifecycle_policy {
        changes.push(added("lifecycle_policy", lifecycle_summary(repository, policy)));
        steps.push(Step::PutLifecyclePolicy(policy.clone()));
    }
    Entry { name: repository.name.as_str().to_owned(), action: Action::Create, changes, steps }
}

fn update(repository: &Repository, current: &Observed) -> Result<Entry, Conflict> {
    let name = repository.name.as_str().to_owned();
    if let Some(wanted) = &repository.encryption
        && !encryption_matches(wanted, current)
    {
        return Err(Conflict {
            repository: name,
            message: format!(
                "encryption is {} and the file asks for {wanted}; a repository's encryption is fixed when it is \
                 created: delete it and apply again (its images go with it), or state its current encryption",
                describe_encryption(current)
            ),
        });
    }

    let mut changes = Vec::new();
    let mut steps = Vec::new();
    let mutability = repository.tag_mutability.as_str();
    if current.tag_mutability != mutability {
        let after = if current.tag_mutability.ends_with("_WITH_EXCLUSION") {
            // The module knows no exclusion filters: say that making it so drops them.
            format!("{mutability} (its tag exclusion filters are removed)")
        } else {
            mutability.to_owned()
        };
        changes.push(changed("image_tag_mutability", &current.tag_mutability, &after));
        steps.push(Step::SetTagMutability(mutability.to_owned()));
    }
    if current.scan_on_push != repository.scan_on_push {
        changes.push(changed(
            "scan_on_push",
            &current.scan_on_push.to_string(),
            &repository.scan_on_push.to_string(),
        ));
        steps.push(Step::SetScanOnPush(repository.scan_on_push));
    }

    let mut to_tag = BTreeMap::new();
    for (key, value) in &repository.tags {
        match current.tags.get(key) {
            Some(old) if old == value => {}
            old => {
                changes.push(Change {
                    attribute: format!("tags.{key}"),
                    before: old.cloned(),
                    after: Some(value.clone()),
                });
                to_tag.insert(key.clone(), value.clone());
            }
        }
    }
    let to_untag: Vec<String> =
        current.tags.keys().filter(|k| !repository.tags.contains_key(*k)).cloned().collect();
    for key in &to_untag {
        changes.push(Change {
            attribute: format!("tags.{key}"),
            before: current.tags.get(key).cloned(),
            after: None,
        });
    }
    if !to_tag.is_empty() {
        steps.push(Step::Tag(to_tag));
    }
    if !to_untag.is_empty() {
        steps.push(Step::Untag(to_untag));
    }

    let current_policy = current.policy.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok());
    let current_grant = current_policy.as_ref().and_then(pull_statement);
    let wanted_grant = pull_statement_for(repository);
    if current_grant != wanted_grant {
        let before = current_grant.as_ref().map(|s| accounts_list(&granted_accounts(s)));
        let after = wanted_grant.as_ref().map(|s| accounts_list(&granted_accounts(s)));
        changes.push(Change {
            attribute: "allowed_account_ids".to_owned(),
            // The same accounts before and after: the statement was edited by hand; say so.
            before: if before == after {
                before.map(|b| format!("{b} (statement {PULL_STATEMENT_SID} edited)"))
            } else {
                before
            },
            after,
        });
        steps.push(match merged_policy(current_policy.as_ref(), repository) {
            Some(policy) => Step::SetPolicy(policy),
            None => Step::DeletePolicy,
        });
    }

    let current_lifecycle = current.lifecycle_policy.as_deref().map(parse_json);
    let wanted_lifecycle = repository.lifecycle_policy.as_deref().map(parse_json);
    if current_lifecycle != wanted_lifecycle {
        let mut before = current.lifecycle_policy.as_ref().map(|p| summarize_rules(p));
        let mut after = repository.lifecycle_policy.as_ref().map(|p| lifecycle_summary(repository, p));
        if before == after
            && let (Some(old), Some(new)) = (&current_lifecycle, &wanted_lifecycle)
        {
            // The summaries match (same rule count and descriptions): show the rules that differ.
            (before, after) = differing_rules(old, new);
        }
        changes.push(Change { attribute: "lifecycle_policy".to_owned(), before, after });
        steps.push(match &repository.lifecycle_policy {
            Some(policy) => Step::PutLifecyclePolicy(policy.clone()),
            None => Step::DeleteLifecyclePolicy,
        });
    }

    let action = if steps.is_empty() { Action::Keep } else { Action::Update };
    Ok(Entry { name, action, changes, steps })
}

/// Whether the repository's encryption is what the file states. A key named by alias cannot be
/// told from the key ARN the registry reports without asking the key service, so only its type is
/// compared; a key id or key ARN is compared too.
fn encryption_matches(wanted: &Encryption, current: &Observed) -> bool {
    if wanted.kind != current.encryption_type {
        return false;
    }
    match (&wanted.kms_key, &current.kms_key) {
        (Some(key), Some(current_key)) if !key.starts_with("alias/") && !key.contains(":alias/") => {
            current_key == key || current_key.ends_with(&format!("key/{key}"))
        }
        _ => true,
    }
}

fn describe_encryption(current: &Observed) -> String {
    match &current.kms_key {
        Some(key) => format!("{} ({key})", current.encryption_type),
        None => current.encryption_type.clone(),
    }
}

fn pull_accounts(repository: &Repository) -> Vec<String> {
    repository.pull_accounts.iter().map(|a| a.as_str().to_owned()).collect()
}

/// The statement that lets the file's accounts pull, or `None` when it names none.
fn pull_statement_for(repository: &Repository) -> Option<Value> {
    if repository.pull_accounts.is_empty() {
        return None;
    }
    let principals: Vec<String> =
        repository.pull_accounts.iter().map(|a| format!("arn:aws:iam::{}:root", a.as_str())).collect();
    Some(json!({
        "Sid": PULL_STATEMENT_SID,
        "Effect": "Allow",
        "Principal": { "AWS": principals },
        "Action": PULL_ACTIONS,
    }))
}

/// berth's own statement in a policy, if it has one.
fn pull_statement(policy: &Value) -> Option<Value> {
    statements(policy).into_iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(PULL_STATEMENT_SID))
}

fn statements(policy: &Value) -> Vec<Value> {
    match policy.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => Vec::new(),
    }
}

/// The accounts a pull statement names, from its principals.
fn granted_accounts(statement: &Value) -> Vec<String> {
    let principals = match statement.pointer("/Principal/AWS") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    principals
        .into_iter()
        .map(|p| {
            p.strip_prefix("arn:aws:iam::")
                .and_then(|rest| rest.strip_suffix(":root"))
                .map_or(p.clone(), str::to_owned)
        })
        .collect()
}

/// The repository policy with berth's statement as the file wants it and every other statement as
/// it was; `None` when nothing is left.
fn merged_policy(current: Option<&Value>, repository: &Repository) -> Option<String> {
    let mut kept: Vec<Value> = current
        .map(statements)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(PULL_STATEMENT_SID))
        .collect();
    if let Some(statement) = pull_statement_for(repository) {
        kept.push(statement);
    }
    if kept.is_empty() {
        return None;
    }
    let version = current.and_then(|p| p.get("Version")).cloned().unwrap_or_else(|| json!("2012-10-17"));
    Some(json!({ "Version": version, "Statement": kept }).to_string())
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn lifecycle_summary(repository: &Repository, policy: &str) -> String {
    let rules = summarize_rules(policy);
    if repository.default_lifecycle { format!("default: {rules}") } else { rules }
}

/// `3 rules` or `1 rule: Keep last 30 production images`.
fn summarize_rules(policy: &str) -> String {
    let value = parse_json(policy);
    let rules = value.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    match rules.as_slice() {
        [only] => match only.get("description").and_then(Value::as_str) {
            Some(description) => format!("1 rule ({description})"),
            None => "1 rule".to_owned(),
        },
        many => format!("{} rules", many.len()),
    }
}

/// The rules that differ between two policies, each as `rule N: ...`, before and after.
fn differing_rules(old: &Value, new: &Value) -> (Option<String>, Option<String>) {
    let rules = |policy: &Value| policy.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    let (old, new) = (rules(old), rules(new));
    let mut before = Vec::new();
    let mut after = Vec::new();
    for index in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(index), new.get(index));
        if a != b {
            before.extend(a.map(describe_rule));
            after.extend(b.map(describe_rule));
        }
    }
    let joined = |parts: Vec<String>| (!parts.is_empty()).then(|| parts.join("; "));
    (joined(before), joined(after))
}

/// `rule 1: tagged prod* more than 30 images` or, where that says too little, the rule's JSON.
fn describe_rule(rule: &Value) -> String {
    let selection = &rule["selection"];
    let priority = rule["rulePriority"].to_string();
    let status = selection["tagStatus"].as_str().unwrap_or("?");
    let patterns: Vec<String> = ["tagPrefixList", "tagPatternList"]
        .iter()
        .filter_map(|list| selection[*list].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .map(|p| if p.contains('*') { p.to_owned() } else { format!("{p}*") })
        .collect();
    let which =
        if patterns.is_empty() { status.to_owned() } else { format!("{status} {}", patterns.join(",")) };
    let count = &selection["countNumber"];
    let limit = match selection["countType"].as_str() {
        Some("imageCountMoreThan") => format!("more than {count} images"),
        Some("sinceImagePushed") => {
            format!("pushed more than {count} {}", selection["countUnit"].as_str().unwrap_or("days"))
        }
        Some(other) => format!("{other} {count}"),
        None => serde_json::to_string(selection).unwrap_or_default(),
    };
    format!("rule {priority}: {which} {limit} -> {}", rule["action"]["type"].as_str().unwrap_or("?"))
}

fn accounts_list(accounts: &[String]) -> String {
    format!("[{}]", accounts.join(", "))
}

fn added(attribute: &str, after: String) -> Change {
    Change { attribute: attribute.to_owned(), before: None, after: Some(after) }
}

fn changed(attribute: &str, before: &str, after: &str) -> Change {
    Change { attribute: attribute.to_owned(), before: Some(before.to_owned()), after: Some(after.to_owned()) }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Keep => "no change",
            Self::Delete => "delete",
        })
    }
}

/// The plan as a person reads it: one line per attribute that changes, with its value before and
/// after, and a summary.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for entry in &plan.entries {
        let sign = match entry.action {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
            Action::Keep => continue,
        };
        out.push_str(&format!("{sign} {} ({})\n", entry.name, entry.action));
        for change in &entry.changes {
            let line = match (&change.before, &change.after) {
                (None, Some(after)) if entry.action == Action::Update => {
                    format!("    {}: (none) -> {after}\n", change.attribute)
                }
                (None, Some(after)) => format!("    {}: {after}\n", change.attribute),
                (Some(before), Some(after)) => format!("    {}: {before} -> {after}\n", change.attribute),
                (Some(before), None) => format!("    {}: {before} -> (removed)\n", change.attribute),
                (None, None) => continue,
            };
            out.push_str(&line);
        }
    }
    if plan.has_changes() {
        out.push_str(&format!(
            "Plan: {} to create, {} to update, {} to delete, {} unchanged.\n",
            plan.count(Action::Create),
            plan.count(Action::Update),
            plan.count(Action::Delete),
            plan.count(Action::Keep)
        ));
    } else {
        out.push_str(&format!("No changes: {} repositories match the file.\n", plan.count(Action::Keep)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::parse;

    fn desired(body: &str) -> Repository {
        parse("f.hcl", &format!("module \"m\" {{\n  name = \"team/app\"\n{body}\n}}\n"), &|_| None)
            .expect("parses")
            .remove(0)
    }

    /// The registry's view of a repository that matches `repository` exactly.
    fn observed_as(repository: &Repository) -> Observed {
        let mut observed = Observed {
            name: repository.name.as_str().to_owned(),
            uri: "host/000000000000/team/app".to_owned(),
            arn: "arn:aws:ecr:us-east-1:000000000000:repository/team/app".to_owned(),
            tag_mutability: repository.tag_mutability.as_str().to_owned(),
            scan_on_push: repository.scan_on_push,
            encryption_type: "KMS".to_owned(),
            kms_key: Some("arn:aws:kms:us-east-1:000000000000:key/1234".to_owned()),
            tags: repository.tags.clone(),
            policy: None,
            lifecycle_policy: repository.lifecycle_policy.clone(),
            holds_images: None,
        };
        if let Step::SetPolicy(policy) = &create(repository)
            .steps
            .iter()
            .find(|s| matches!(s, Step::SetPolicy(_)))
            .cloned()
            .unwrap_or(Step::DeletePolicy)
        {
            observed.policy = Some(policy.clone());
        }
        observed
    }

    fn one(observed: Observed) -> BTreeMap<String, Observed> {
        BTreeMap::from([(observed.name.clone(), observed)])
    }

    #[test]
    fn a_registry_that_matches_plans_no_change() {
        let wanted = desired(
            "  allowed_account_ids = [\"111111111111\"]\n  tags = { a = \"b\" }\n  scan_on_push = true",
        );
        let plan = plan(std::slice::from_ref(&wanted), &one(observed_as(&wanted)), Options::default())
            .expect("plans");
        assert!(!plan.has_changes(), "{plan:?}");
        assert!(render(&plan).starts_with("No changes: 1 repositories"), "{}", render(&plan));
    }

    #[test]
    fn a_changed_count_shows_the_rule_and_a_new_tag_shows_it_was_absent() {
        let policy = |count: u32| {
            format!(
                "  tags = {{ a = \"b\" }}\n  lifecycle_policy = jsonencode({{ rules = [{{ rulePriority = 1, \
                 description = \"Keep last prod images\", selection = {{ tagStatus = \"tagged\", \
                 tagPrefixList = [\"prod-\"], countType = \"imageCountMoreThan\", countNumber = {count} }}, \
                 action = {{ type = \"expire\" }} }}] }})"
            )
        };
        let before = desired(&policy(30));
        let mut after = desired(&policy(50));
        after.tags.insert("team".into(), "ml".into());
        let text = render(&plan(&[after], &one(observed_as(&before)), Options::default()).expect("plans"));
        assert!(
            text.contains(
                "lifecycle_policy: rule 1: tagged prod-* more than 30 images -> expire -> \
                 rule 1: tagged prod-* more than 50 images -> expire"
            ),
            "{text}"
        );
        assert!(text.contains("tags.team: (none) -> ml"), "{text}");
    }

    #[test]
    fn a_new_repository_gets_kms_under_the_default_key_unless_the_file_says_otherwise() {
        let plan = plan(&[desired("")], &BTreeMap::new(), Options::default()).expect("plans");
        let Step::Create { encryption, .. } = &plan.entries[0].steps[0] else { panic!("{plan:?}") };
        assert_eq!(encryption, &Encryption { kind: "KMS".into(), kms_key: None });
        assert!(plan.entries[0].steps.contains(&Step::PutLifecyclePolicy(crate::default_lifecycle_policy())));
        let plan = super::plan(&[desired("  encryption = \"AES256\"")], &BTreeMap::new(), Options::default())
            .expect("plans");
        let Step::Create { encryption, .. } = &plan.entries[0].steps[0] else { panic!("{plan:?}") };
        assert_eq!(encryption.kind, "AES256");
    }

    #[test]
    fn the_pull_grant_is_rewritten_alone_and_other_statements_are_kept() {
        let wanted = desired("  allowed_account_ids = [\"111111111111\", \"222222222222\"]");
        let mut current = observed_as(&wanted);
        let person =
            json!({"Sid": "Mine", "Effect": "Deny", "Principal": "*", "Action": "ecr:DeleteRepository"});
        current.policy = Some(
            json!({"Version": "2012-10-17", "Statement": [person.clone(), {
                "Sid": PULL_STATEMENT_SID, "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::111111111111:root"]}, "Action": PULL_ACTIONS
            }]})
            .to_string(),
        );
        let plan = plan(&[wanted], &one(current), Options::default()).expect("plans");
        let entry = &plan.entries[0];
        assert_eq!(
            entry.changes,
            [Change {
                attribute: "allowed_account_ids".into(),
                before: Some("[111111111111]".into()),
                after: Some("[111111111111, 222222222222]".into())
            }]
        );
        let [Step::SetPolicy(text)] = entry.steps.as_slice() else { panic!("{entry:?}") };
        let policy: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(policy["Statement"][0], person, "the person's statement, unchanged");
        assert_eq!(
            policy["Statement"][1]["Principal"]["AWS"],
            json!(["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"])
        );
    }

    #[test]
    fn dropping_every_account_deletes_the_policy_only_when_nothing_else_is_in_it() {
        let granted = desired("  allowed_account_ids = [\"111111111111\"]");
        let current = observed_as(&granted);
        let none = desired("");
        let plan =
            plan(std::slice::from_ref(&none), &one(current.clone()), Options::default()).expect("plans");
        assert_eq!(plan.entries[0].steps, [Step::DeletePolicy]);

        let mut shared = current;
        let mut policy: Value =
            serde_json::from_str(shared.policy.as_deref().expect("policy")).expect("JSON");
        policy["Statement"]
            .as_array_mut()
            .expect("list")
            .push(json!({"Sid": "Mine", "Effect": "Allow", "Principal": "*", "Action": "ecr:ListImages"}));
        shared.policy = Some(policy.to_string());
        let plan = super::plan(&[none], &one(shared), Options::default()).expect("plans");
        let [Step::SetPolicy(text)] = plan.entries[0].steps.as_slice() else { panic!("{plan:?}") };
        let kept: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(kept["Statement"].as_array().expect("list").len(), 1);
        assert_eq!(kept["Statement"][0]["Sid"], "Mine");
    }

    #[test]
    fn a_hand_edited_grant_is_restored_and_says_so() {
        let wanted = desired("  allowed_account_ids = [\"111111111111\"]");
        let mut current = observed_as(&wanted);
        current.policy = Some(
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": PULL_STATEMENT_SID, "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::111111111111:root"]}, "Action": "ecr:*"
            }]})
            .to_string(),
        );
        let plan = plan(&[wanted], &one(current), Options::default()).expect("plans");
        assert!(
            plan.entries[0].changes[0].before.as_deref().is_some_and(|b| b.contains("edited")),
            "{plan:?}"
        );
    }

    #[test]
    fn encryption_cannot_change_and_an_alias_is_compared_by_type() {
        let current = observed_as(&desired(""));
        let conflicts =
            plan(&[desired("  encryption = \"AES256\"")], &one(current.clone()), Options::default())
                .expect_err("refused");
        assert!(conflicts[0].message.contains("fixed when it is created"), "{conflicts:?}");
        for same in [
            "  encryption = \"KMS\"",
            "  kms_key = \"alias/team\"",
            "  kms_key = \"1234\"",
            "  kms_key = \"arn:aws:kms:us-east-1:000000000000:key/1234\"",
        ] {
            let plan = plan(&[desired(same)], &one(current.clone()), Options::default()).expect("plans");
            assert!(!plan.has_changes(), "{same}: {plan:?}");
        }
        assert!(plan(&[desired("  kms_key = \"5678\"")], &one(current), Options::default()).is_err());
    }

    #[test]
    fn prune_deletes_empty_repositories_and_full_ones_only_with_force() {
        let wanted = desired("");
        let mut observed = one(observed_as(&wanted));
        for (name, holds) in [("old/empty", false), ("old/full", true)] {
            observed.insert(
                name.into(),
                Observed { name: name.into(), holds_images: Some(holds), ..Observed::default() },
            );
        }
        let plain = plan(std::slice::from_ref(&wanted), &observed, Options::default()).expect("plans");
        assert!(!plain.has_changes(), "without --prune nothing is deleted");
        let refused = plan(std::slice::from_ref(&wanted), &observed, Options { prune: true, force: false })
            .expect_err("refused");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].repository, "old/full");
        let forced = plan(&[wanted], &observed, Options { prune: true, force: true }).expect("plans");
        let deleted: Vec<(&str, &[Step])> = forced
            .entries
            .iter()
            .filter(|e| e.action == Action::Delete)
            .map(|e| (e.name.as_str(), e.steps.as_slice()))
            .collect();
        assert_eq!(
            deleted,
            [
                ("old/empty", &[Step::Delete { force: false }][..]),
                ("old/full", &[Step::Delete { force: true }][..])
            ]
        );
    }
}
