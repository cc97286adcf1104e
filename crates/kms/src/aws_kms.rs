//! The `aws-kms` key service: customer keys in AWS KMS, or any endpoint that speaks its API,
//! called with SigV4 through the AWS SDK under the registry's own credentials (found as the AWS
//! SDKs find them: environment, profile, web identity, container or instance role).
//!
//! One KMS account serves every berth account, so berth keeps tenants apart itself: an alias a
//! berth account names, `alias/NAME`, is the KMS alias `alias/berth/<account>/NAME`, and a key
//! named by id or ARN must carry the tag `berth:account` with the berth account's id (keys made
//! through berth carry it). The account's default key (`alias/aws/ecr`) is made on first use.
//! Data keys are wrapped with `Encrypt` under an encryption context that binds them to berth.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyMetadata, Tag};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::service::{
    DEFAULT_ALIAS, DEFAULT_KEY_DESCRIPTION, KeyDescription, KeyService, KeyState, refuse_reserved_alias,
};
use crate::{DataKey, KmsError};

/// First byte of a data key wrapped by this service (1: the registry's key; 2: `local`).
const WRAP_FORMAT: u8 = 3;
/// The encryption context of every wrap: KMS refuses to decrypt without the same one.
const CONTEXT_KEY: &str = "berth:purpose";
const CONTEXT_VALUE: &str = "data-key";
/// The tag naming the berth account a key belongs to.
pub const ACCOUNT_TAG: &str = "berth:account";
/// Where each berth account's aliases live in the KMS account.
const ALIAS_ROOT: &str = "alias/berth/";

/// How to reach the key service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKmsSettings {
    /// An endpoint that speaks KMS's API; `None` for AWS KMS in `region`.
    pub endpoint: Option<String>,
    pub region: String,
    /// A profile of the shared AWS files for the registry's credentials; `None` for the default chain.
    pub profile: Option<String>,
    /// The longest one call may take, retries included.
    pub timeout: Duration,
}

pub struct AwsKmsKeyService {
    client: Client,
    /// For messages: where the service is.
    target: String,
}

