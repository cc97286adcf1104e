//! `berth apply` against a running server, as a platform team's pipeline runs it: the module
//! blocks as teams write them, applied over the ECR API with the credentials the aws CLI would
//! use, then read back through that API and exercised by pulls and pushes.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SINGLE_ACCOUNT: &str = r#"
module "shared_ecr" {
  source = "./build/ecr"

  name                 = "mlops/python-base"
  image_tag_mutability = "IMMUTABLE"  # Prevent tag overwrite
  scan_on_push         = true

  tags = {
    Purpose     = "Shared Base Images"
    ManagedBy   = "Terraform"
    Environment = "shared"
  }
}
"#;

const CROSS_ACCOUNT: &str = r#"
module "shared_ecr" {
  source = "./build/ecr"

  name = "mlops/python-base"

  # Allow dev and prod accounts to pull
  allowed_account_ids = [
    "111111111111",  # dev account
    "222222222222",  # prod account
  ]

  tags = {
    Purpose = "Cross-Account Shared Registry"
  }
}
"#;

const CUSTOM_LIFECYCLE: &str = r#"
module "shared_ecr" {
  source = "./build/ecr"

  name = "mlops/training-image"

  lifecycle_policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep last 30 production images"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["prod-"]
          countType     = "imageCountMoreThan"
          countNumber   = 30
        }
        action = {
          type = "expire"
        }
      }
    ]
  })
}
"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Writes `text` as a file beside the data directory and runs `berth apply -f FILE ARGS...` as
/// the owner, with credentials and endpoint in the environment as the aws CLI reads them.
fn apply(berth: &Berth, text: &str, args: &[&str]) -> Run {
    let file = berth.data_dir().with_file_name("registry.hcl");
    std::fs::write(&file, text).expect("write the file");
    apply_file(berth, &file, args)
}

