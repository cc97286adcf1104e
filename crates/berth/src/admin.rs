//! `berth admin`: accounts and access keys, printed as JSON for scripts. Secrets are shown
//! once, when a key is created, and never again.

use berth_core::AccountId;
use berth_registry::Registry;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Accounts: `create <12-digit id> [--name NAME]`, `list`.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Access keys of an account's root or of a user: `create --account ID [--user NAME]`,
    /// `list --account ID`, `disable KEY`, `enable KEY`, `delete KEY`.
    #[command(subcommand)]
    Key(KeyCommand),
    /// IAM users: `create --account ID NAME [--path /team/]`, `list --account ID`,
    /// `delete --account ID NAME`, and their identity policies with `policy put|list|delete`.
    #[command(subcommand)]
    User(UserCommand),
    /// Repository and registry policies, whatever they say about who may change them: `get` and
    /// `delete` with `--account ID`, and `--repository NAME` for a repository's policy (without
    /// it, the account's registry policy). The last resort against a policy that locks out an
    /// account's own users.
    #[command(subcommand)]
    Policy(PolicyCommand),
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

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    Create {
        #[arg(long)]
        account: String,
        name: String,
        #[arg(long, default_value = "/")]
        path: String,
    },
    List {
        #[arg(long)]
        account: String,
    },
    Delete {
        #[arg(long)]
        account: String,
        name: String,
    },
    /// Identity policies: `put --account ID --user NAME --name POLICY --file FILE`,
    /// `list --account ID --user NAME`, `delete --account ID --user NAME --name POLICY`.
    #[command(subcommand)]
    Policy(UserPolicyCommand),
}

#[derive(Subcommand)]
pub(crate) enum UserPolicyCommand {
    Put {
        #[arg(long)]
        account: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// The policy document (JSON); `-` reads standard input.
        #[arg(long)]
        file: String,
    },
    List {
        #[arg(long)]
        account: String,
        #[arg(long)]
        user: String,
    },
    Delete {
        #[arg(long)]
        account: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AccountCommand {
    Create {
        id: String,
        #[arg(long, default_value = "account")]
        name: String,
    },
    List,
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        user: Option<String>,
    },
    List {
        #[arg(long)]
        account: String,
    },
    Disable {
        access_key_id: String,
    },
    Enable {
        access_key_id: String,
    },
    Delete {
        access_key_id: String,
    },
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
        AdminCommand::Key(KeyCommand::Create { account, user }) => {
            let key = registry
                .admin_create_key(&account_id(&account)?, user.as_deref())
                .await
                .map_err(|e| e.to_string())?;
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
    };
    println!("{output}");
    Ok(())
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
