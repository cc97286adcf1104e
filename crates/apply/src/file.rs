//! The file `berth apply` reads: `module` or `repository` blocks in HCL, as platform teams write
//! them for the shared-registry module, with `locals`, `variable` defaults and `jsonencode(...)`.
//! Everything is checked here, before the registry is asked anything, and every refusal names the
//! file, the line and the input at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::panic::AssertUnwindSafe;

use berth_core::{AccountId, RepositoryName};
use hcl::Value;
use hcl::edit::Span;
use hcl::edit::structure::{Attribute, Block, Structure};
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};

/// The inputs a repository block takes, as the module names them.
pub const INPUTS: &[&str] = &[
    "name",
    "image_tag_mutability",
    "scan_on_push",
    "allowed_account_ids",
    "lifecycle_policy",
    "disable_default_lifecycle",
    "encryption",
    "kms_key",
    "tags",
];

/// Attributes of a `module` block that Terraform gives meaning to and berth ignores.
const IGNORED_MODULE_ATTRIBUTES: &[&str] = &["source", "version", "providers", "depends_on"];

/// Top-level blocks a Terraform file may hold beside the modules; berth skips them.
const IGNORED_BLOCKS: &[&str] = &["terraform", "provider", "output"];

/// ECR's limits on resource tags.
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

/// A repository as the file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: RepositoryName,
    /// The block that describes it, e.g. `module "shared_ecr"`, for messages.
    pub block: String,
    pub line: usize,
    pub tag_mutability: TagMutability,
    pub scan_on_push: bool,
    /// Accounts whose principals may pull, sorted, without repeats.
    pub pull_accounts: Vec<AccountId>,
    /// The lifecycle policy document, or `None` for no lifecycle policy.
    pub lifecycle_policy: Option<String>,
    /// Whether `lifecycle_policy` is the default one (no policy was given).
    pub default_lifecycle: bool,
    /// The encryption the file asks for; `None` when it names none (new repositories then get
    /// `KMS` under the account's default key, existing ones keep theirs).
    pub encryption: Option<Encryption>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagMutability {
    Mutable,
    Immutable,
}

impl TagMutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutable => "MUTABLE",
            Self::Immutable => "IMMUTABLE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// `AES256`, `KMS` or `KMS_DSSE`, as ECR names them.
    pub kind: String,
    /// The key (id, ARN, alias or alias ARN); `None` for the account's default key.
    pub kms_key: Option<String>,
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kms_key, self.kind.as_str()) {
            (Some(key), _) => write!(f, "{} ({key})", self.kind),
            (None, "AES256") => f.write_str("AES256"),
            (None, kind) => write!(f, "{kind} (the account's default key, alias/aws/ecr)"),
        }
    }
}

/// Why the file was refused: where, which input, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct FileError {
    pub path: String,
    pub line: usize,
    /// The block and input at fault, e.g. `module "shared_ecr" lifecycle_policy`.
    pub field: Option<String>,
    pub message: String,
}

/// The default lifecycle policy when a block gives none: the last 10 images tagged `v…` and,
/// separately, the last 10 tagged `release…` are kept, and untagged images expire 14 days after
/// their push. One rule per prefix, because one rule listing both prefixes would select only
/// images that carry a tag of each.
pub fn default_lifecycle_policy() -> String {
    let keep_last = |priority: u32, prefix: &str| {
        serde_json::json!({
            "rulePriority": priority,
            "description": format!("Keep the last 10 images tagged {prefix}*"),
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": [prefix],
                "countType": "imageCountMoreThan",
                "countNumber": 10
            },
            "action": { "type": "expire" }
        })
    };
    serde_json::json!({
        "rules": [
            keep_last(1, "v"),
            keep_last(2, "release"),
            {
                "rulePriority": 3,
                "description": "Expire untagged images 14 days after their push",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14
                },
                "action": { "type": "expire" }
            }
        ]
    })
    .to_string()
}

