//! Lifecycle policies: validated with ECR's rules before they are stored, one per repository.

use berth_iam::Action;
use berth_meta::{Millis, StoredLifecyclePolicy};

use crate::{Caller, Registry, RegistryError, RepoPath};

/// A repository's lifecycle policy, as GetLifecyclePolicy shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicyView {
    pub text: String,
    /// When the policy last ran over the repository; `None` until it has.
    pub last_evaluated_at: Option<Millis>,
}

impl From<StoredLifecyclePolicy> for LifecyclePolicyView {
    fn from(stored: StoredLifecyclePolicy) -> Self {
        Self { text: stored.text, last_evaluated_at: stored.last_evaluated_at }
    }
}

/// Parses a policy, answering a refusal as ECR does: `InvalidParameterException` naming
/// `LifecyclePolicyText`, with what is wrong.
pub(crate) fn validate(text: &str) -> Result<berth_lifecycle::LifecyclePolicy, RegistryError> {
    berth_lifecycle::parse(text).map_err(|e| {
        RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{e}'"
        ))
    })
}

fn policy_not_found(repo: &RepoPath) -> RegistryError {
    RegistryError::LifecyclePolicyNotFound(format!(
        "Lifecycle policy does not exist for the repository with name '{}' in the registry with id '{}'",
        repo.name, repo.account
    ))
}

impl Registry {
    /// PutLifecyclePolicy: replaces the repository's policy once it validates.
    pub async fn put_lifecycle_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        text: &str,
    ) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::PutLifecyclePolicy, repo).await?;
        validate(text)?;
        self.meta.set_lifecycle_policy(repository.id, Some(text)).await?;
        Ok(())
    }

    pub async fn get_lifecycle_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<LifecyclePolicyView, RegistryError> {
        let repository = self.authorized_repository(caller, Action::GetLifecyclePolicy, repo).await?;
        let stored = self.meta.lifecycle_policy(repository.id).await?;
        stored.map(Into::into).ok_or_else(|| policy_not_found(repo))
    }

    /// DeleteLifecyclePolicy: removes the policy and returns what it was.
    pub async fn delete_lifecycle_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<LifecyclePolicyView, RegistryError> {
        let repository = self.authorized_repository(caller, Action::DeleteLifecyclePolicy, repo).await?;
        let previous = self.meta.set_lifecycle_policy(repository.id, None).await?;
        previous.map(Into::into).ok_or_else(|| policy_not_found(repo))
    }
}
