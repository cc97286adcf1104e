//! Repository and registry policies: validated when set, stored as given, evaluated by the one
//! authorization function on every request.

use berth_core::AccountId;
use berth_iam::policy::{self, PolicyKind};
use berth_iam::{Action, Decision};

use crate::access::{Request, RequestTags, StoredPolicies};
use crate::{Caller, Registry, RegistryError, RepoPath};

/// ECR's answer to a policy that does not validate, with what was wrong.
pub(crate) fn invalid_policy(kind: &str, error: &policy::PolicyError) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid {kind} policy provided': {error}"
    ))
}

impl Registry {
    /// SetRepositoryPolicy. A policy that would stop the caller itself from setting another is
    /// refused unless `force`, as ECR does; the decision is the evaluator's, with the caller's
    /// own request context. An account's root can always change or delete its policies, so no
    /// policy can lock the owner out for good.
    pub async fn set_repository_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        text: &str,
        force: bool,
    ) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::SetRepositoryPolicy, repo).await?;
        policy::validate(text, PolicyKind::Resource).map_err(|e| invalid_policy("repository", &e))?;
        if !force {
            let arn = berth_core::repository_arn(&self.settings.region, &repo.account, &repo.name);
            let registry_policy = self.meta.registry_policy(&repo.account).await?;
            let request = Request {
                action: Action::SetRepositoryPolicy,
                account: &repo.account,
                arn: &arn,
                tags: RequestTags::default(),
            };
            let with_new = StoredPolicies { repository: Some(text), registry: registry_policy.as_deref() };
            if self.evaluate(caller, &request, with_new, Some(&repository)).await? != Decision::Allow {
                return Err(RegistryError::InvalidParameter(
                    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'the policy would prevent you \
                     from setting another policy; pass force to set it anyway'"
                        .to_owned(),
                ));
            }
        }
        self.meta.set_repository_policy(repository.id, Some(text)).await?;
        Ok(())
    }

    pub async fn get_repository_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<String, RegistryError> {
        self.authorized_repository(caller, Action::GetRepositoryPolicy, repo).await?;
        self.meta.repository_policy(&repo.account, &repo.name).await?.ok_or_else(|| policy_not_found(repo))
    }

    pub async fn delete_repository_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<String, RegistryError> {
        let repository = self.authorized_repository(caller, Action::DeleteRepositoryPolicy, repo).await?;
        self.meta.set_repository_policy(repository.id, None).await?.ok_or_else(|| policy_not_found(repo))
    }

    pub async fn put_registry_policy(
        &self,
        caller: &Caller,
        account: &AccountId,
        text: &str,
    ) -> Result<(), RegistryError> {
        self.check_resource(caller, Action::PutRegistryPolicy, account, "*").await?;
        policy::validate(text, PolicyKind::Resource).map_err(|e| invalid_policy("registry", &e))?;
        self.meta.set_registry_policy(account, Some(text)).await?;
        Ok(())
    }

    pub async fn get_registry_policy(
        &self,
        caller: &Caller,
        account: &AccountId,
    ) -> Result<String, RegistryError> {
        self.check_resource(caller, Action::GetRegistryPolicy, account, "*").await?;
        self.meta.registry_policy(account).await?.ok_or_else(|| registry_policy_not_found(account))
    }

    pub async fn delete_registry_policy(
        &self,
        caller: &Caller,
        account: &AccountId,
    ) -> Result<String, RegistryError> {
        self.check_resource(caller, Action::DeleteRegistryPolicy, account, "*").await?;
        self.meta.set_registry_policy(account, None).await?.ok_or_else(|| registry_policy_not_found(account))
    }
}

fn policy_not_found(repo: &RepoPath) -> RegistryError {
    RegistryError::RepositoryPolicyNotFound(format!(
        "Repository policy does not exist for the repository with name '{}' in the registry with id '{}'",
        repo.name, repo.account
    ))
}

fn registry_policy_not_found(account: &AccountId) -> RegistryError {
    RegistryError::RegistryPolicyNotFound(format!(
        "Registry policy does not exist in the registry with id '{account}'"
    ))
}