/// Reads the file's repositories. `variable` looks up a `TF_VAR_`-style override of a variable's
/// default (the caller passes the environment; tests pass their own).
pub fn parse(
    path: &str,
    text: &str,
    variable: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Repository>, FileError> {
    let source = Source { path, text };
    let body = hcl::edit::parser::parse_body(text).map_err(|e| FileError {
        path: path.to_owned(),
        line: e.location().line(),
        field: None,
        message: format!("not valid HCL: {} (column {})", e.message(), e.location().column()),
    })?;

    let mut variables = hcl::Map::new();
    let mut locals = Vec::new();
    let mut repository_blocks = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attribute) => {
                return Err(source.error(
                    attribute.span(),
                    None,
                    format!(
                        "`{}` is an attribute outside any block; inputs go inside a `module` or `repository` block",
                        attribute.key.as_str()
                    ),
                ));
            }
            Structure::Block(block) => match block.ident.as_str() {
                "module" | "repository" => repository_blocks.push(block),
                "locals" => locals.extend(block.body.iter().filter_map(Structure::as_attribute)),
                "variable" => {
                    let (name, value) = source.variable(block, variable)?;
                    variables.insert(name, value);
                }
                kind if IGNORED_BLOCKS.contains(&kind) => {}
                other => {
                    return Err(source.error(
                        block.span(),
                        None,
                        format!(
                            "unknown block type `{other}`: berth apply reads `module` and `repository` blocks, \
                             with `locals` and `variable`, and skips `terraform`, `provider` and `output`"
                        ),
                    ));
                }
            },
        }
    }

    let mut context = Context::new();
    context.declare_func("jsonencode", FuncDef::builder().param(ParamType::Any).build(jsonencode));
    context.declare_var("var", Value::Object(variables));
    let local = evaluate_locals(&source, &mut context, &locals)?;
    context.declare_var("local", Value::Object(local));

    let mut repositories: Vec<Repository> = Vec::new();
    let mut labels = BTreeSet::new();
    for block in repository_blocks {
        let repository = source.repository(block, &context)?;
        let label = block_title(block);
        if !labels.insert(label.clone()) {
            return Err(source.error(block.span(), None, format!("{label} is declared twice")));
        }
        let Some(repository) = repository else {
            continue;
        };
        if let Some(first) = repositories.iter().find(|r| r.name == repository.name) {
            return Err(source.error(
                block.span(),
                Some(format!("{} name", repository.block)),
                format!(
                    "repository {} is already described by {} on line {}",
                    repository.name.as_str(),
                    first.block,
                    first.line
                ),
            ));
        }
        repositories.push(repository);
    }
    Ok(repositories)
}

/// Evaluates an expression of the file. The evaluator's arithmetic panics on some input (a
/// remainder by zero, an overflow), so a panic here is a refusal of that expression, as is a
/// result that is not a finite number.
fn evaluate(expression: &hcl::edit::expr::Expression, context: &Context<'_>) -> Result<Value, String> {
    let expression: hcl::Expression = expression.clone().into();
    let value = std::panic::catch_unwind(AssertUnwindSafe(|| expression.evaluate(context)))
        .map_err(|_| {
            "arithmetic that has no answer (a division or remainder by zero, or a number out of range)"
                .to_owned()
        })?
        .map_err(|e| {
            let message = e.to_string();
            if message.contains("undefined function") {
                format!("{message}: berth apply evaluates jsonencode(...) only; write the value itself")
            } else {
                message
            }
        })?;
    if has_non_finite_number(&value) {
        return Err("arithmetic that has no finite answer (a division by zero)".to_owned());
    }
    Ok(value)
}

fn has_non_finite_number(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_none_or(|f| !f.is_finite()),
        Value::Array(items) => items.iter().any(has_non_finite_number),
        Value::Object(map) => map.values().any(has_non_finite_number),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// `jsonencode(value)`, as Terraform writes it: compact JSON.
fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    let value = args.into_values().into_iter().next().unwrap_or(Value::Null);
    serde_json::to_string(&value).map(Value::String).map_err(|e| e.to_string())
}

