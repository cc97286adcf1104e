//! Repositories as the ECR API manages them: create with settings, describe with pagination,
//! delete; and the registry login token the ECR API hands out.

use berth_core::{AccountId, EncryptionType, RepositoryName, RepositorySettings, is_exclusion_filter};
use berth_iam::Action;
use berth_iam::token::IssuedToken;
use berth_meta::{MetaError, NewRepository, Page, Repository};

use crate::access::RequestTags;
use crate::limits::MAX_RESOURCE_TAGS;
use crate::{Caller, Registry, RegistryError, RepoPath};

/// Pagination tokens of DescribeRepositories name the account they page through, so a token
/// cannot be replayed against another account's listing.
const DESCRIBE_PAGE: &str = "describe-repositories";

/// One page of repositories and the token for the next, if any.
#[derive(Debug)]
pub struct RepositoryPage {
    pub repositories: Vec<Repository>,
    pub next_token: Option<String>,
}

/// ECR's rules for tag-mutability exclusion filters.
fn check_settings(settings: &RepositorySettings) -> Result<(), RegistryError> {
    let filters = &settings.mutability_exclusions;
    if settings.tag_mutability.uses_exclusions() {
        if filters.is_empty() || filters.len() > 5 {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: \
                 '{} requires 1 to 5 exclusion filters'",
                settings.tag_mutability
            )));
        }
    } else if !filters.is_empty() {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: \
             'exclusion filters apply only to MUTABLE_WITH_EXCLUSION and IMMUTABLE_WITH_EXCLUSION, not {}'",
            settings.tag_mutability
        )));
    }
    if let Some(bad) = filters.iter().find(|f| !is_exclusion_filter(f)) {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: \
             'filter {bad:?} must satisfy regular expression '^[0-9a-zA-Z._*-]{{1,128}}$''"
        )));
    }
    Ok(())
}

/// Why berth cannot give a repository `encryption`, if it cannot: `KMS_DSSE` (two layers under
/// two data keys) is not built yet, and recording it while sealing one layer would claim an
/// encryption the bytes do not have.
pub(crate) fn unavailable_encryption(encryption: EncryptionType) -> Option<String> {
    match encryption {
        EncryptionType::Aes256 | EncryptionType::Kms => None,
        EncryptionType::KmsDsse => Some(
            "encryptionType KMS_DSSE (dual-layer encryption) is not available in this registry; KMS (a customer \
             key) and AES256 (the registry's own key) are"
                .to_owned(),
        ),
    }
}

/// A key service's refusal of a repository's key, as ECR's `KmsException`.
fn key_refusal(e: berth_kms::KmsError) -> RegistryError {
    RegistryError::Kms { kms_error: e.kms_error().to_owned(), message: e.to_string() }
}

impl Registry {
    /// The settings a repository of `account` is created with: for `KMS`, its key found and
    /// checked usable, and recorded as the key's ARN (as ECR shows it); no key is the account's
    /// default key, made on first use.
    pub(crate) async fn resolve_encryption(
        &self,
        account: &AccountId,
        settings: &RepositorySettings,
    ) -> Result<RepositorySettings, RegistryError> {
        if let Some(message) = unavailable_encryption(settings.encryption) {
            return Err(RegistryError::Kms {
                message,
                kms_error: "UnsupportedOperationException".to_owned(),
            });
        }
        if settings.encryption != EncryptionType::Kms {
            return Ok(settings.clone());
        }
        let key = self
            .keys
            .describe_key(account.as_str(), settings.kms_key.as_deref())
            .await
            .map_err(key_refusal)?;
        if key.state != berth_kms::KeyState::Enabled {
            return Err(RegistryError::Kms {
                message: format!("{} is {}.", key.arn, key.state.as_str().to_lowercase()),
                kms_error: "DisabledException".to_owned(),
            });
        }
        Ok(RepositorySettings { kms_key: Some(key.arn), ..settings.clone() })
    }

    /// A registry token for the access key the caller signed with (GetAuthorizationToken).
    pub async fn authorization_token(&self, caller: &Caller) -> Result<IssuedToken, RegistryError> {
        let account = caller
            .principal
            .account()
            .ok_or_else(|| RegistryError::Unauthenticated("authentication required".to_owned()))?;
        self.check_resource(caller, Action::GetAuthorizationToken, account, "*").await?;
        let key = caller
            .access_key_id
            .as_deref()
            .ok_or_else(|| RegistryError::Unauthenticated("no access key behind this request".to_owned()))?;
        self.issue_token(key).await
    }

    /// Creates a repository with its settings and resource tags.
    pub async fn create_repository(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        settings: &RepositorySettings,
        tags: &[(String, String)],
    ) -> Result<Repository, RegistryError> {
        self.authorize_tagging(
            caller,
            Action::CreateRepository,
            repo,
            RequestTags { set: tags, removed: &[] },
        )
        .await?;
        check_settings(settings)?;
        let settings = &self.resolve_encryption(&repo.account, settings).await?;
        let new = NewRepository { settings, tags, policy: None, lifecycle_policy: None };
        self.meta.create_repository(&repo.account, &repo.name, &new).await.map_err(|e| match e {
            MetaError::AlreadyExists(_) => RegistryError::RepositoryAlreadyExists {
                account: repo.account.to_string(),
                name: repo.name.to_string(),
            },
            MetaError::NotFound(_) => RegistryError::name_unknown(repo),
            other => other.into(),
        })
    }

