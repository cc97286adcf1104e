//! `berth admin`: accounts, users, access keys and policies, printed as JSON for scripts (or a
//! credentials-file profile for a new key). Secrets are shown once, when a key is created, and
//! never again.

use berth_core::AccountId;
use berth_registry::{KeyDescription, KeyRewrap, KeyState, Registry};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Create and list accounts (12-digit ids, as AWS account ids).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Create, list, disable, enable and delete access keys of an account's root or of a user.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create, list and delete IAM users, and attach identity policies to them.
    #[command(subcommand)]
    User(UserCommand),
    /// Read or delete repository and registry policies, whatever they say about who may change
    /// them: the last resort against a policy that locks an account's own users out.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Create, list, disable, enable and rotate an account's customer keys: the keys that guard
    /// repositories created with `encryptionType` `KMS` (in the local key service).
    #[command(subcommand)]
    Kms(KmsCommand),
}

/// Shown after `berth admin --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  berth admin account create 111111111111 --name dev
  berth admin key create --account 111111111111 --output credentials --profile dev >> ~/.aws/credentials
  berth admin user create --account 111111111111 ci --path /build/
  berth admin user policy put --account 111111111111 --user ci --name push --file push-policy.json
  berth admin key create --account 111111111111 --user ci
  berth admin policy delete --account 123456789012 --repository mlops/python-base
  berth admin kms create --account 111111111111 --alias alias/team-images
  aws ecr create-repository --repository-name team/app \
      --encryption-configuration encryptionType=KMS,kmsKey=alias/team-images

Every command works on the data directory of a running server (--data-dir, or BERTH_DATA_DIR)
and prints JSON, but for credentials asked in the credentials-file format.";

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user; its ARN is arn:aws:iam::<account>:user/<path><name>.
    Create {
        /// The 12-digit account the user belongs to.
        #[arg(long)]
        account: String,
        /// The user's name (letters, digits and +=,.@_-, at most 64).
        name: String,
        /// The user's path, such as /build/ (default /).
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// List an account's users with their paths.
    List {
        /// The 12-digit account.
        #[arg(long)]
        account: String,
    },
    /// Delete a user, with its access keys and policies.
    Delete {
        /// The 12-digit account the user belongs to.
        #[arg(long)]
        account: String,
        /// The user's name.
        name: String,
    },
    /// Attach, list and remove a user's identity policies.
    #[command(subcommand)]
    Policy(UserPolicyCommand),
}

