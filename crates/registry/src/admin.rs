//! Operator administration of accounts and access keys, for `berth admin`. Whoever can open
//! the data directory is the operator, so these take no caller.

use berth_core::AccountId;
use berth_meta::{AccessKey, Account, MetaError, now_millis};

use crate::{Registry, RegistryError};

/// A new access key, with the secret that is shown this once.
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account: AccountId,
}

impl Registry {
    pub async fn admin_create_account(&self, id: &AccountId, name: &str) -> Result<Account, RegistryError> {
        if name.is_empty() || name.len() > 64 {
            return Err(RegistryError::InvalidParameter(
                "an account name must be 1 to 64 characters".to_owned(),
            ));
        }
        let account = Account { id: id.clone(), name: name.to_owned(), created_at: now_millis() };
        self.meta.create_account(&account).await.map_err(|e| match e {
            MetaError::AlreadyExists(_) => {
                RegistryError::InvalidParameter(format!("account {id} already exists"))
            }
            other => other.into(),
        })?;
        Ok(account)
    }

    pub async fn admin_list_accounts(&self) -> Result<Vec<Account>, RegistryError> {
        Ok(self.meta.list_accounts().await?)
    }

    /// Creates a root access key for an existing account.
    pub async fn admin_create_key(&self, account: &AccountId) -> Result<NewAccessKey, RegistryError> {
        if self.meta.get_account(account).await?.is_none() {
            return Err(RegistryError::InvalidParameter(format!("account {account} does not exist")));
        }
        let pair = berth_iam::generate_access_key()
            .ok_or_else(|| RegistryError::Internal("random source failed".to_owned()))?;
        self.store_access_key(account, None, &pair.access_key_id, &pair.secret_access_key).await?;
        Ok(NewAccessKey {
            access_key_id: pair.access_key_id,
            secret_access_key: pair.secret_access_key,
            account: account.clone(),
        })
    }

    /// An account's keys, without their secrets.
    pub async fn admin_list_keys(&self, account: &AccountId) -> Result<Vec<AccessKey>, RegistryError> {
        let mut keys = self.meta.list_access_keys(account).await?;
        for key in &mut keys {
            key.sealed_secret.clear();
        }
        Ok(keys)
    }

    pub async fn admin_set_key_active(&self, access_key_id: &str, active: bool) -> Result<(), RegistryError> {
        self.meta.set_access_key_active(access_key_id, active).await.map_err(|e| match e {
            MetaError::NotFound(m) => RegistryError::InvalidParameter(format!("{m} does not exist")),
            other => other.into(),
        })
    }

    pub async fn admin_delete_key(&self, access_key_id: &str) -> Result<(), RegistryError> {
        self.meta.delete_access_key(access_key_id).await.map_err(|e| match e {
            MetaError::NotFound(m) => RegistryError::InvalidParameter(format!("{m} does not exist")),
            other => other.into(),
        })
    }
}