impl AwsKmsKeyService {
    pub async fn connect(settings: &AwsKmsSettings) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(settings.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(settings.timeout)
                    .connect_timeout(settings.timeout)
                    .build(),
            );
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        let target = settings.endpoint.clone().unwrap_or_else(|| format!("AWS KMS in {}", settings.region));
        Self { client: Client::new(&config), target }
    }

    /// The KMS identifier a berth account's name for a key stands for: its alias in the account's
    /// namespace, or the key id or ARN itself (checked for the account's tag once described).
    fn kms_name(account: &str, key: &str) -> Result<(String, bool), KmsError> {
        if let Some(alias) = key.strip_prefix("alias/") {
            return Ok((format!("{ALIAS_ROOT}{account}/{}", check_alias(alias)?), true));
        }
        if let Some(rest) = key.strip_prefix("arn:") {
            return match rest.split_once(":alias/") {
                Some((_, alias)) => Ok((format!("{ALIAS_ROOT}{account}/{}", check_alias(alias)?), true)),
                None if rest.contains(":key/") => Ok((key.to_owned(), false)),
                None => Err(KmsError::InvalidKeyName(format!("{key:?} is not a KMS key or alias ARN"))),
            };
        }
        if !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Ok((key.to_owned(), false));
        }
        Err(KmsError::InvalidKeyName(format!(
            "{key:?} is not a key id, key ARN, alias name (alias/...) or alias ARN"
        )))
    }

    async fn metadata(&self, kms_name: &str) -> Result<KeyMetadata, KmsError> {
        let out = self.client.describe_key().key_id(kms_name).send().await.map_err(|e| self.failure(e))?;
        out.key_metadata()
            .cloned()
            .ok_or_else(|| KmsError::Unavailable(format!("{} described no key", self.target)))
    }

    /// The berth account a key belongs to, from its tag.
    async fn owner(&self, key_id: &str) -> Result<Option<String>, KmsError> {
        let out =
            self.client.list_resource_tags().key_id(key_id).send().await.map_err(|e| self.failure(e))?;
        Ok(out.tags().iter().find(|t| t.tag_key() == ACCOUNT_TAG).map(|t| t.tag_value().to_owned()))
    }

    /// The account's aliases of a key, as the account names them (`alias/NAME`).
    async fn aliases(&self, account: &str, key_id: &str) -> Result<Vec<String>, KmsError> {
        let prefix = format!("{ALIAS_ROOT}{account}/");
        let out = self.client.list_aliases().key_id(key_id).send().await.map_err(|e| self.failure(e))?;
        let mut aliases: Vec<String> = out
            .aliases()
            .iter()
            .filter_map(|a| a.alias_name())
            .filter_map(|name| name.strip_prefix(&prefix))
            .map(|name| format!("alias/{name}"))
            .collect();
        aliases.sort();
        Ok(aliases)
    }

    async fn describe(&self, account: &str, metadata: &KeyMetadata) -> Result<KeyDescription, KmsError> {
        let key_id = metadata.key_id().to_owned();
        let rotations = self
            .client
            .list_key_rotations()
            .key_id(&key_id)
            .send()
            .await
            .map(|out| out.rotations().len())
            .unwrap_or(0);
        Ok(KeyDescription {
            arn: metadata.arn().unwrap_or_default().to_owned(),
            aliases: self.aliases(account, &key_id).await?,
            key_id,
            account: account.to_owned(),
            state: state_of(metadata),
            description: metadata.description().unwrap_or_default().to_owned(),
            versions: u32::try_from(rotations).unwrap_or(u32::MAX).saturating_add(1),
            created_at_millis: metadata.creation_date().map_or(0, |d| d.to_millis().unwrap_or(0)),
        })
    }

    /// The key a berth account's name stands for, refused when it is another account's.
    async fn find(&self, account: &str, key: &str) -> Result<KeyMetadata, KmsError> {
        let (kms_name, by_alias) = Self::kms_name(account, key)?;
        let metadata = self.metadata(&kms_name).await.map_err(|e| match e {
            KmsError::KeyNotFound(_) if by_alias => {
                KmsError::KeyNotFound(format!("Alias {key} is not found."))
            }
            other => other,
        })?;
        if !by_alias && self.owner(metadata.key_id()).await?.as_deref() != Some(account) {
            return Err(KmsError::KeyAccessDenied(format!(
                "{key} is not a key of account {account}: a key named by id or ARN must carry the tag \
                 {ACCOUNT_TAG}={account} (keys made with `berth admin kms create` do)"
            )));
        }
        Ok(metadata)
    }

    async fn create(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        let alias_name = alias
            .map(|a| {
                let name = a
                    .strip_prefix("alias/")
                    .ok_or_else(|| KmsError::InvalidKeyName(format!("{a:?}: an alias starts with alias/")))?;
                check_alias(name).map(|n| format!("{ALIAS_ROOT}{account}/{n}"))
            })
            .transpose()?;
        let tag = Tag::builder()
            .tag_key(ACCOUNT_TAG)
            .tag_value(account)
            .build()
            .map_err(|e| KmsError::Unavailable(e.to_string()))?;
        let out = self
            .client
            .create_key()
            .description(description)
            .tags(tag)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let metadata =
            out.key_metadata().cloned().ok_or_else(|| KmsError::Unavailable("no key made".to_owned()))?;
        if let Some(alias_name) = alias_name {
            self.client
                .create_alias()
                .alias_name(&alias_name)
                .target_key_id(metadata.key_id())
                .send()
                .await
                .map_err(|e| self.failure(e))?;
        }
        self.describe(account, &metadata).await
    }

    /// An SDK failure as berth names it, with the key service's own words.
    fn failure<E, R>(&self, error: SdkError<E, R>) -> KmsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match &error {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let message = e.message().unwrap_or("no message").to_owned();
                match e.code().unwrap_or_default() {
                    "NotFoundException" => KmsError::KeyNotFound(message),
                    "DisabledException" | "KMSInvalidStateException" => KmsError::KeyDisabled(message),
                    "AccessDeniedException" => KmsError::KeyAccessDenied(message),
                    "AlreadyExistsException" => KmsError::AlreadyExists(message),
                    "InvalidCiphertextException" | "IncorrectKeyException" => KmsError::Unwrap,
                    code => KmsError::Unavailable(format!("{} answered {code}: {message}", self.target)),
                }
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => KmsError::Unavailable(format!(
                "the key service ({}) did not answer in time or could not be reached",
                self.target
            )),
            other => KmsError::Unavailable(format!(
                "the key service ({}): {}",
                self.target,
                aws_sdk_kms::error::DisplayErrorContext(other)
            )),
        }
    }
}

fn state_of(metadata: &KeyMetadata) -> KeyState {
    if metadata.enabled() { KeyState::Enabled } else { KeyState::Disabled }
}

/// An alias name after `alias/`, as KMS allows it (and not in AWS's reserved space).
fn check_alias(name: &str) -> Result<&str, KmsError> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'));
    if valid {
        Ok(name)
    } else {
        Err(KmsError::InvalidKeyName(format!("alias/{name} is not a valid alias name")))
    }
}

fn context() -> HashMap<String, String> {
    HashMap::from([(CONTEXT_KEY.to_owned(), CONTEXT_VALUE.to_owned())])
}