fn apply_file(berth: &Berth, file: &Path, args: &[&str]) -> Run {
    let out = Command::new(berth_binary())
        .args(["apply", "-f"])
        .arg(file)
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_SHARED_CREDENTIALS_FILE", berth.data_dir().join("bootstrap-credentials"))
        .env("AWS_CONFIG_FILE", berth.data_dir().join("no-aws-config"))
        .env("AWS_PROFILE", "berth")
        .env("AWS_ENDPOINT_URL_ECR", &berth.url)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("berth apply runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn describe(berth: &Berth, name: &str) -> Value {
    let (status, out) = berth.ecr("DescribeRepositories", json!({"repositoryNames": [name]})).await;
    assert_eq!(status, 200, "{out}");
    out["repositories"][0].clone()
}

async fn tags(berth: &Berth, arn: &str) -> Value {
    let (status, out) = berth.ecr("ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(status, 200, "{out}");
    let mut map = serde_json::Map::new();
    for tag in out["tags"].as_array().expect("tags") {
        map.insert(tag["Key"].as_str().expect("key").to_owned(), tag["Value"].clone());
    }
    Value::Object(map)
}

/// The repository's policy document, or `None` when it has none.
async fn policy(berth: &Berth, name: &str) -> Option<Value> {
    let (status, out) = berth.ecr("GetRepositoryPolicy", json!({"repositoryName": name})).await;
    if status == 400 {
        assert_eq!(out["__type"], "RepositoryPolicyNotFoundException", "{out}");
        return None;
    }
    assert_eq!(status, 200, "{out}");
    Some(serde_json::from_str(out["policyText"].as_str().expect("text")).expect("policy JSON"))
}

async fn lifecycle_policy(berth: &Berth, name: &str) -> Option<Value> {
    let (status, out) = berth.ecr("GetLifecyclePolicy", json!({"repositoryName": name})).await;
    if status == 400 {
        assert_eq!(out["__type"], "LifecyclePolicyNotFoundException", "{out}");
        return None;
    }
    assert_eq!(status, 200, "{out}");
    Some(serde_json::from_str(out["lifecyclePolicyText"].as_str().expect("text")).expect("JSON"))
}

async fn repository_names(berth: &Berth) -> Vec<String> {
    let (status, out) = berth.ecr("DescribeRepositories", json!({})).await;
    assert_eq!(status, 200, "{out}");
    let mut names: Vec<String> = out["repositories"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["repositoryName"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// The default policy's meaning, written out independently of the code that makes it: one rule
/// per tag prefix, each keeping the last 10, then untagged images expire 14 days after push.
fn assert_is_the_default_lifecycle(policy: &Value) {
    let rules = policy["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 3, "{policy}");
    for (rule, prefix) in rules.iter().zip(["v", "release"]) {
        assert_eq!(rule["selection"]["tagStatus"], "tagged", "{policy}");
        assert_eq!(rule["selection"]["tagPrefixList"], json!([prefix]), "{policy}");
        assert_eq!(rule["selection"]["countType"], "imageCountMoreThan", "{policy}");
        assert_eq!(rule["selection"]["countNumber"], 10, "{policy}");
        assert_eq!(rule["action"]["type"], "expire", "{policy}");
    }
    let untagged = &rules[2]["selection"];
    assert_eq!(untagged["tagStatus"], "untagged", "{policy}");
    assert_eq!(untagged["countType"], "sinceImagePushed", "{policy}");
    assert_eq!(untagged["countUnit"], "days", "{policy}");
    assert_eq!(untagged["countNumber"], 14, "{policy}");
    let priorities: Vec<i64> = rules.iter().map(|r| r["rulePriority"].as_i64().expect("priority")).collect();
    assert_eq!(priorities, [1, 2, 3], "{policy}");
}

#[tokio::test]
async fn the_single_account_example_applies_then_reapplies_as_no_change() {
    let berth = Berth::start().await;
    let first = apply(&berth, SINGLE_ACCOUNT, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("+ mlops/python-base (create)"), "{}", first.stdout);

    let repository = describe(&berth, "mlops/python-base").await;
    assert_eq!(repository["imageTagMutability"], "IMMUTABLE");
    assert_eq!(repository["imageScanningConfiguration"]["scanOnPush"], true);
    assert_eq!(repository["encryptionConfiguration"]["encryptionType"], "KMS", "the module's default");
    let uri = repository["repositoryUri"].as_str().expect("uri");
    assert!(
        first.stdout.contains(&format!("mlops/python-base: repository_url = {uri}")),
        "the repository_url is the one the registry reports: {}",
        first.stdout
    );
    let arn = repository["repositoryArn"].as_str().expect("arn");
    assert_eq!(
        tags(&berth, arn).await,
        json!({"Purpose": "Shared Base Images", "ManagedBy": "Terraform", "Environment": "shared"})
    );
    assert_eq!(policy(&berth, "mlops/python-base").await, None, "no accounts named, no policy");
    assert_is_the_default_lifecycle(
        &lifecycle_policy(&berth, "mlops/python-base").await.expect("default policy"),
    );

    let again = apply(&berth, SINGLE_ACCOUNT, &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    let plan = apply(&berth, SINGLE_ACCOUNT, &["--plan"]);
    assert_eq!(plan.code, 0, "nothing pending: {}", plan.stdout);
}

#[tokio::test]
async fn the_cross_account_example_lets_exactly_the_named_accounts_pull() {
    let berth = Berth::start().await;
    let (dev_key, dev_secret) = berth.account_with_key("111111111111");
    let (prod_key, prod_secret) = berth.account_with_key("222222222222");
    let (other_key, other_secret) = berth.account_with_key("333333333333");

    let first = apply(&berth, CROSS_ACCOUNT, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let repository = describe(&berth, "mlops/python-base").await;
    assert_eq!(repository["imageTagMutability"], "MUTABLE");
    assert_eq!(repository["imageScanningConfiguration"]["scanOnPush"], false);
    let arn = repository["repositoryArn"].as_str().expect("arn");
    assert_eq!(tags(&berth, arn).await, json!({"Purpose": "Cross-Account Shared Registry"}));
    assert_is_the_default_lifecycle(
        &lifecycle_policy(&berth, "mlops/python-base").await.expect("default policy"),
    );
    let granted = policy(&berth, "mlops/python-base").await.expect("a policy");
    let statements = granted["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{granted}");
    let mut actions: Vec<&str> =
        statements[0]["Action"].as_array().expect("actions").iter().filter_map(Value::as_str).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    );

    let r = repo("mlops/python-base");
    let digest = berth.push_image(&r, "v1.0.0", br#"{"os":"linux"}"#, b"shared base layer").await;
    let layer = sha256(b"shared base layer");
    for (key, secret, pulls) in
        [(&dev_key, &dev_secret, true), (&prod_key, &prod_secret, true), (&other_key, &other_secret, false)]
    {
        let password = berth.password_for(key, secret).await;
        let manifest = berth
            .req_with(&password, Method::GET, &format!("/v2/{r}/manifests/v1.0.0"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("send");
        let blob = berth
            .req_with(&password, Method::GET, &format!("/v2/{r}/blobs/{layer}"))
            .send()
            .await
            .expect("send");
        let push = berth
            .req_with(&password, Method::POST, &format!("/v2/{r}/blobs/uploads/"))
            .send()
            .await
            .expect("send");
        if pulls {
            assert_eq!(manifest.status(), 200, "{key} pulls");
            assert_eq!(sha256(&manifest.bytes().await.expect("body")), digest);
            assert_eq!(blob.status(), 200, "{key} pulls the layer");
        } else {
            assert_eq!(manifest.status(), 403, "an account the file does not name cannot pull");
            assert_eq!(blob.status(), 403);
        }
        assert_eq!(push.status(), 403, "no account but the owner pushes");
    }

    // A person adds a statement of their own: re-applying keeps it, and changes nothing.
    let mut edited = granted.clone();
    edited["Statement"].as_array_mut().expect("statements").push(json!({
        "Sid": "AuditorsList", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
        "Action": ["ecr:DescribeImages", "ecr:ListImages"]
    }));
    let (status, out) = berth
        .ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": "mlops/python-base", "policyText": edited.to_string()}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let again = apply(&berth, CROSS_ACCOUNT, &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_eq!(policy(&berth, "mlops/python-base").await, Some(edited.clone()));

    // Dropping the prod account rewrites berth's statement only; the person's survives.
    let dev_only = CROSS_ACCOUNT.replace("    \"222222222222\",  # prod account\n", "");
    let narrowed = apply(&berth, &dev_only, &[]);
    assert_eq!(narrowed.code, 0, "{}\n{}", narrowed.stdout, narrowed.stderr);
    assert!(
        narrowed.stdout.contains("allowed_account_ids: [111111111111, 222222222222] -> [111111111111]"),
        "{}",
        narrowed.stdout
    );
    let after = policy(&berth, "mlops/python-base").await.expect("a policy");
    let statements = after["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 2, "{after}");
    assert!(
        statements.contains(&edited["Statement"][1]),
        "the person's statement is kept as written: {after}"
    );
    let prod = berth.password_for(&prod_key, &prod_secret).await;
    let refused = berth
        .req_with(&prod, Method::GET, &format!("/v2/{r}/manifests/v1.0.0"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 403, "the account dropped from the file no longer pulls");
}

#[tokio::test]
async fn the_custom_lifecycle_example_stores_its_policy() {
    let berth = Berth::start().await;
    let first = apply(&berth, CUSTOM_LIFECYCLE, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let stored = lifecycle_policy(&berth, "mlops/training-image").await.expect("policy");
    assert_eq!(
        stored,
        json!({"rules": [{
            "rulePriority": 1,
            "description": "Keep last 30 production images",
            "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod-"], "countType": "imageCountMoreThan", "countNumber": 30},
            "action": {"type": "expire"}
        }]})
    );
    let repository = describe(&berth, "mlops/training-image").await;
    assert_eq!(tags(&berth, repository["repositoryArn"].as_str().expect("arn")).await, json!({}));
    let again = apply(&berth, CUSTOM_LIFECYCLE, &[]);
    assert_eq!((again.code, again.stdout.contains("No changes")), (0, true), "{}", again.stdout);

    // `null` removes the policy; `disable_default_lifecycle` keeps a repository without one.
    let without = "module \"m\" {\n  name = \"mlops/training-image\"\n  lifecycle_policy = null\n}\n";
    let removed = apply(&berth, without, &[]);
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    assert!(
        removed.stdout.contains("lifecycle_policy: 1 rule (Keep last 30 production images) -> (removed)"),
        "{}",
        removed.stdout
    );
    assert_eq!(lifecycle_policy(&berth, "mlops/training-image").await, None);
    let disabled =
        "module \"m\" {\n  name = \"mlops/training-image\"\n  disable_default_lifecycle = true\n}\n";
    let same = apply(&berth, disabled, &[]);
    assert_eq!((same.code, same.stdout.contains("No changes")), (0, true), "{}", same.stdout);
}

#[tokio::test]
async fn one_changed_attribute_plans_exactly_one_update_and_plan_changes_nothing() {
    let berth = Berth::start().await;
    assert_eq!(apply(&berth, SINGLE_ACCOUNT, &[]).code, 0);
    let changed = SINGLE_ACCOUNT.replace("scan_on_push         = true", "scan_on_push         = false");

    let plan = apply(&berth, &changed, &["--plan"]);
    assert_eq!(plan.code, 2, "changes pending: {}\n{}", plan.stdout, plan.stderr);
    let change_lines: Vec<&str> = plan.stdout.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(change_lines, ["    scan_on_push: true -> false"], "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to update, 0 to delete"), "{}", plan.stdout);
    let repository = describe(&berth, "mlops/python-base").await;
    assert_eq!(repository["imageScanningConfiguration"]["scanOnPush"], true, "--plan changed nothing");

    let json_plan = apply(&berth, &changed, &["--plan", "--output", "json"]);
    assert_eq!(json_plan.code, 2);
    let report: Value = serde_json::from_str(&json_plan.stdout).expect("one JSON document");
    assert_eq!(report["changes_pending"], true);
    assert_eq!(
        report["plan"][0]["changes"],
        json!([{"attribute": "scan_on_push", "before": "true", "after": "false"}])
    );

    let applied = apply(&berth, &changed, &["--output", "json"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let report: Value = serde_json::from_str(&applied.stdout).expect("one JSON document");
    assert_eq!(report["applied"], true);
    assert_eq!(
        report["repositories"][0]["repository_url"],
        describe(&berth, "mlops/python-base").await["repositoryUri"]
    );
    assert_eq!(
        describe(&berth, "mlops/python-base").await["imageScanningConfiguration"]["scanOnPush"],
        false
    );

    // A tag changed, one removed, one added: each is one line, and the tags end as the file says.
    let retagged = changed
        .replace("ManagedBy   = \"Terraform\"", "ManagedBy   = \"berth\"")
        .replace("    Environment = \"shared\"\n", "    Team = \"platform\"\n");
    let run = apply(&berth, &retagged, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for line in [
        "tags.ManagedBy: Terraform -> berth",
        "tags.Team: (none) -> platform",
        "tags.Environment: shared -> (removed)",
    ] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }
    let arn = describe(&berth, "mlops/python-base").await["repositoryArn"].as_str().expect("arn").to_owned();
    assert_eq!(
        tags(&berth, &arn).await,
        json!({"Purpose": "Shared Base Images", "ManagedBy": "berth", "Team": "platform"})
    );
}

#[tokio::test]
async fn a_faulty_file_changes_nothing_and_names_file_line_and_input() {
    let berth = Berth::start().await;
    // A valid block first: it must not be created when a later one is at fault.
    let invalid_policy =
        format!("{SINGLE_ACCOUNT}\n{}", CUSTOM_LIFECYCLE.replace("countNumber   = 30", "countNumber   = 0"));
    let policy_line =
        invalid_policy.lines().position(|l| l.contains("lifecycle_policy = jsonencode")).expect("the line")
            + 1;
    let cases: Vec<(String, usize, &str)> = vec![
        (invalid_policy, policy_line, "lifecycle_policy"),
        (
            format!(
                "{SINGLE_ACCOUNT}\nmodule \"b\" {{\n  name = \"mlops/b\"\n  allowed_account_ids = [\"1234\"]\n}}\n"
            ),
            SINGLE_ACCOUNT.lines().count() + 4,
            "allowed_account_ids",
        ),
        (
            format!("{SINGLE_ACCOUNT}\nmodule \"b\" {{\n  name = \"mlops/b\"\n  scan_on_pushh = true\n}}\n"),
            SINGLE_ACCOUNT.lines().count() + 4,
            "scan_on_pushh",
        ),
        (
            format!("{SINGLE_ACCOUNT}\nmodule \"b\" {{\n  name = \"mlops/b\"\n  tags = {{ a = \"b\" \n}}\n"),
            0,
            "not valid HCL",
        ),
        (
            format!(
                "{SINGLE_ACCOUNT}\nmodule \"b\" {{\n  name = \"mlops/b\"\n  tags = {{ n = 1 % 0 }}\n}}\n"
            ),
            SINGLE_ACCOUNT.lines().count() + 4,
            "division or remainder by zero",
        ),
        (
            format!("{SINGLE_ACCOUNT}\nmodule \"b\" {{\n  name = \"Not A Name\"\n}}\n"),
            SINGLE_ACCOUNT.lines().count() + 3,
            "name",
        ),
    ];
    for (text, line, field) in cases {
        let run = apply(&berth, &text, &[]);
        assert_eq!(run.code, 1, "refused: {}\n{}", run.stdout, run.stderr);
        if line > 0 {
            assert!(
                run.stderr.contains(&format!("registry.hcl:{line}: ")),
                "line {line} named: {}",
                run.stderr
            );
        } else {
            assert!(run.stderr.contains("registry.hcl:"), "{}", run.stderr);
        }
        assert!(run.stderr.contains(field), "{field} named: {}", run.stderr);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "a refusal, not a crash: {}", run.stderr);
        assert_eq!(repository_names(&berth).await, Vec::<String>::new(), "nothing created: {}", run.stderr);
    }
    let policy_error =
        apply(&berth, &CUSTOM_LIFECYCLE.replace("countNumber   = 30", "countNumber   = 0"), &[]);
    assert!(
        policy_error.stderr.contains("Lifecycle policy validation failure"),
        "the refusal is PutLifecyclePolicy's: {}",
        policy_error.stderr
    );

    // Encryption is fixed at creation: asking to change it is refused before anything changes.
    assert_eq!(apply(&berth, SINGLE_ACCOUNT, &[]).code, 0);
    let reencrypted = SINGLE_ACCOUNT
        .replace("scan_on_push         = true", "scan_on_push         = false\n  encryption = \"AES256\"");
    let run = apply(&berth, &reencrypted, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("encryption is KMS"), "{}", run.stderr);
    assert_eq!(describe(&berth, "mlops/python-base").await["imageScanningConfiguration"]["scanOnPush"], true);
}

#[tokio::test]
async fn prune_deletes_only_what_the_file_does_not_name_and_images_only_with_force() {
    let berth = Berth::start().await;
    assert_eq!(apply(&berth, SINGLE_ACCOUNT, &[]).code, 0);
    for name in ["stray/empty", "stray/full"] {
        let (status, out) = berth.ecr("CreateRepository", json!({"repositoryName": name})).await;
        assert_eq!(status, 200, "{out}");
    }
    berth.push_image(&repo("stray/full"), "v1", br#"{"os":"linux"}"#, b"stray layer").await;

    let plain = apply(&berth, SINGLE_ACCOUNT, &[]);
    assert_eq!(
        (plain.code, plain.stdout.contains("No changes")),
        (0, true),
        "without --prune nothing is deleted: {}",
        plain.stdout
    );

    let refused = apply(&berth, SINGLE_ACCOUNT, &["--prune"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("stray/full") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(repository_names(&berth).await, ["mlops/python-base", "stray/empty", "stray/full"]);

    let plan = apply(&berth, SINGLE_ACCOUNT, &["--prune", "--force", "--plan"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("- stray/full (delete)") && plan.stdout.contains("- stray/empty (delete)"),
        "{}",
        plan.stdout
    );

    // A file that names nothing would prune everything: refused, whatever the flags.
    let empty = apply(&berth, "# repositories move to another file\n", &["--prune", "--force"]);
    assert_eq!(empty.code, 1, "{}\n{}", empty.stdout, empty.stderr);
    assert!(empty.stderr.contains("describes no repositories"), "{}", empty.stderr);
    assert_eq!(repository_names(&berth).await, ["mlops/python-base", "stray/empty", "stray/full"]);

    let pruned = apply(&berth, SINGLE_ACCOUNT, &["--prune", "--force"]);
    assert_eq!(pruned.code, 0, "{}\n{}", pruned.stdout, pruned.stderr);
    assert_eq!(repository_names(&berth).await, ["mlops/python-base"]);
}

#[tokio::test]
async fn locals_variables_and_repository_blocks_are_read() {
    let berth = Berth::start().await;
    let text = r#"
variable "team" {
  default = "mlops"
}

locals {
  pullers = ["111111111111"]
  common_tags = { Team = var.team }
  keep_30 = jsonencode({
    rules = [{ rulePriority = 1, selection = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }, action = { type = "expire" } }]
  })
}

repository "mlops/app" {
  allowed_account_ids = local.pullers
  tags                = local.common_tags
  lifecycle_policy    = local.keep_30
  encryption          = "AES256"
}

provider "aws" {
  region = "us-east-1"
}
"#;
    let run = apply(&berth, text, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let repository = describe(&berth, "mlops/app").await;
    assert_eq!(repository["encryptionConfiguration"]["encryptionType"], "AES256");
    assert_eq!(
        tags(&berth, repository["repositoryArn"].as_str().expect("arn")).await,
        json!({"Team": "mlops"})
    );
    assert_eq!(
        lifecycle_policy(&berth, "mlops/app").await.expect("policy")["rules"][0]["selection"]["countNumber"],
        30
    );
    let principals = &policy(&berth, "mlops/app").await.expect("policy")["Statement"][0]["Principal"]["AWS"];
    assert_eq!(principals, &json!(["arn:aws:iam::111111111111:root"]));
}

#[tokio::test]
async fn missing_credentials_and_an_unreachable_registry_say_what_to_do() {
    let berth = Berth::start().await;
    let file = berth.data_dir().with_file_name("registry.hcl");
    std::fs::write(&file, SINGLE_ACCOUNT).expect("write");
    let no_credentials = Command::new(berth_binary())
        .args(["apply", "-f"])
        .arg(&file)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_SHARED_CREDENTIALS_FILE", berth.data_dir().join("none"))
        .env("AWS_CONFIG_FILE", berth.data_dir().join("none"))
        .env("AWS_ENDPOINT_URL_ECR", &berth.url)
        .output()
        .expect("runs");
    assert_eq!(no_credentials.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_credentials.stderr);
    assert!(stderr.contains("no credentials") && stderr.contains("AWS_SHARED_CREDENTIALS_FILE"), "{stderr}");

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let unreachable = apply_file(&berth, &file, &["--endpoint", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(unreachable.code, 1);
    assert!(unreachable.stderr.contains("cannot reach the registry"), "{}", unreachable.stderr);
    assert_eq!(repository_names(&berth).await, Vec::<String>::new());

    // A usage error is 1, never the 2 that means "changes pending".
    let usage = Command::new(berth_binary()).args(["apply", "--plan"]).output().expect("runs");
    assert_eq!(usage.status.code(), Some(1), "{}", String::from_utf8_lossy(&usage.stderr));
    let behind_options =
        Command::new(berth_binary()).args(["--data-dir", "d", "apply", "--plan"]).output().expect("runs");
    assert_eq!(behind_options.status.code(), Some(1), "{}", String::from_utf8_lossy(&behind_options.stderr));
}

#[tokio::test]
async fn a_call_the_registry_refuses_stops_the_apply_and_says_what_is_left() {
    let berth = Berth::start().await;
    let text = format!(
        "{CUSTOM_LIFECYCLE}\nmodule \"keyed\" {{\n  name = \"mlops/keyed\"\n  kms_key = \"alias/no-such-key\"\n}}\n"
    );
    let run = apply(&berth, &text, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("CreateRepository on mlops/keyed: KmsException"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 repositories were changed before this error and 1 were not"),
        "{}",
        run.stderr
    );
    assert_eq!(repository_names(&berth).await, ["mlops/training-image"]);
    let again = apply(&berth, CUSTOM_LIFECYCLE, &["--plan"]);
    assert_eq!(again.code, 0, "what was applied stays applied: {}", again.stdout);
}
