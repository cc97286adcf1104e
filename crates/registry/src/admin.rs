//! Operator administration of accounts and access keys, for `berth admin`. Whoever can open
//! the data directory is the operator, so these take no caller.

use berth_core::{AccountId, RepositoryName};
use berth_kms::{KeyDescription, KeyState};
use berth_meta::{AccessKey, Account, KeyRewrap, MetaError, now_millis};

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

    /// Creates an access key for an account's root, or for one of its users.
    pub async fn admin_create_key(
        &self,
        account: &AccountId,
        user: Option<&str>,
    ) -> Result<NewAccessKey, RegistryError> {
        if self.meta.get_account(account).await?.is_none() {
            return Err(RegistryError::InvalidParameter(format!("account {account} does not exist")));
        }
        if let Some(user) = user
            && !self.meta.list_users(account).await?.iter().any(|(name, _)| name == user)
        {
            return Err(RegistryError::InvalidParameter(format!(
                "user {user} does not exist in account {account}"
            )));
        }
        let pair = berth_iam::generate_access_key()
            .ok_or_else(|| RegistryError::Internal("random source failed".to_owned()))?;
        self.store_access_key(account, user.map(str::to_owned), &pair.access_key_id, &pair.secret_access_key)
            .await?;
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

/// Customer keys (`berth admin kms`), in the registry's key service.
impl Registry {
    /// The key service's name (`local`, ...).
    pub fn key_service(&self) -> &'static str {
        self.keys.provider()
    }

    async fn existing_account(&self, account: &AccountId) -> Result<(), RegistryError> {
        match self.meta.get_account(account).await? {
            Some(_) => Ok(()),
            None => Err(RegistryError::InvalidParameter(format!("account {account} does not exist"))),
        }
    }

    pub async fn admin_create_customer_key(
        &self,
        account: &AccountId,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, RegistryError> {
        self.existing_account(account).await?;
        self.keys.create_key(account.as_str(), description, alias).await.map_err(key_admin_error)
    }

    pub async fn admin_list_customer_keys(
        &self,
        account: &AccountId,
    ) -> Result<Vec<KeyDescription>, RegistryError> {
        self.existing_account(account).await?;
        self.keys.list_keys(account.as_str()).await.map_err(key_admin_error)
    }

    /// Enables or disables a customer key: what it guards becomes readable again, or not.
    pub async fn admin_set_customer_key_state(
        &self,
        account: &AccountId,
        key: &str,
        state: KeyState,
    ) -> Result<KeyDescription, RegistryError> {
        self.existing_account(account).await?;
        self.keys.set_key_state(account.as_str(), key, state).await.map_err(key_admin_error)
    }

    /// Adds a version of a customer key's material, and starts wrapping every data key under
    /// the key again with it, online (the server's job worker does it; blob bytes are untouched).
    pub async fn admin_rotate_customer_key(
        &self,
        account: &AccountId,
        key: &str,
    ) -> Result<KeyDescription, RegistryError> {
        self.existing_account(account).await?;
        let rotated = self.keys.rotate_key(account.as_str(), key).await.map_err(key_admin_error)?;
        self.meta.start_key_rewrap(&rotated.arn, self.now_millis()).await?;
        Ok(rotated)
    }

    /// Adds a version of the registry's own key (the `AES256` repositories' key, which also seals
    /// secrets), and starts wrapping every data key under it again with the new version, online.
    pub async fn admin_rotate_registry_key(&self) -> Result<(String, u32), RegistryError> {
        let versions = self.kms.rotate().await.map_err(key_admin_error)?;
        self.meta.start_key_rewrap(self.kms.key_id(), self.now_millis()).await?;
        Ok((self.kms.key_id().to_owned(), versions))
    }

    /// The registry's own key: its id, versions, how many data keys it wraps, its last re-wrap.
    pub async fn admin_registry_key_status(
        &self,
    ) -> Result<(String, u32, u64, Option<KeyRewrap>), RegistryError> {
        let key_id = self.kms.key_id();
        let wraps = self.meta.count_key_wraps(key_id).await?;
        Ok((key_id.to_owned(), self.kms.versions(), wraps, self.meta.key_rewrap(key_id).await?))
    }

    /// The customer keys (key ARNs) that guard at least one repository.
    pub async fn customer_keys_in_use(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.meta.customer_keys_in_use().await?)
    }

    /// Each customer key of `account` with how many data keys it wraps and its last re-wrap.
    pub async fn admin_customer_key_status(
        &self,
        account: &AccountId,
    ) -> Result<Vec<(KeyDescription, u64, Option<KeyRewrap>)>, RegistryError> {
        let mut out = Vec::new();
        for key in self.admin_list_customer_keys(account).await? {
            let wraps = self.meta.count_key_wraps(&key.arn).await?;
            let rewrap = self.meta.key_rewrap(&key.arn).await?;
            out.push((key, wraps, rewrap));
        }
        Ok(out)
    }
}

