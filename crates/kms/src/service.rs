//! Customer keys: the key-encryption keys a repository's owner chooses (`KMS` encryption), held
//! by a key service that wraps and unwraps data keys without ever handing its keys out.

use crate::{DataKey, KmsError};

/// A key as the service describes it, named as ECR and KMS name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    /// `arn:aws:kms:<region>:<account>:key/<key id>`: what a repository records and wraps under.
    pub arn: String,
    pub key_id: String,
    pub account: String,
    pub state: KeyState,
    pub description: String,
    /// The aliases that name the key, `alias/...`.
    pub aliases: Vec<String>,
    /// How many versions of key material it has (rotation adds one; old ones still unwrap).
    pub versions: u32,
    pub created_at_millis: i64,
}

/// Whether a key may be used, in KMS's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
        }
    }
}

/// The alias ECR uses when a `KMS` repository names no key: the account's registry-managed key.
pub const DEFAULT_ALIAS: &str = "alias/aws/ecr";

/// Refuses an alias a person asks for under `alias/aws/`, which names keys the registry manages
/// (its default key, [`DEFAULT_ALIAS`]), whichever service holds the keys.
pub(crate) fn refuse_reserved_alias(alias: Option<&str>) -> Result<(), KmsError> {
    match alias {
        Some(alias) if alias.starts_with("alias/aws/") => Err(KmsError::InvalidKeyName(format!(
            "{alias}: aliases beginning alias/aws/ are reserved for keys the registry manages"
        ))),
        _ => Ok(()),
    }
}

/// The description of the key made under [`DEFAULT_ALIAS`].
pub(crate) const DEFAULT_KEY_DESCRIPTION: &str = "Default key for repositories of this account";

/// A service holding customer keys: `local` (key files in the data directory), an HSM, or a KMS.
#[async_trait::async_trait]
pub trait KeyService: Send + Sync {
    /// The provider's name, for messages and `berth admin kms status`.
    fn provider(&self) -> &'static str;

    /// Resolves what a repository's `kmsKey` says (a key id, key ARN, alias name or alias ARN)
    /// for a repository of `account`; `None` is the account's default key [`DEFAULT_ALIAS`],
    /// made on first use as ECR makes `aws/ecr`.
    async fn describe_key(&self, account: &str, key: Option<&str>) -> Result<KeyDescription, KmsError> {
        let key = key.filter(|k| !k.is_empty() && *k != "aws/ecr").unwrap_or(DEFAULT_ALIAS);
        match self.find_key(account, key).await {
            Err(KmsError::KeyNotFound(_)) if key == DEFAULT_ALIAS => {
                match self.create_default_key(account).await {
                    // Another server or command made it first.
                    Err(KmsError::AlreadyExists(_)) => self.find_key(account, key).await,
                    made => made,
                }
            }
            found => found,
        }
    }

    /// The existing key that `key` (a key id, key ARN, alias name or alias ARN) names for `account`.
    async fn find_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError>;

    /// Makes `account`'s default key under [`DEFAULT_ALIAS`], an alias no one else may take.
    async fn create_default_key(&self, account: &str) -> Result<KeyDescription, KmsError>;

    /// Whether the key `key_arn` may be used now.
    async fn key_state(&self, key_arn: &str) -> Result<KeyState, KmsError>;

    /// Wraps a data key under the key `key_arn` (its current version).
    async fn wrap(&self, key_arn: &str, key: &DataKey) -> Result<Vec<u8>, KmsError>;

    /// Recovers a data key wrapped under `key_arn` (by any of its versions).
    async fn unwrap(&self, key_arn: &str, wrapped: &[u8]) -> Result<DataKey, KmsError>;

    // Managing keys: a service whose keys are managed elsewhere (a KMS's own console) refuses.

    /// Makes a key in `account`, optionally named by `alias`.
    async fn create_key(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        let _ = (account, description, alias);
        Err(self.managed_elsewhere())
    }

    /// Every key of `account`.
    async fn list_keys(&self, account: &str) -> Result<Vec<KeyDescription>, KmsError> {
        let _ = account;
        Err(self.managed_elsewhere())
    }

    /// Enables or disables the key `key` names (as a repository would name it).
    async fn set_key_state(
        &self,
        account: &str,
        key: &str,
        state: KeyState,
    ) -> Result<KeyDescription, KmsError> {
        let _ = (account, key, state);
        Err(self.managed_elsewhere())
    }

    /// Adds a version of key material: new wraps use it, older wraps still open.
    async fn rotate_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        let _ = (account, key);
        Err(self.managed_elsewhere())
    }

    /// The refusal of a management call this service leaves to the key service's own tools.
    fn managed_elsewhere(&self) -> KmsError {
        KmsError::Unsupported(format!(
            "keys of the {} key service are managed with that service's own tools",
            self.provider()
        ))
    }
}