#[async_trait::async_trait]
impl KeyService for AwsKmsKeyService {
    fn provider(&self) -> &'static str {
        "aws-kms"
    }

    async fn find_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        let metadata = self.find(account, key).await?;
        self.describe(account, &metadata).await
    }

    async fn create_default_key(&self, account: &str) -> Result<KeyDescription, KmsError> {
        self.create(account, DEFAULT_KEY_DESCRIPTION, Some(DEFAULT_ALIAS)).await
    }

    async fn key_state(&self, key_arn: &str) -> Result<KeyState, KmsError> {
        Ok(state_of(&self.metadata(key_arn).await?))
    }

    async fn wrap(&self, key_arn: &str, key: &DataKey) -> Result<Vec<u8>, KmsError> {
        let out = self
            .client
            .encrypt()
            .key_id(key_arn)
            .plaintext(Blob::new(key.as_bytes().to_vec()))
            .set_encryption_context(Some(context()))
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let blob = out.ciphertext_blob().ok_or(KmsError::Unwrap)?.as_ref();
        let mut wrapped = Vec::with_capacity(1 + blob.len());
        wrapped.push(WRAP_FORMAT);
        wrapped.extend_from_slice(blob);
        Ok(wrapped)
    }

    async fn unwrap(&self, key_arn: &str, wrapped: &[u8]) -> Result<DataKey, KmsError> {
        let (&format, blob) = wrapped.split_first().ok_or(KmsError::Unwrap)?;
        if format != WRAP_FORMAT || blob.is_empty() {
            return Err(KmsError::Unwrap);
        }
        let out = self
            .client
            .decrypt()
            .key_id(key_arn)
            .ciphertext_blob(Blob::new(blob.to_vec()))
            .set_encryption_context(Some(context()))
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let mut plain = out.plaintext.map(Blob::into_inner).ok_or(KmsError::Unwrap)?;
        let bytes = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| KmsError::Unwrap);
        // The plaintext key must not outlive this call anywhere but in the returned `DataKey`.
        zeroize::Zeroize::zeroize(&mut plain);
        Ok(DataKey::from_bytes(bytes?))
    }

    async fn create_key(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        // The account's default key is made by `create_default_key` alone.
        refuse_reserved_alias(alias)?;
        self.create(account, description, alias).await
    }

    async fn list_keys(&self, account: &str) -> Result<Vec<KeyDescription>, KmsError> {
        let mut keys = Vec::new();
        let mut marker = None;
        loop {
            let page =
                self.client.list_keys().set_marker(marker).send().await.map_err(|e| self.failure(e))?;
            for entry in page.keys() {
                let Some(key_id) = entry.key_id() else { continue };
                if self.owner(key_id).await?.as_deref() == Some(account) {
                    let metadata = self.metadata(key_id).await?;
                    keys.push(self.describe(account, &metadata).await?);
                }
            }
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        Ok(keys)
    }

    async fn set_key_state(
        &self,
        account: &str,
        key: &str,
        state: KeyState,
    ) -> Result<KeyDescription, KmsError> {
        let metadata = self.find(account, key).await?;
        let key_id = metadata.key_id();
        match state {
            KeyState::Enabled => {
                self.client.enable_key().key_id(key_id).send().await.map_err(|e| self.failure(e))?;
            }
            KeyState::Disabled => {
                self.client.disable_key().key_id(key_id).send().await.map_err(|e| self.failure(e))?;
            }
        }
        let metadata = self.metadata(key_id).await?;
        self.describe(account, &metadata).await
    }

    async fn rotate_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        let metadata = self.find(account, key).await?;
        self.client
            .rotate_key_on_demand()
            .key_id(metadata.key_id())
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        self.describe(account, &metadata).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_person_cannot_take_the_registrys_alias_space() {
        let settings = AwsKmsSettings {
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            region: "us-east-1".to_owned(),
            profile: None,
            timeout: Duration::from_millis(200),
        };
        let kms = AwsKmsKeyService::connect(&settings).await;
        let refused = kms.create_key("111111111111", "", Some("alias/aws/ecr")).await;
        assert!(
            matches!(&refused, Err(KmsError::InvalidKeyName(m)) if m.contains("reserved")),
            "{refused:?}"
        );
    }

    #[test]
    fn names_map_into_the_accounts_own_alias_space() {
        let name = |key: &str| AwsKmsKeyService::kms_name("111111111111", key);
        assert_eq!(name("alias/base").expect("alias"), ("alias/berth/111111111111/base".to_owned(), true));
        assert_eq!(
            name("alias/aws/ecr").expect("default"),
            ("alias/berth/111111111111/aws/ecr".to_owned(), true)
        );
        assert_eq!(
            name("arn:aws:kms:us-east-1:999999999999:alias/base").expect("alias ARN"),
            ("alias/berth/111111111111/base".to_owned(), true),
            "an alias ARN names the account's own alias, whatever KMS account it states"
        );
        let arn = "arn:aws:kms:us-east-1:999999999999:key/0d2f6c3e-4b1a-4c53-9d0e-0a1b2c3d4e5f";
        assert_eq!(name(arn).expect("key ARN"), (arn.to_owned(), false));
        assert!(!name("0d2f6c3e-4b1a-4c53-9d0e-0a1b2c3d4e5f").expect("key id").1);
        for bad in ["alias/../x", "alias/", "arn:aws:kms:us-east-1:1:thing/x", "key id with spaces", ""] {
            assert!(matches!(name(bad), Err(KmsError::InvalidKeyName(_))), "{bad}");
        }
    }
}