/// Locals may name each other in any order: evaluate those whose references are known, and
/// repeat until all are (or until a pass makes no progress, which names the first that failed).
fn evaluate_locals(
    source: &Source<'_>,
    context: &mut Context<'_>,
    attributes: &[&Attribute],
) -> Result<hcl::Map<String, Value>, FileError> {
    let mut known = hcl::Map::new();
    let mut pending: Vec<&Attribute> = attributes.to_vec();
    while !pending.is_empty() {
        context.declare_var("local", Value::Object(known.clone()));
        let before = pending.len();
        let mut first_error = None;
        let mut still_pending = Vec::new();
        for attribute in pending {
            match evaluate(&attribute.value, context) {
                Ok(value) => {
                    known.insert(attribute.key.as_str().to_owned(), value);
                }
                Err(e) => {
                    first_error.get_or_insert((attribute, e));
                    still_pending.push(attribute);
                }
            }
        }
        if still_pending.len() == before
            && let Some((attribute, message)) = first_error
        {
            return Err(source.error(
                attribute.span(),
                Some(format!("local.{}", attribute.key.as_str())),
                message,
            ));
        }
        pending = still_pending;
    }
    Ok(known)
}

/// `module "shared_ecr"`, `repository "mlops/app"`.
fn block_title(block: &Block) -> String {
    let labels: Vec<String> = block.labels.iter().map(|l| format!("\"{}\"", l.as_str())).collect();
    if labels.is_empty() {
        block.ident.as_str().to_owned()
    } else {
        format!("{} {}", block.ident.as_str(), labels.join(" "))
    }
}

