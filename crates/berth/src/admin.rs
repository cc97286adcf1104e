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
    /// Access keys of an account's root: `create --account ID`, `list --account ID`,
    /// `disable KEY`, `enable KEY`, `delete KEY`.
    #[command(subcommand)]
    Key(KeyCommand),
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
        AdminCommand::Key(KeyCommand::Create { account }) => {
            let key = registry.admin_create_key(&account_id(&account)?).await.map_err(|e| e.to_string())?;
            json!({
                "accountId": key.account.as_str(),
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
    };
    println!("{output}");
    Ok(())
}