    /// Describes the named repositories of `account` (every one must exist and be visible), or
    /// pages through all those the caller may describe.
    pub async fn describe_repositories(
        &self,
        caller: &Caller,
        account: &AccountId,
        names: Option<&[RepositoryName]>,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<RepositoryPage, RegistryError> {
        if let Some(names) = names {
            let mut repositories = Vec::with_capacity(names.len());
            for name in names {
                let repo = RepoPath { account: account.clone(), name: name.clone() };
                repositories
                    .push(self.authorized_repository(caller, Action::DescribeRepositories, &repo).await?);
            }
            return Ok(RepositoryPage { repositories, next_token: None });
        }
        let every_repository = format!("arn:aws:ecr:{}:{account}:repository/*", self.settings.region);
        self.check_resource(caller, Action::DescribeRepositories, account, &every_repository).await?;
        let last = match next_token {
            None => None,
            Some(token) => {
                let payload = self.tokens.open_opaque(DESCRIBE_PAGE, token).ok_or_else(|| {
                    RegistryError::InvalidParameter(
                        "Invalid parameter at 'nextToken': the token is not valid".to_owned(),
                    )
                })?;
                match payload.split_once('|') {
                    Some((token_account, last)) if token_account == account.as_str() => Some(last.to_owned()),
                    _ => {
                        return Err(RegistryError::InvalidParameter(
                            "Invalid parameter at 'nextToken': the token belongs to another listing"
                                .to_owned(),
                        ));
                    }
                }
            }
        };
        let listing_last = last.map(|name| format!("{account}/{name}"));
        // One extra row says whether another page follows.
        let mut repositories = self
            .meta
            .list_repositories(
                std::slice::from_ref(account),
                Page { last: listing_last.as_deref(), limit: max_results + 1 },
            )
            .await?;
        let next_token = if repositories.len() > max_results as usize {
            repositories.truncate(max_results as usize);
            repositories
                .last()
                .map(|r| self.tokens.sign_opaque(DESCRIBE_PAGE, &format!("{account}|{}", r.name)))
        } else {
            None
        };
        Ok(RepositoryPage { repositories, next_token })
    }

    /// Deletes a repository; with `force` also the images it holds.
    pub async fn delete_repository(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        force: bool,
    ) -> Result<Repository, RegistryError> {
        let repository = self.authorized_repository(caller, Action::DeleteRepository, repo).await?;
        let uploads = self.meta.delete_repository(repository.id, force).await.map_err(|e| match e {
            MetaError::NotEmpty(_) => RegistryError::RepositoryNotEmpty {
                account: repo.account.to_string(),
                name: repo.name.to_string(),
            },
            other => other.into(),
        })?;
        for id in uploads {
            self.uploads.forget(&id);
            if let Err(e) = self.blobs.abort_upload(&id).await {
                tracing::warn!(upload = id, error = %e, "could not delete staged upload data");
            }
        }
        // Its series end, and its slot under the cap goes to another repository.
        self.activity.forget(&repository);
        Ok(repository)
    }
}

impl Registry {
    /// PutImageTagMutability and PutImageScanningConfiguration: changes what ECR lets change.
    pub async fn update_repository_settings(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        action: Action,
        change: impl FnOnce(&mut RepositorySettings),
    ) -> Result<RepositorySettings, RegistryError> {
        let repository = self.authorized_repository(caller, action, repo).await?;
        let mut settings = repository.settings.clone();
        change(&mut settings);
        check_settings(&settings)?;
        self.meta.update_repository_settings(repository.id, &settings).await?;
        Ok(settings)
    }

    /// The repository an ARN names: `arn:aws:ecr:<region>:<account>:repository/<name>`.
    pub fn repository_from_arn(&self, arn: &str) -> Result<RepoPath, RegistryError> {
        let invalid = || {
            RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'resourceArn': {arn:?} is not a repository ARN"
            ))
        };
        let rest = arn.strip_prefix("arn:aws:ecr:").ok_or_else(invalid)?;
        let (region, rest) = rest.split_once(':').ok_or_else(invalid)?;
        let (account, name) = rest.split_once(":repository/").ok_or_else(invalid)?;
        if region != self.settings.region {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'resourceArn': this registry serves region {}, not {region}",
                self.settings.region
            )));
        }
        Ok(RepoPath {
            account: account.parse().map_err(|_| invalid())?,
            name: name.parse().map_err(|_| invalid())?,
        })
    }

    pub async fn repository_tags(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<Vec<(String, String)>, RegistryError> {
        let repository = self.authorized_repository(caller, Action::ListTagsForResource, repo).await?;
        Ok(self.meta.repository_tags(repository.id).await?)
    }

    pub async fn tag_repository(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        tags: &[(String, String)],
    ) -> Result<(), RegistryError> {
        let repository = self
            .authorize_tagging(caller, Action::TagResource, repo, RequestTags { set: tags, removed: &[] })
            .await?
            .ok_or_else(|| RegistryError::name_unknown(repo))?;
        self.meta.tag_repository(repository.id, tags, MAX_RESOURCE_TAGS).await.map_err(|e| match e {
            MetaError::LimitExceeded(m) => RegistryError::TooManyTags(m),
            other => other.into(),
        })
    }

    pub async fn untag_repository(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        keys: &[String],
    ) -> Result<(), RegistryError> {
        let repository = self
            .authorize_tagging(caller, Action::UntagResource, repo, RequestTags { set: &[], removed: keys })
            .await?
            .ok_or_else(|| RegistryError::name_unknown(repo))?;
        Ok(self.meta.untag_repository(repository.id, keys).await?)
    }
}

impl Registry {
    /// DescribeRegistry: whether the caller may describe its registry.
    pub async fn describe_registry(&self, caller: &Caller, account: &AccountId) -> Result<(), RegistryError> {
        self.check_resource(caller, Action::DescribeRegistry, account, "*").await
    }
}