struct Source<'a> {
    path: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, span: Option<Range<usize>>) -> usize {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        self.text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn error(&self, span: Option<Range<usize>>, field: Option<String>, message: String) -> FileError {
        FileError { path: self.path.to_owned(), line: self.line_of(span), field, message }
    }

    /// A `variable "NAME" { default = ... }` block, its default replaced by `TF_VAR_NAME` when set.
    fn variable(
        &self,
        block: &Block,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, Value), FileError> {
        let [label] = block.labels.as_slice() else {
            return Err(self.error(
                block.span(),
                None,
                "a variable block takes one label, its name".to_owned(),
            ));
        };
        let name = label.as_str().to_owned();
        if let Some(text) = lookup(&name) {
            // As Terraform reads TF_VAR_ values: literally for a string variable, as an HCL
            // expression for a list, map, number or bool; a variable of no declared type is
            // taken to have its default's type (evaluation here does not convert "true" to true).
            let is_string = match block.body.get_attribute("type") {
                Some(t) => matches!(
                    hcl::Expression::from(t.value.clone()),
                    hcl::Expression::Variable(v) if v.as_str() == "string"
                ),
                None => block
                    .body
                    .get_attribute("default")
                    .is_none_or(|d| matches!(d.value, hcl::edit::expr::Expression::String(_))),
            };
            if is_string {
                return Ok((name, Value::String(text)));
            }
            let refuse = |message: String| {
                self.error(block.span(), Some(format!("var.{name}")), format!("TF_VAR_{name}: {message}"))
            };
            let expression = hcl::edit::parser::parse_expr(&text)
                .map_err(|e| refuse(format!("not an HCL value: {}", e.message())))?;
            let value = evaluate(&expression, &Context::new()).map_err(refuse)?;
            return Ok((name, value));
        }
        let Some(default) = block.body.get_attribute("default") else {
            return Err(self.error(
                block.span(),
                Some(format!("var.{name}")),
                format!("the variable has no default: give it one, or set TF_VAR_{name}"),
            ));
        };
        let value = evaluate(&default.value, &Context::new())
            .map_err(|e| self.error(default.span(), Some(format!("var.{name}")), e))?;
        Ok((name, value))
    }

    /// The repository a block describes, or `None` for a block switched off by `count = 0`.
    fn repository(&self, block: &Block, context: &Context<'_>) -> Result<Option<Repository>, FileError> {
        let title = block_title(block);
        let is_module = block.ident.as_str() == "module";
        let label = match block.labels.as_slice() {
            [label] => label.as_str().to_owned(),
            _ => {
                return Err(self.error(
                    block.span(),
                    None,
                    format!(
                        "a {} block takes one label, e.g. {} \"shared_ecr\"",
                        block.ident.as_str(),
                        block.ident.as_str()
                    ),
                ));
            }
        };

        let mut inputs: BTreeMap<&str, (&Attribute, Value)> = BTreeMap::new();
        for structure in block.body.iter() {
            let attribute = match structure {
                Structure::Attribute(attribute) => attribute,
                Structure::Block(inner) => {
                    return Err(self.error(
                        inner.span(),
                        Some(title.clone()),
                        format!(
                            "unexpected block `{}` inside {title}: inputs are attributes, e.g. tags = {{ ... }}",
                            inner.ident.as_str()
                        ),
                    ));
                }
            };
            let key = attribute.key.as_str();
            if is_module && IGNORED_MODULE_ATTRIBUTES.contains(&key) {
                continue;
            }
            let field = format!("{title} {key}");
            match key {
                "count" => {
                    let value = evaluate(&attribute.value, context)
                        .map_err(|e| self.error(attribute.span(), Some(field.clone()), e))?;
                    match value {
                        Value::Number(n) if n.as_u64() == Some(0) => return Ok(None),
                        Value::Number(n) if n.as_u64() == Some(1) => continue,
                        other => {
                            return Err(self.error(
                                attribute.span(),
                                Some(field),
                                format!(
                                    "count is {other}: a block describes one repository, so count may be 0 \
                                     (leave it out of the registry) or 1; write one block per repository"
                                ),
                            ));
                        }
                    }
                }
                "for_each" => {
                    return Err(self.error(
                        attribute.span(),
                        Some(field),
                        "for_each is not supported: write one block per repository".to_owned(),
                    ));
                }
                _ => {}
            }
            let Some(&input) = INPUTS.iter().find(|&&input| input == key) else {
                return Err(self.error(
                    attribute.span(),
                    Some(field),
                    format!("unknown input; the inputs are {}", INPUTS.join(", ")),
                ));
            };
            let value = evaluate(&attribute.value, context)
                .map_err(|e| self.error(attribute.span(), Some(field.clone()), e))?;
            // `null` means "as if not given", as in Terraform; for lifecycle_policy that is no policy.
            if value == Value::Null && input != "lifecycle_policy" {
                continue;
            }
            inputs.insert(input, (attribute, value));
        }

        let refuse = |input: &str, message: String| {
            let span = inputs.get(input).and_then(|(attribute, _)| attribute.span()).or_else(|| block.span());
            self.error(span, Some(format!("{title} {input}")), message)
        };

        let name = match inputs.get("name") {
            Some((_, value)) => {
                let text = expect_string(value).map_err(|m| refuse("name", m))?;
                text.parse::<RepositoryName>().map_err(|e| refuse("name", format!("{e}")))?
            }
            None if is_module => {
                return Err(refuse(
                    "name",
                    "missing: every repository needs a name, e.g. name = \"mlops/python-base\"".to_owned(),
                ));
            }
            None => label.parse::<RepositoryName>().map_err(|e| {
                self.error(
                    block.span(),
                    Some(title.clone()),
                    format!("the label is the repository name: {e}"),
                )
            })?,
        };

        let tag_mutability = match inputs.get("image_tag_mutability") {
            None => TagMutability::Mutable,
            Some((_, value)) => {
                match expect_string(value).map_err(|m| refuse("image_tag_mutability", m))?.as_str() {
                    "MUTABLE" => TagMutability::Mutable,
                    "IMMUTABLE" => TagMutability::Immutable,
                    other => {
                        return Err(refuse(
                            "image_tag_mutability",
                            format!("{other:?} is neither MUTABLE nor IMMUTABLE"),
                        ));
                    }
                }
            }
        };

        let scan_on_push = match inputs.get("scan_on_push") {
            None => false,
            Some((_, value)) => expect_bool(value).map_err(|m| refuse("scan_on_push", m))?,
        };

        let pull_accounts = match inputs.get("allowed_account_ids") {
            None => Vec::new(),
            Some((_, value)) => {
                let Value::Array(items) = value else {
                    return Err(refuse(
                        "allowed_account_ids",
                        format!("expected a list of 12-digit account ids, got {}", kind_of(value)),
                    ));
                };
                let mut accounts = BTreeSet::new();
                for (index, item) in items.iter().enumerate() {
                    let text = expect_string(item).map_err(|m| {
                        refuse(
                            "allowed_account_ids",
                            format!("element {index}: {m} (write account ids in quotes)"),
                        )
                    })?;
                    let account = text.parse::<AccountId>().map_err(|_| {
                        refuse(
                            "allowed_account_ids",
                            format!("element {index}: {text:?} is not a 12-digit account id"),
                        )
                    })?;
                    accounts.insert(account);
                }
                accounts.into_iter().collect()
            }
        };

        let disable_default = match inputs.get("disable_default_lifecycle") {
            None => false,
            Some((_, value)) => expect_bool(value).map_err(|m| refuse("disable_default_lifecycle", m))?,
        };
        let (lifecycle_policy, default_lifecycle) = match inputs.get("lifecycle_policy") {
            Some(_) if disable_default => {
                return Err(refuse(
                    "disable_default_lifecycle",
                    "give either a lifecycle_policy or disable_default_lifecycle = true, not both".to_owned(),
                ));
            }
            Some((_, Value::Null)) => (None, false),
            Some((_, value)) => {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Object(_) => {
                        serde_json::to_string(value).map_err(|e| refuse("lifecycle_policy", e.to_string()))?
                    }
                    other => {
                        return Err(refuse(
                            "lifecycle_policy",
                            format!(
                                "expected ECR's lifecycle policy JSON, e.g. jsonencode({{ rules = [...] }}), got {}",
                                kind_of(other)
                            ),
                        ));
                    }
                };
                berth_lifecycle::parse(&text).map_err(|e| refuse("lifecycle_policy", e.to_string()))?;
                (Some(text), false)
            }
            None if disable_default => (None, false),
            None => (Some(default_lifecycle_policy()), true),
        };

        let mut encryption = match inputs.get("encryption") {
            None => None,
            Some((_, Value::Null)) => None,
            Some((_, Value::String(kind))) => Some(Encryption {
                kind: encryption_kind(kind).map_err(|m| refuse("encryption", m))?,
                kms_key: None,
            }),
            Some((_, Value::Object(fields))) => {
                let mut kind = None;
                let mut kms_key = None;
                for (key, value) in fields {
                    match key.as_str() {
                        "type" | "encryption_type" => {
                            kind = Some(
                                encryption_kind(
                                    &expect_string(value)
                                        .map_err(|m| refuse("encryption", format!("{key}: {m}")))?,
                                )
                                .map_err(|m| refuse("encryption", m))?,
                            );
                        }
                        "kms_key" => {
                            kms_key = Some(
                                expect_string(value)
                                    .map_err(|m| refuse("encryption", format!("kms_key: {m}")))?,
                            )
                        }
                        other => {
                            return Err(refuse(
                                "encryption",
                                format!("unknown field {other:?}; the fields are type and kms_key"),
                            ));
                        }
                    }
                }
                let kind = kind.unwrap_or_else(|| {
                    if kms_key.is_some() { "KMS".to_owned() } else { "AES256".to_owned() }
                });
                Some(Encryption { kind, kms_key })
            }
            Some((_, other)) => {
                return Err(refuse(
                    "encryption",
                    format!(
                        "expected \"AES256\", \"KMS\" or {{ type = \"KMS\", kms_key = \"alias/...\" }}, got {}",
                        kind_of(other)
                    ),
                ));
            }
        };
        if let Some((_, value)) = inputs.get("kms_key") {
            let key = expect_string(value).map_err(|m| refuse("kms_key", m))?;
            match &mut encryption {
                None => encryption = Some(Encryption { kind: "KMS".to_owned(), kms_key: Some(key) }),
                Some(e) if e.kind == "AES256" => {
                    return Err(refuse(
                        "kms_key",
                        "a kms_key needs encryption = \"KMS\" (AES256 uses the registry's own key)"
                            .to_owned(),
                    ));
                }
                Some(e) if e.kms_key.as_ref().is_some_and(|k| *k != key) => {
                    return Err(refuse("kms_key", "encryption names another kms_key".to_owned()));
                }
                Some(e) => e.kms_key = Some(key),
            }
        }
        if let Some(Encryption { kind, kms_key: Some(_) }) = &encryption
            && kind == "AES256"
        {
            return Err(refuse(
                "encryption",
                "a kms_key needs type \"KMS\" (AES256 uses the registry's own key)".to_owned(),
            ));
        }

        let tags = match inputs.get("tags") {
            None | Some((_, Value::Null)) => BTreeMap::new(),
            Some((_, Value::Object(map))) => {
                if map.len() > MAX_TAGS {
                    return Err(refuse(
                        "tags",
                        format!("{} tags, more than the {MAX_TAGS} a repository may have", map.len()),
                    ));
                }
                let mut tags = BTreeMap::new();
                for (key, value) in map {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(refuse(
                                "tags",
                                format!("tag {key:?}: expected a string, got {}", kind_of(other)),
                            ));
                        }
                    };
                    if key.is_empty() || key.chars().count() > MAX_TAG_KEY_CHARS {
                        return Err(refuse(
                            "tags",
                            format!("tag key {key:?} must have 1 to {MAX_TAG_KEY_CHARS} characters"),
                        ));
                    }
                    if key.starts_with("aws:") {
                        return Err(refuse("tags", format!("tag key {key:?}: the aws: prefix is reserved")));
                    }
                    if text.chars().count() > MAX_TAG_VALUE_CHARS {
                        return Err(refuse(
                            "tags",
                            format!("tag {key:?}: the value has more than {MAX_TAG_VALUE_CHARS} characters"),
                        ));
                    }
                    tags.insert(key.clone(), text);
                }
                tags
            }
            Some((_, other)) => {
                return Err(refuse("tags", format!("expected a map of strings, got {}", kind_of(other))));
            }
        };

        Ok(Some(Repository {
            name,
            block: title,
            line: self.line_of(block.span()),
            tag_mutability,
            scan_on_push,
            pull_accounts,
            lifecycle_policy,
            default_lifecycle,
            encryption,
            tags,
        }))
    }
}