/// A key service's refusal, worded for the operator.
fn key_admin_error(e: berth_kms::KmsError) -> RegistryError {
    match e {
        berth_kms::KmsError::KeyFile { .. }
        | berth_kms::KmsError::BadKeyFile { .. }
        | berth_kms::KmsError::Random => RegistryError::Internal(e.to_string()),
        other => RegistryError::InvalidParameter(other.to_string()),
    }
}

/// IAM's rules for user names: 1 to 64 of letters, digits and `+=,.@_-`.
fn check_user_name(name: &str) -> Result<(), RegistryError> {
    if (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        Ok(())
    } else {
        Err(RegistryError::InvalidParameter(format!(
            "user name {name:?} must be 1 to 64 letters, digits or +=,.@_-"
        )))
    }
}

/// IAM's rules for paths: `/`, or `/`-delimited segments beginning and ending with `/`.
fn check_user_path(path: &str) -> Result<(), RegistryError> {
    let ok = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && !path.contains("//")
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidParameter(format!("path {path:?} must look like / or /team/")))
    }
}

impl Registry {
    pub async fn admin_create_user(
        &self,
        account: &AccountId,
        name: &str,
        path: &str,
    ) -> Result<String, RegistryError> {
        check_user_name(name)?;
        check_user_path(path)?;
        self.meta.create_user(account, name, path).await.map_err(|e| match e {
            MetaError::AlreadyExists(_) => {
                RegistryError::InvalidParameter(format!("user {name} already exists in account {account}"))
            }
            MetaError::NotFound(m) => RegistryError::InvalidParameter(format!("{m} does not exist")),
            other => other.into(),
        })?;
        Ok(format!("arn:aws:iam::{account}:user{path}{name}"))
    }

    pub async fn admin_list_users(
        &self,
        account: &AccountId,
    ) -> Result<Vec<(String, String)>, RegistryError> {
        Ok(self.meta.list_users(account).await?)
    }

    pub async fn admin_delete_user(&self, account: &AccountId, name: &str) -> Result<(), RegistryError> {
        if self.meta.delete_user(account, name).await? {
            Ok(())
        } else {
            Err(RegistryError::InvalidParameter(format!("user {name} does not exist in account {account}")))
        }
    }

    /// Attaches an identity policy to a user, after validating it as one.
    pub async fn admin_put_user_policy(
        &self,
        account: &AccountId,
        user: &str,
        policy_name: &str,
        text: &str,
    ) -> Result<(), RegistryError> {
        if policy_name.is_empty() || policy_name.len() > 128 {
            return Err(RegistryError::InvalidParameter(
                "a policy name must be 1 to 128 characters".to_owned(),
            ));
        }
        berth_iam::policy::validate(text, berth_iam::policy::PolicyKind::Identity)
            .map_err(|e| RegistryError::InvalidParameter(format!("invalid identity policy: {e}")))?;
        self.meta.put_user_policy(account, user, policy_name, text).await.map_err(|e| match e {
            MetaError::NotFound(m) => RegistryError::InvalidParameter(format!("{m} does not exist")),
            other => other.into(),
        })
    }

    pub async fn admin_user_policies(
        &self,
        account: &AccountId,
        user: &str,
    ) -> Result<Vec<(String, String)>, RegistryError> {
        Ok(self.meta.user_policies(account, user).await?)
    }

    pub async fn admin_delete_user_policy(
        &self,
        account: &AccountId,
        user: &str,
        policy_name: &str,
    ) -> Result<(), RegistryError> {
        if self.meta.delete_user_policy(account, user, policy_name).await? {
            Ok(())
        } else {
            Err(RegistryError::InvalidParameter(format!("user {user} has no policy {policy_name}")))
        }
    }

    /// The repository policy of `repository`, or the registry policy of the account when it is
    /// `None`, whatever it says about who may read it; with `delete`, also deletes it (the
    /// operator's last resort against a policy that locks everyone out). `None` when there is
    /// no policy.
    pub async fn admin_resource_policy(
        &self,
        account: &AccountId,
        repository: Option<&RepositoryName>,
        delete: bool,
    ) -> Result<Option<String>, RegistryError> {
        Ok(match (repository, delete) {
            (Some(name), false) => {
                self.admin_repository(account, name).await?;
                self.meta.repository_policy(account, name).await?
            }
            (Some(name), true) => {
                let found = self.admin_repository(account, name).await?;
                self.meta.set_repository_policy(found.id, None).await?
            }
            (None, false) => self.meta.registry_policy(account).await?,
            (None, true) => self.meta.set_registry_policy(account, None).await?,
        })
    }

    async fn admin_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<berth_meta::Repository, RegistryError> {
        let repo = crate::RepoPath { account: account.clone(), name: name.clone() };
        self.meta.get_repository(account, name).await?.ok_or_else(|| RegistryError::name_unknown(&repo))
    }
}
