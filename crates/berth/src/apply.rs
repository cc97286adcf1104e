//! `berth apply`: the command line of `berth-apply`, which does the work.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_apply::{Connection, Options, Outcome, Output, Request};
use clap::Args;

use crate::config::Config;
use crate::maintenance;

pub(crate) const EXAMPLES: &str = "\
The file holds `module` blocks as the shared-registry module takes them (`source` is ignored) or
`repository \"NAME\"` blocks, with `locals`, `variable` defaults (TF_VAR_NAME overrides) and
jsonencode(...). Inputs: name, image_tag_mutability, scan_on_push, allowed_account_ids,
lifecycle_policy (default: keep the last 10 `v*` and the last 10 `release*` images, expire untagged
ones after 14 days; `null` or disable_default_lifecycle = true for none), encryption (AES256, KMS or
{ type = \"KMS\", kms_key = \"alias/...\" }; new repositories default to KMS under the account's
default key), kms_key, tags.

Credentials are found as the aws CLI finds them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else
the shared credentials file and AWS_PROFILE (or --profile). Repositories are the caller's account's.

Exit codes: 0 nothing to change or all applied; 2 changes pending (with --plan); 1 an error, with
nothing changed when the file or the plan was at fault.

Examples:
  export AWS_SHARED_CREDENTIALS_FILE=berth-data/bootstrap-credentials AWS_PROFILE=berth
  berth apply -f registry.hcl --plan         what would change
  berth apply -f registry.hcl                make it so, and print each repository_url
  berth apply -f registry.hcl --prune        also delete empty repositories the file does not name
  berth apply -f registry.hcl --endpoint https://registry.example.com --output json";

#[derive(Args)]
pub(crate) struct ApplyArgs {
    /// The file of `module` or `repository` blocks (HCL).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Print what would change and change nothing (exit code 2 when something would).
    #[arg(long)]
    plan: bool,
    /// Delete the account's repositories the file does not name: only empty ones, unless --force;
    /// when one of them holds images and --force is not given, nothing at all changes.
    #[arg(long)]
    prune: bool,
    /// With --prune, delete repositories that hold images too, with their images.
    #[arg(long, requires = "prune")]
    force: bool,
    /// The registry's ECR endpoint (default: AWS_ENDPOINT_URL_ECR, else AWS_ENDPOINT_URL, else the
    /// address this configuration serves on).
    #[arg(long)]
    endpoint: Option<String>,
    /// The profile of the shared credentials and config files (default: AWS_PROFILE, else `default`).
    #[arg(long)]
    profile: Option<String>,
    /// The signing region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else the
    /// configuration's region).
    #[arg(long)]
    region: Option<String>,
    /// `table`: the plan and each repository_url for people; `json`: one document for pipelines.
    #[arg(long, value_enum, default_value_t = maintenance::Output::Table)]
    output: maintenance::Output,
}

pub(crate) async fn run(args: ApplyArgs, config: &Config) -> Result<ExitCode, String> {
    let endpoint = args
        .endpoint
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_ECR").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .unwrap_or_else(|| config.local_endpoint());
    let request = Request {
        path: args.file.display().to_string(),
        connection: Connection {
            endpoint,
            profile: args.profile,
            region: args.region,
            default_region: config.region.clone(),
        },
        options: Options { prune: args.prune, force: args.force },
        plan_only: args.plan,
        output: match args.output {
            maintenance::Output::Table => Output::Text,
            maintenance::Output::Json => Output::Json,
        },
    };
    let variable = |name: &str| std::env::var(format!("TF_VAR_{name}")).ok();
    // The HCL evaluator panics on some arithmetic (a remainder by zero); berth-apply turns that
    // into a refusal that names the line, so its panic message would only be noise.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.location().is_some_and(|at| at.file().contains("/hcl-")) {
            default_hook(info);
        }
    }));
    match berth_apply::run(&request, &variable, &mut std::io::stdout()).await {
        Ok(Outcome::NoChanges | Outcome::Applied) => Ok(ExitCode::SUCCESS),
        Ok(Outcome::Pending) => Ok(ExitCode::from(2)),
        Err(e) => Err(e.to_string()),
    }
}