fn encryption_kind(kind: &str) -> Result<String, String> {
    match kind {
        "AES256" | "KMS" | "KMS_DSSE" => Ok(kind.to_owned()),
        other => Err(format!("{other:?} is not an encryption type: AES256, KMS or KMS_DSSE")),
    }
}

fn expect_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, got {}", kind_of(other))),
    }
}

fn expect_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("expected true or false, got {}", kind_of(other))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Repository>, FileError> {
        parse("registry.hcl", text, &|_| None)
    }

    fn refusal(text: &str) -> FileError {
        read(text).expect_err("refused")
    }

    #[test]
    fn a_module_block_with_only_a_name_takes_the_module_defaults() {
        let [repository] = read("module \"m\" {\n  source = \"./x\"\n  name = \"team/app\"\n}\n")
            .expect("parses")
            .try_into()
            .expect("one");
        assert_eq!(repository.name.as_str(), "team/app");
        assert_eq!(repository.block, "module \"m\"");
        assert_eq!(repository.line, 1);
        assert_eq!(repository.tag_mutability, TagMutability::Mutable);
        assert!(!repository.scan_on_push);
        assert!(repository.pull_accounts.is_empty());
        assert_eq!(repository.lifecycle_policy, Some(default_lifecycle_policy()));
        assert!(repository.default_lifecycle);
        assert_eq!(repository.encryption, None, "unstated: the plan decides for new repositories only");
        assert!(repository.tags.is_empty());

        let nulls = "module \"m\" {\n  name = \"team/app\"\n  scan_on_push = null\n  \
                     image_tag_mutability = null\n  allowed_account_ids = null\n}\n";
        let [with_nulls] = read(nulls).expect("null is as if not given").try_into().expect("one");
        assert_eq!((with_nulls.scan_on_push, with_nulls.tag_mutability), (false, TagMutability::Mutable));
        assert!(with_nulls.default_lifecycle);
    }

    #[test]
    fn the_default_lifecycle_policy_is_valid_and_has_one_rule_per_prefix() {
        let policy = berth_lifecycle::parse(&default_lifecycle_policy()).expect("valid");
        assert_eq!(policy.rules.len(), 3);
    }

    #[test]
    fn jsonencode_keeps_numbers_and_nesting() {
        let text = r#"module "m" {
  name = "a/b"
  lifecycle_policy = jsonencode({
    rules = [{ rulePriority = 1, selection = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }, action = { type = "expire" } }]
  })
}"#;
        let repository = &read(text).expect("parses")[0];
        let policy: serde_json::Value =
            serde_json::from_str(repository.lifecycle_policy.as_deref().expect("policy")).expect("JSON");
        assert_eq!(policy["rules"][0]["selection"]["countNumber"], 30);
        assert_eq!(policy["rules"][0]["rulePriority"], 1);
        assert!(!repository.default_lifecycle);
    }

    #[test]
    fn locals_may_name_each_other_in_any_order_and_variables_take_overrides() {
        let text = r#"
locals {
  all = local.concat_free
  concat_free = local.first
  first = var.account
}
variable "account" { default = "111111111111" }
module "m" {
  name = "a/b"
  allowed_account_ids = [local.all, "222222222222", local.first]
}"#;
        let repository = &read(text).expect("parses")[0];
        let accounts: Vec<&str> = repository.pull_accounts.iter().map(AccountId::as_str).collect();
        assert_eq!(accounts, ["111111111111", "222222222222"], "sorted, without repeats");

        let overridden = parse("f.hcl", text, &|name| (name == "account").then(|| "333333333333".to_owned()))
            .expect("parses");
        assert_eq!(overridden[0].pull_accounts[0].as_str(), "222222222222");
        assert_eq!(overridden[0].pull_accounts[1].as_str(), "333333333333");
    }

    #[test]
    fn a_local_that_cannot_be_evaluated_is_named_with_its_line() {
        let error = refusal("locals {\n  a = 1\n  b = local.missing\n}\nmodule \"m\" { name = \"a/b\" }\n");
        assert_eq!(error.line, 3);
        assert_eq!(error.field.as_deref(), Some("local.b"));
    }

    #[test]
    fn every_refusal_names_the_line_and_the_input() {
        let cases = [
            ("module \"m\" {\n  name = \"a/b\"\n  colour = \"red\"\n}\n", 3, "module \"m\" colour"),
            ("module \"m\" {\n  source = \"x\"\n}\n", 1, "module \"m\" name"),
            (
                "module \"m\" {\n  name = \"a/b\"\n  allowed_account_ids = [\"12345678901\"]\n}\n",
                3,
                "module \"m\" allowed_account_ids",
            ),
            (
                "module \"m\" {\n  name = \"a/b\"\n  allowed_account_ids = [111111111111]\n}\n",
                3,
                "module \"m\" allowed_account_ids",
            ),
            (
                "module \"m\" {\n  name = \"a/b\"\n\n  image_tag_mutability = \"SOMETIMES\"\n}\n",
                4,
                "module \"m\" image_tag_mutability",
            ),
            (
                "module \"m\" {\n  name = \"a/b\"\n  scan_on_push = \"yes\"\n}\n",
                3,
                "module \"m\" scan_on_push",
            ),
            (
                "module \"m\" {\n  name = \"a/b\"\n  lifecycle_policy = \"{}\"\n}\n",
                3,
                "module \"m\" lifecycle_policy",
            ),
            ("module \"m\" {\n  name = \"a/b\"\n  tags = { \"aws:x\" = \"y\" }\n}\n", 3, "module \"m\" tags"),
            ("module \"m\" {\n  name = \"a/b\"\n  encryption = \"ROT13\"\n}\n", 3, "module \"m\" encryption"),
            (
                "module \"m\" {\n  name = \"a/b\"\n  encryption = \"AES256\"\n  kms_key = \"alias/k\"\n}\n",
                4,
                "module \"m\" kms_key",
            ),
            (
                "module \"m\" {\n  name = \"a/b\"\n  lifecycle_policy = null\n  disable_default_lifecycle = true\n}\n",
                4,
                "module \"m\" disable_default_lifecycle",
            ),
            ("module \"m\" {\n  name = \"A/B\"\n}\n", 2, "module \"m\" name"),
            ("module \"m\" {\n  name = \"a/b\"\n  nested {\n  }\n}\n", 3, "module \"m\""),
            ("module \"m\" {\n  name = \"a/b\"\n  count = 2\n}\n", 3, "module \"m\" count"),
            (
                "module \"m\" {\n  for_each = toset([\"a\"])\n  name = \"a/b\"\n}\n",
                2,
                "module \"m\" for_each",
            ),
            ("module \"m\" {\n  name = \"a/b\"\n  tags = { n = 7 % 0 }\n}\n", 3, "module \"m\" tags"),
            ("module \"m\" {\n  name = \"a/b\"\n  tags = { n = 7 / 0 }\n}\n", 3, "module \"m\" tags"),
            (
                "locals {\n  big = 18446744073709551615 * 18446744073709551615\n}\nmodule \"m\" { name = \"a/b\" }\n",
                2,
                "local.big",
            ),
            ("module \"m\" {\n  name = \"a/b\"\n  tags = { n = upper(\"x\") }\n}\n", 3, "module \"m\" tags"),
            ("resource \"aws_ecr_repository\" \"r\" {\n}\n", 1, ""),
            ("name = \"a/b\"\n", 1, ""),
        ];
        for (text, line, field) in cases {
            let error = refusal(text);
            assert_eq!(error.line, line, "{text}: {error}");
            assert_eq!(error.field.as_deref().unwrap_or(""), field, "{text}: {error}");
            assert!(error.to_string().starts_with(&format!("registry.hcl:{line}: ")), "{error}");
        }
        let unknown = refusal("module \"m\" {\n  name = lower(\"A/B\")\n}\n");
        assert!(unknown.message.contains("jsonencode(...) only"), "{unknown}");
    }

    #[test]
    fn count_switches_a_block_off_or_on() {
        let text = "variable \"on\" { default = false }\n\
                    module \"a\" {\n  count = var.on ? 1 : 0\n  name = \"x/a\"\n}\n\
                    module \"b\" {\n  count = 1\n  name = \"x/b\"\n}\n";
        let names = |repositories: Vec<Repository>| -> Vec<String> {
            repositories.iter().map(|r| r.name.as_str().to_owned()).collect()
        };
        assert_eq!(names(read(text).expect("parses")), ["x/b"]);
        let on = parse("f.hcl", text, &|name| (name == "on").then(|| "true".to_owned())).expect("parses");
        assert_eq!(names(on), ["x/a", "x/b"], "TF_VAR_on is read as its default's type, a bool");
    }

    #[test]
    fn a_typed_variable_reads_its_override_as_hcl() {
        let text = "variable \"readers\" {\n  type = list(string)\n  default = []\n}\n\
                    variable \"team\" {\n  type = string\n  default = \"x\"\n}\n\
                    module \"m\" {\n  name = \"${var.team}/app\"\n  allowed_account_ids = var.readers\n}\n";
        let overrides = |name: &str| match name {
            "readers" => Some(r#"["222222222222", "111111111111"]"#.to_owned()),
            "team" => Some("ml".to_owned()),
            _ => None,
        };
        let repository = &parse("f.hcl", text, &overrides).expect("parses")[0];
        assert_eq!(repository.name.as_str(), "ml/app");
        let accounts: Vec<&str> = repository.pull_accounts.iter().map(AccountId::as_str).collect();
        assert_eq!(accounts, ["111111111111", "222222222222"]);
        let error = parse("f.hcl", text, &|name| (name == "readers").then(|| "[unclosed".to_owned()))
            .expect_err("refused");
        assert_eq!(error.field.as_deref(), Some("var.readers"), "{error}");
        assert!(error.message.contains("TF_VAR_readers"), "{error}");
    }

    #[test]
    fn two_blocks_for_one_repository_are_refused() {
        let error = refusal("module \"a\" { name = \"x/y\" }\n\nmodule \"b\" { name = \"x/y\" }\n");
        assert_eq!(error.line, 3);
        assert!(error.message.contains("module \"a\" on line 1"), "{error}");
        let error = refusal("module \"a\" { name = \"x/y\" }\nmodule \"a\" { name = \"x/z\" }\n");
        assert!(error.message.contains("declared twice"), "{error}");
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let error = refusal("module \"m\" {\n  name = \"a/b\"\n  tags = {\n");
        assert!(error.line >= 3, "{error}");
        assert!(error.message.contains("not valid HCL"), "{error}");
    }

    #[test]
    fn encryption_takes_a_string_an_object_or_a_key_alone() {
        let read_one = |body: &str| {
            read(&format!("module \"m\" {{\n  name = \"a/b\"\n  {body}\n}}\n")).expect("parses")[0]
                .encryption
                .clone()
        };
        assert_eq!(
            read_one("encryption = \"AES256\""),
            Some(Encryption { kind: "AES256".into(), kms_key: None })
        );
        assert_eq!(
            read_one("encryption = { type = \"KMS\", kms_key = \"alias/k\" }"),
            Some(Encryption { kind: "KMS".into(), kms_key: Some("alias/k".into()) })
        );
        assert_eq!(
            read_one("kms_key = \"alias/k\""),
            Some(Encryption { kind: "KMS".into(), kms_key: Some("alias/k".into()) })
        );
        assert_eq!(read_one("tags = {}"), None);
    }
}