#[derive(Subcommand)]
pub(crate) enum UserPolicyCommand {
    /// Attach an identity policy (replacing one of the same name); it is validated first.
    Put {
        /// The 12-digit account the user belongs to.
        #[arg(long)]
        account: String,
        /// The user's name.
        #[arg(long)]
        user: String,
        /// The policy's name, unique per user.
        #[arg(long)]
        name: String,
        /// The policy document (JSON); `-` reads standard input.
        #[arg(long)]
        file: String,
    },
    /// List a user's identity policies with their documents.
    List {
        /// The 12-digit account the user belongs to.
        #[arg(long)]
        account: String,
        /// The user's name.
        #[arg(long)]
        user: String,
    },
    /// Remove one of a user's identity policies.
    Delete {
        /// The 12-digit account the user belongs to.
        #[arg(long)]
        account: String,
        /// The user's name.
        #[arg(long)]
        user: String,
        /// The policy's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AccountCommand {
    /// Create an account (it then needs an access key: `berth admin key create --account ID`).
    Create {
        /// The account's 12-digit id.
        id: String,
        /// A name to tell accounts apart in listings.
        #[arg(long, default_value = "account")]
        name: String,
    },
    /// List every account.
    List,
}

/// How a new access key is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeyOutput {
    /// A JSON object with the key id and the secret.
    Json,
    /// A profile in the AWS credentials-file format, for ~/.aws/credentials (aws CLI, SDKs).
    Credentials,
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Create an access key for an account's root, or for one of its users; the secret is shown
    /// this once.
    Create {
        /// The 12-digit account the key belongs to.
        #[arg(long)]
        account: String,
        /// A user of the account; without it, the key is the account root's.
        #[arg(long)]
        user: Option<String>,
        /// How to print the key.
        #[arg(long, value_enum, default_value_t = KeyOutput::Json)]
        output: KeyOutput,
        /// The profile name, with `--output credentials`.
        #[arg(long, default_value = "default")]
        profile: String,
    },
    /// List an account's access keys (ids and status, never secrets).
    List {
        /// The 12-digit account.
        #[arg(long)]
        account: String,
    },
    /// Disable a key: it and every registry password issued to it stop working.
    Disable {
        /// The access key id (AKIA...).
        access_key_id: String,
    },
    /// Enable a disabled key again.
    Enable {
        /// The access key id (AKIA...).
        access_key_id: String,
    },
    /// Delete a key for good.
    Delete {
        /// The access key id (AKIA...).
        access_key_id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KmsCommand {
    /// Create a customer key; a repository names it by key id, key ARN or alias as `kmsKey`.
    Create {
        /// The 12-digit account the key belongs to (only its repositories may use it).
        #[arg(long)]
        account: String,
        /// A name for the key, `alias/...` (aliases beginning `alias/aws/` are the registry's).
        #[arg(long)]
        alias: Option<String>,
        /// What the key is for, one line.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List an account's customer keys (never their material).
    List {
        /// The 12-digit account.
        #[arg(long)]
        account: String,
    },
    /// Each key of an account (without --account, the registry's own key): its state and
    /// versions, how many data keys it wraps, and how far its last re-wrap has come.
    Status {
        /// The 12-digit account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Disable a key: the repositories it guards can be neither read nor written until it is
    /// enabled again; every other repository is unaffected.
    Disable {
        /// The 12-digit account the key belongs to.
        #[arg(long)]
        account: String,
        /// The key: its id, ARN, alias or alias ARN.
        key: String,
    },
    /// Enable a disabled key again.
    Enable {
        /// The 12-digit account the key belongs to.
        #[arg(long)]
        account: String,
        /// The key: its id, ARN, alias or alias ARN.
        key: String,
    },
    /// Add a version of the key's material and wrap every data key under the key again with
    /// it, online: the running server's worker does it while pushes and pulls go on (progress:
    /// `status`); blob bytes are never rewritten, and what older versions wrapped still opens.
    /// Without --account and a key: the registry's own key (AES256 repositories).
    Rotate {
        /// The 12-digit account the key belongs to.
        #[arg(long, requires = "key")]
        account: Option<String>,
        /// The key: its id, ARN, alias or alias ARN.
        #[arg(requires = "account")]
        key: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Print the policy (JSON), or null when there is none.
    Get {
        /// The 12-digit account that owns the registry or repository.
        #[arg(long)]
        account: String,
        /// A repository of the account; without it, the account's registry policy.
        #[arg(long)]
        repository: Option<String>,
    },
    /// Delete the policy and print what it was.
    Delete {
        /// The 12-digit account that owns the registry or repository.
        #[arg(long)]
        account: String,
        /// A repository of the account; without it, the account's registry policy.
        #[arg(long)]
        repository: Option<String>,
    },
}

/// Records a command that changed something in the audit log, beside the server's records: its
/// subcommands (`admin key create`), the rest of its arguments as given (no command takes a
/// secret as an argument) and how it ended. Reads (`list`, `get`, `status`) are not recorded.
pub(crate) fn audit(log: &berth_server::AuditLog, args: &[String], result: &Result<(), String>) {
    use clap::CommandFactory;
    let Ok(matches) = crate::Cli::command().try_get_matches_from(args) else { return };
    let mut words = Vec::new();
    let mut current = &matches;
    while let Some((name, next)) = current.subcommand() {
        words.push(name.to_owned());
        current = next;
    }
    if words.first().is_none_or(|w| w != "admin")
        || words.last().is_none_or(|w| ["list", "get", "status"].contains(&w.as_str()))
    {
        return;
    }
    // What follows the last subcommand word: its arguments.
    let mut rest = args.iter().skip(1);
    for word in &words {
        if rest.by_ref().all(|a| a != word) {
            return;
        }
    }
    let arguments: Vec<&String> = rest.collect();
    let account = arguments.iter().position(|a| *a == "--account").and_then(|i| arguments.get(i + 1));
    log.record_operator_command(
        &words.join(" "),
        json!({ "arguments": arguments }),
        account.map(|a| a.as_str()),
        result.as_ref().err().map(String::as_str),
    );
}

fn account_id(text: &str) -> Result<AccountId, String> {
    text.parse().map_err(|e: berth_core::InvalidInput| e.to_string())
}

pub(crate) async fn run(registry: &Registry, command: AdminCommand) -> Result<(), String> {
    let output = match command {
        AdminCommand::Account(AccountCommand::Create { id, name }) => {
            let account =
                registry.admin_create_account(&account_id(&id)?, &name).await.map_err(|e| e.to_string())?;
            json!({ "accountId": account.id.as_str(), "name": account.name })
        }
        AdminCommand::Account(AccountCommand::List) => {
            let accounts = registry.admin_list_accounts().await.map_err(|e| e.to_string())?;
            json!(
                accounts
                    .iter()
                    .map(|a| json!({ "accountId": a.id.as_str(), "name": a.name }))
                    .collect::<Vec<_>>()
            )
        }
        AdminCommand::Key(KeyCommand::Create { account, user, output, profile }) => {
            let key = registry
                .admin_create_key(&account_id(&account)?, user.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            if output == KeyOutput::Credentials {
                print!(
                    "{}",
                    crate::data_dir::credentials_profile(
                        &profile,
                        &key.access_key_id,
                        &key.secret_access_key
                    )
                );
                return Ok(());
            }
            json!({
                "accountId": key.account.as_str(),
                "user": user,
                "accessKeyId": key.access_key_id,
                "secretAccessKey": key.secret_access_key,
            })
        }
        AdminCommand::Key(KeyCommand::List { account }) => {
            let keys = registry.admin_list_keys(&account_id(&account)?).await.map_err(|e| e.to_string())?;
            json!(
                keys.iter()
                    .map(|k| json!({
                        "accessKeyId": k.access_key_id,
                        "accountId": k.account_id.as_str(),
                        "user": k.user_name,
                        "status": if k.active { "Active" } else { "Inactive" },
                    }))
                    .collect::<Vec<_>>()
            )
        }
        AdminCommand::Key(KeyCommand::Disable { access_key_id }) => {
            registry.admin_set_key_active(&access_key_id, false).await.map_err(|e| e.to_string())?;
            json!({ "accessKeyId": access_key_id, "status": "Inactive" })
        }
        AdminCommand::Key(KeyCommand::Enable { access_key_id }) => {
            registry.admin_set_key_active(&access_key_id, true).await.map_err(|e| e.to_string())?;
            json!({ "accessKeyId": access_key_id, "status": "Active" })
        }
        AdminCommand::Key(KeyCommand::Delete { access_key_id }) => {
            registry.admin_delete_key(&access_key_id).await.map_err(|e| e.to_string())?;
            json!({ "accessKeyId": access_key_id, "deleted": true })
        }
        AdminCommand::User(command) => user(registry, command).await?,
        AdminCommand::Policy(command) => policy(registry, command).await?,
        AdminCommand::Kms(command) => kms(registry, command).await?,
    };
    println!("{output}");
    Ok(())
}

async fn kms(registry: &Registry, command: KmsCommand) -> Result<serde_json::Value, String> {
    let described = |key: KeyDescription| {
        json!({
            "keyId": key.key_id,
            "arn": key.arn,
            "accountId": key.account,
            "keyState": key.state.as_str(),
            "description": key.description,
            "aliases": key.aliases,
            "versions": key.versions,
            "createdAt": key.created_at_millis,
            "keyService": registry.key_service(),
        })
    };
    let key = match command {
        KmsCommand::Create { account, alias, description } => {
            registry.admin_create_customer_key(&account_id(&account)?, &description, alias.as_deref()).await
        }
        KmsCommand::List { account } => {
            let keys =
                registry.admin_list_customer_keys(&account_id(&account)?).await.map_err(|e| e.to_string())?;
            return Ok(json!(keys.into_iter().map(described).collect::<Vec<_>>()));
        }
        KmsCommand::Status { account: None } => {
            let (key_id, versions, wraps, rewrap) =
                registry.admin_registry_key_status().await.map_err(|e| e.to_string())?;
            return Ok(json!({
                "keyId": key_id,
                "keyService": "registry",
                "versions": versions,
                "dataKeys": wraps,
                "rewrap": rewrap_json(rewrap),
            }));
        }
        KmsCommand::Rotate { account: None, .. } => {
            let (key_id, versions) = registry.admin_rotate_registry_key().await.map_err(|e| e.to_string())?;
            return Ok(json!({ "keyId": key_id, "keyService": "registry", "versions": versions }));
        }
        KmsCommand::Status { account: Some(account) } => {
            let keys = registry
                .admin_customer_key_status(&account_id(&account)?)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(json!(
                keys.into_iter()
                    .map(|(key, wraps, rewrap)| {
                        let mut out = described(key);
                        out["dataKeys"] = json!(wraps);
                        out["rewrap"] = rewrap_json(rewrap);
                        out
                    })
                    .collect::<Vec<_>>()
            ));
        }
        KmsCommand::Disable { account, key } => {
            registry.admin_set_customer_key_state(&account_id(&account)?, &key, KeyState::Disabled).await
        }
        KmsCommand::Enable { account, key } => {
            registry.admin_set_customer_key_state(&account_id(&account)?, &key, KeyState::Enabled).await
        }
        KmsCommand::Rotate { account: Some(account), key } => {
            let key = key.ok_or("a key to rotate in that account")?;
            registry.admin_rotate_customer_key(&account_id(&account)?, &key).await
        }
    };
    key.map(described).map_err(|e| e.to_string())
}

/// How far a re-wrap has come, for `kms status`.
fn rewrap_json(rewrap: Option<KeyRewrap>) -> serde_json::Value {
    rewrap.map_or(serde_json::Value::Null, |r| {
        json!({
            "requestedAt": r.requested_at,
            "rewrapped": r.rewrapped,
            "finishedAt": r.finished_at,
            "status": if r.finished_at.is_some() { "COMPLETE" } else { "IN_PROGRESS" },
        })
    })
}

async fn user(registry: &Registry, command: UserCommand) -> Result<serde_json::Value, String> {
    Ok(match command {
        UserCommand::Create { account, name, path } => {
            let arn = registry
                .admin_create_user(&account_id(&account)?, &name, &path)
                .await
                .map_err(|e| e.to_string())?;
            json!({ "userName": name, "path": path, "arn": arn })
        }
        UserCommand::List { account } => {
            let users = registry.admin_list_users(&account_id(&account)?).await.map_err(|e| e.to_string())?;
            json!(
                users
                    .iter()
                    .map(|(name, path)| json!({ "userName": name, "path": path }))
                    .collect::<Vec<_>>()
            )
        }
        UserCommand::Delete { account, name } => {
            registry.admin_delete_user(&account_id(&account)?, &name).await.map_err(|e| e.to_string())?;
            json!({ "userName": name, "deleted": true })
        }
        UserCommand::Policy(UserPolicyCommand::Put { account, user, name, file }) => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading the policy: {e}"))?
            } else {
                std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?
            };
            registry
                .admin_put_user_policy(&account_id(&account)?, &user, &name, &text)
                .await
                .map_err(|e| e.to_string())?;
            json!({ "userName": user, "policyName": name })
        }
        UserCommand::Policy(UserPolicyCommand::List { account, user }) => {
            let policies = registry
                .admin_user_policies(&account_id(&account)?, &user)
                .await
                .map_err(|e| e.to_string())?;
            json!(
                policies
                    .iter()
                    .map(|(name, text)| json!({ "policyName": name, "policyDocument": text }))
                    .collect::<Vec<_>>()
            )
        }
        UserCommand::Policy(UserPolicyCommand::Delete { account, user, name }) => {
            registry
                .admin_delete_user_policy(&account_id(&account)?, &user, &name)
                .await
                .map_err(|e| e.to_string())?;
            json!({ "userName": user, "policyName": name, "deleted": true })
        }
    })
}

async fn policy(registry: &Registry, command: PolicyCommand) -> Result<serde_json::Value, String> {
    let (account, repository, delete) = match command {
        PolicyCommand::Get { account, repository } => (account, repository, false),
        PolicyCommand::Delete { account, repository } => (account, repository, true),
    };
    let account = account_id(&account)?;
    let name = repository
        .as_deref()
        .map(|r| r.parse::<berth_core::RepositoryName>().map_err(|e| e.to_string()))
        .transpose()?;
    let text =
        registry.admin_resource_policy(&account, name.as_ref(), delete).await.map_err(|e| e.to_string())?;
    let mut out = json!({ "registryId": account.as_str(), "policyText": text });
    if let Some(name) = &name {
        out["repositoryName"] = json!(name.as_str());
    }
    if delete {
        out["deleted"] = json!(text.is_some());
    }
    Ok(out)
}
