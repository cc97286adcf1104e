//! The registry `berth apply` talks to, over ECR's API with the AWS SDK: signed with SigV4 under
//! credentials found the way the aws CLI finds them (environment, then the shared credentials and
//! config files and their profiles).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::ApplyError;
use crate::plan::{Observed, Step};

/// How long one call may take before apply gives up on the registry.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and as whom to connect.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The registry's ECR endpoint, e.g. `http://127.0.0.1:5000`.
    pub endpoint: String,
    /// The profile of the shared files; default `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// The signing region; default `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's, else
    /// `default_region`.
    pub region: Option<String>,
    pub default_region: String,
}

pub struct Registry {
    client: Client,
    endpoint: String,
}

impl Registry {
    pub async fn connect(connection: &Connection) -> Result<Self, ApplyError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        // The profile provider may assume roles (STS) or read an instance's credentials: it needs
        // the same HTTP client.
        let providers = ProviderConfig::without_region().with_http_client(http.clone());
        let mut profile = ProfileFileCredentialsProvider::builder().configure(&providers);
        if let Some(name) = &connection.profile {
            profile = profile.profile_name(name);
        }
        let credentials =
            CredentialsProviderChain::first_try("environment", EnvironmentVariableCredentialsProvider::new())
                .or_else("profile", profile.build());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .credentials_provider(credentials)
            .endpoint_url(&connection.endpoint)
            .timeout_config(TimeoutConfig::builder().operation_timeout(CALL_TIMEOUT).build());
        if let Some(name) = &connection.profile {
            loader = loader.profile_name(name);
        }
        let config = loader.region(Self::region(connection, &providers).await).load().await;
        Ok(Self { client: Client::new(&config), endpoint: connection.endpoint.clone() })
    }

    /// The region as the aws CLI finds it, without asking an instance metadata service (this is
    /// rarely an EC2 instance, and the lookup would stall).
    async fn region(connection: &Connection, providers: &ProviderConfig) -> Region {
        if let Some(region) = &connection.region {
            return Region::new(region.clone());
        }
        for variable in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let Ok(region) = std::env::var(variable)
                && !region.is_empty()
            {
                return Region::new(region);
            }
        }
        let mut profile = ProfileFileRegionProvider::builder().configure(providers);
        if let Some(name) = &connection.profile {
            profile = profile.profile_name(name);
        }
        match profile.build().region().await {
            Some(region) => region,
            None => Region::new(connection.default_region.clone()),
        }
    }

    /// Every repository of the caller's account, with the details the plan compares for those the
    /// file names, and whether each other one holds images when `--prune` would delete it.
    pub async fn observe(
        &self,
        wanted: &[&str],
        prune: bool,
    ) -> Result<BTreeMap<String, Observed>, ApplyError> {
        let mut observed = BTreeMap::new();
        let mut next_token = None;
        loop {
            let page = self
                .client
                .describe_repositories()
                .set_next_token(next_token)
                .max_results(1000)
                .send()
                .await
                .map_err(|e| self.failure("DescribeRepositories", None, e))?;
            for repository in page.repositories() {
                let name = repository.repository_name().unwrap_or_default().to_owned();
                let encryption = repository.encryption_configuration();
                observed.insert(
                    name.clone(),
                    Observed {
                        name,
                        uri: repository.repository_uri().unwrap_or_default().to_owned(),
                        arn: repository.repository_arn().unwrap_or_default().to_owned(),
                        tag_mutability: repository
                            .image_tag_mutability()
                            .map_or("MUTABLE", ImageTagMutability::as_str)
                            .to_owned(),
                        scan_on_push: repository
                            .image_scanning_configuration()
                            .is_some_and(ImageScanningConfiguration::scan_on_push),
                        encryption_type: encryption
                            .map_or("AES256", |e| e.encryption_type().as_str())
                            .to_owned(),
                        kms_key: encryption.and_then(EncryptionConfiguration::kms_key).map(str::to_owned),
                        ..Observed::default()
                    },
                );
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        for (name, repository) in &mut observed {
            if wanted.contains(&name.as_str()) {
                self.fill_details(repository).await?;
            } else if prune {
                repository.holds_images = Some(self.holds_images(name).await?);
            }
        }
        Ok(observed)
    }

    async fn fill_details(&self, repository: &mut Observed) -> Result<(), ApplyError> {
        let name = repository.name.clone();
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_arn(&repository.arn)
            .send()
            .await
            .map_err(|e| self.failure("ListTagsForResource", Some(&name), e))?;
        repository.tags = tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();

        repository.policy = match self.client.get_repository_policy().repository_name(&name).send().await {
            Ok(out) => out.policy_text().map(str::to_owned),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_policy_not_found_exception()) => {
                None
            }
            Err(e) => return Err(self.failure("GetRepositoryPolicy", Some(&name), e)),
        };
        repository.lifecycle_policy =
            match self.client.get_lifecycle_policy().repository_name(&name).send().await {
                Ok(out) => out.lifecycle_policy_text().map(str::to_owned),
                Err(e)
                    if e.as_service_error().is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) =>
                {
                    None
                }
                Err(e) => return Err(self.failure("GetLifecyclePolicy", Some(&name), e)),
            };
        Ok(())
    }

    async fn holds_images(&self, name: &str) -> Result<bool, ApplyError> {
        let page = self
            .client
            .list_images()
            .repository_name(name)
            .max_results(1)
            .send()
            .await
            .map_err(|e| self.failure("ListImages", Some(name), e))?;
        Ok(!page.image_ids().is_empty())
    }

    /// Makes one call; a created repository's URI comes back.
    pub async fn execute(&self, name: &str, arn: &str, step: &Step) -> Result<Option<String>, ApplyError> {
        let client = &self.client;
        match step {
            Step::Create { tag_mutability, scan_on_push, encryption, tags } => {
                let encryption = EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::from(encryption.kind.as_str()))
                    .set_kms_key(encryption.kms_key.clone())
                    .build()
                    .map_err(|e| ApplyError::Internal(e.to_string()))?;
                let tags = sdk_tags(tags)?;
                let out = client
                    .create_repository()
                    .repository_name(name)
                    .image_tag_mutability(ImageTagMutability::from(tag_mutability.as_str()))
                    .image_scanning_configuration(
                        ImageScanningConfiguration::builder().scan_on_push(*scan_on_push).build(),
                    )
                    .encryption_configuration(encryption)
                    .set_tags((!tags.is_empty()).then_some(tags))
                    .send()
                    .await
                    .map_err(|e| self.failure("CreateRepository", Some(name), e))?;
                return Ok(out.repository().and_then(|r| r.repository_uri()).map(str::to_owned));
            }
            Step::SetTagMutability(mutability) => {
                client
                    .put_image_tag_mutability()
                    .repository_name(name)
                    .image_tag_mutability(ImageTagMutability::from(mutability.as_str()))
                    .send()
                    .await
                    .map_err(|e| self.failure("PutImageTagMutability", Some(name), e))?;
            }
            Step::SetScanOnPush(on) => {
                client
                    .put_image_scanning_configuration()
                    .repository_name(name)
                    .image_scanning_configuration(
                        ImageScanningConfiguration::builder().scan_on_push(*on).build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.failure("PutImageScanningConfiguration", Some(name), e))?;
            }
            Step::Tag(tags) => {
                let tags = sdk_tags(tags)?;
                client
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| self.failure("TagResource", Some(name), e))?;
            }
            Step::Untag(keys) => {
                client
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(keys.clone()))
                    .send()
                    .await
                    .map_err(|e| self.failure("UntagResource", Some(name), e))?;
            }
            Step::SetPolicy(policy) => {
                client
                    .set_repository_policy()
                    .repository_name(name)
                    .policy_text(policy)
                    .send()
                    .await
                    .map_err(|e| self.failure("SetRepositoryPolicy", Some(name), e))?;
            }
            Step::DeletePolicy => {
                client
                    .delete_repository_policy()
                    .repository_name(name)
                    .send()
                    .await
                    .map_err(|e| self.failure("DeleteRepositoryPolicy", Some(name), e))?;
            }
            Step::PutLifecyclePolicy(policy) => {
                client
                    .put_lifecycle_policy()
                    .repository_name(name)
                    .lifecycle_policy_text(policy)
                    .send()
                    .await
                    .map_err(|e| self.failure("PutLifecyclePolicy", Some(name), e))?;
            }
            Step::DeleteLifecyclePolicy => {
                client
                    .delete_lifecycle_policy()
                    .repository_name(name)
                    .send()
                    .await
                    .map_err(|e| self.failure("DeleteLifecyclePolicy", Some(name), e))?;
            }
            Step::Delete { force } => {
                client
                    .delete_repository()
                    .repository_name(name)
                    .force(*force)
                    .send()
                    .await
                    .map_err(|e| self.failure("DeleteRepository", Some(name), e))?;
            }
        }
        Ok(None)
    }

    /// A failed call, in words that say what to do.
    fn failure<E, R>(&self, operation: &str, repository: Option<&str>, error: SdkError<E, R>) -> ApplyError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let context = aws_sdk_ecr::error::DisplayErrorContext(&error).to_string();
        let message = match &error {
            SdkError::ServiceError(service) => {
                let e = service.err();
                format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or("no message"))
            }
            _ if context.to_lowercase().contains("credentials") => {
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE and \
                 AWS_PROFILE (for the owner of a local berth: berth-data/bootstrap-credentials, profile berth)"
                    .to_owned()
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "cannot reach the registry at {}: is `berth serve` running there? (pass --endpoint URL or set \
                 AWS_ENDPOINT_URL_ECR)",
                self.endpoint
            ),
            _ => context,
        };
        ApplyError::Registry {
            operation: operation.to_owned(),
            repository: repository.map(str::to_owned),
            message,
        }
    }
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ApplyError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApplyError::Internal(e.to_string()))
}
