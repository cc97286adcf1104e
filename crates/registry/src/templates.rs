//! Repository creation templates: settings that repositories created on push receive, chosen
//! by the longest matching name prefix (`ROOT` matches every name).

use berth_core::AccountId;
use berth_iam::Action;
use berth_iam::policy::{self, PolicyKind};
use berth_meta::{CreationTemplate, MetaError, now_millis};

use crate::limits::MAX_CREATION_TEMPLATES;
use crate::{Caller, Registry, RegistryError, RepoPath};

/// The prefix that matches every repository.
pub(crate) const ROOT_PREFIX: &str = "ROOT";
/// What a template can be applied for.
pub(crate) const APPLIED_FOR: [&str; 3] = ["REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH"];
const TEMPLATES_PAGE: &str = "describe-creation-templates";

/// Whether `prefix` covers the repository `name`: `ROOT`, the name itself, or a namespace of it.
fn covers(prefix: &str, name: &str) -> bool {
    if prefix == ROOT_PREFIX {
        return true;
    }
    let namespace = prefix.trim_end_matches('/');
    name == namespace || name.strip_prefix(namespace).is_some_and(|rest| rest.starts_with('/'))
}

/// A broken input constraint of the template operations, which are among ECR's newer
/// operations: they answer with `ValidationException`.
pub(crate) fn validation(member: &str, rule: &str) -> RegistryError {
    RegistryError::Validation { member: member.to_owned(), rule: rule.to_owned() }
}

fn check_template(template: &CreationTemplate) -> Result<(), RegistryError> {
    let prefix = &template.prefix;
    let namespace = prefix.trim_end_matches('/');
    let name_like = namespace.parse::<berth_core::RepositoryName>().is_ok()
        || (namespace.len() == 1 && namespace.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if prefix != ROOT_PREFIX && (prefix.len() > 256 || !name_like) {
        return Err(validation(
            "prefix",
            "must be ROOT or a repository name prefix of 1 to 256 characters, optionally ending in /",
        ));
    }
    let applied_for = &template.applied_for;
    if applied_for.is_empty()
        || applied_for.len() > APPLIED_FOR.len()
        || applied_for.iter().any(|a| !APPLIED_FOR.contains(&a.as_str()))
    {
        return Err(validation(
            "appliedFor",
            &format!("must have 1 to 3 members, each one of [{}]", APPLIED_FOR.join(", ")),
        ));
    }
    if template.description.as_ref().is_some_and(|d| d.chars().count() > 256) {
        return Err(validation("description", "must have length less than or equal to 256"));
    }
    if let Some(message) = crate::repositories::unavailable_encryption(template.settings.encryption) {
        return Err(validation(
            "encryptionConfiguration.encryptionType",
            &format!("must be AES256 or KMS: {message}"),
        ));
    }
    for (name, text, max) in [
        ("repositoryPolicy", &template.repository_policy, 10_240),
        ("lifecyclePolicy", &template.lifecycle_policy, 30_720),
    ] {
        if text.as_ref().is_some_and(|t| t.chars().count() > max) {
            return Err(validation(name, &format!("must have length less than or equal to {max}")));
        }
    }
    // The policy every repository the template creates will carry: held to SetRepositoryPolicy's rules.
    if let Some(text) = &template.repository_policy {
        policy::validate(text, PolicyKind::Resource).map_err(|e| {
            validation("repositoryPolicy", &format!("must be a valid repository policy: {e}"))
        })?;
    }
    // Likewise the lifecycle policy, held to PutLifecyclePolicy's.
    if let Some(text) = &template.lifecycle_policy {
        berth_lifecycle::parse(text)
            .map_err(|e| validation("lifecyclePolicy", &format!("must be a valid lifecycle policy: {e}")))?;
    }
    Ok(())
}

impl Registry {
    async fn check_templates(
        &self,
        caller: &Caller,
        action: Action,
        account: &AccountId,
    ) -> Result<(), RegistryError> {
        self.check_resource(caller, action, account, "*").await
    }

    /// The template that applies to a repository created on push, if any.
    pub(crate) async fn template_for_push(
        &self,
        repo: &RepoPath,
    ) -> Result<Option<CreationTemplate>, RegistryError> {
        let templates = self.meta.creation_templates(&repo.account).await?;
        Ok(templates
            .into_iter()
            .filter(|t| {
                t.applied_for.iter().any(|a| a == "CREATE_ON_PUSH") && covers(&t.prefix, repo.name.as_str())
            })
            // The most specific prefix wins; ROOT only when nothing else matches.
            .max_by_key(
                |t| if t.prefix == ROOT_PREFIX { 0 } else { t.prefix.trim_end_matches('/').len() + 1 },
            ))
    }

    pub async fn create_creation_template(
        &self,
        caller: &Caller,
        account: &AccountId,
        mut template: CreationTemplate,
    ) -> Result<CreationTemplate, RegistryError> {
        self.check_templates(caller, Action::CreateRepositoryCreationTemplate, account).await?;
        check_template(&template)?;
        if self.meta.creation_templates(account).await?.len() >= MAX_CREATION_TEMPLATES {
            return Err(RegistryError::LimitExceeded(format!(
                "The registry with id '{account}' already has {MAX_CREATION_TEMPLATES} repository creation \
                 templates, the most a registry can have"
            )));
        }
        let now = now_millis();
        (template.created_at, template.updated_at) = (now, now);
        self.meta.put_creation_template(account, &template, false).await.map_err(|e| match e {
            MetaError::AlreadyExists(_) => RegistryError::TemplateAlreadyExists(format!(
                "The repository creation template with prefix '{}' already exists",
                template.prefix
            )),
            other => other.into(),
        })?;
        Ok(template)
    }

    /// Replaces a template's settings with `change` applied to the stored one.
    pub async fn update_creation_template(
        &self,
        caller: &Caller,
        account: &AccountId,
        prefix: &str,
        change: impl FnOnce(&mut CreationTemplate),
    ) -> Result<CreationTemplate, RegistryError> {
        self.check_templates(caller, Action::UpdateRepositoryCreationTemplate, account).await?;
        let mut template = self.find_template(account, prefix).await?;
        change(&mut template);
        check_template(&template)?;
        template.updated_at = now_millis();
        self.meta.put_creation_template(account, &template, true).await?;
        Ok(template)
    }

    /// Templates ordered by prefix, `max` at a time; the token names the last prefix returned.
    pub async fn describe_creation_templates(
        &self,
        caller: &Caller,
        account: &AccountId,
        prefixes: Option<&[String]>,
        next_token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<CreationTemplate>, Option<String>), RegistryError> {
        self.check_templates(caller, Action::DescribeRepositoryCreationTemplates, account).await?;
        let mut templates = self.meta.creation_templates(account).await?;
        if let Some(prefixes) = prefixes {
            templates.retain(|t| prefixes.contains(&t.prefix));
        }
        if let Some(token) = next_token {
            let payload = self.tokens.open_opaque(TEMPLATES_PAGE, token).ok_or_else(|| {
                RegistryError::InvalidParameter(
                    "Invalid parameter at 'nextToken': the token is not valid".to_owned(),
                )
            })?;
            let (for_account, last) = payload.split_once('|').unwrap_or(("", ""));
            if for_account != account.as_str() {
                return Err(RegistryError::InvalidParameter(
                    "Invalid parameter at 'nextToken': the token belongs to another listing".to_owned(),
                ));
            }
            templates.retain(|t| t.prefix.as_str() > last);
        }
        let next = if templates.len() > max {
            templates.truncate(max);
            templates
                .last()
                .map(|t| self.tokens.sign_opaque(TEMPLATES_PAGE, &format!("{account}|{}", t.prefix)))
        } else {
            None
        };
        Ok((templates, next))
    }

    pub async fn delete_creation_template(
        &self,
        caller: &Caller,
        account: &AccountId,
        prefix: &str,
    ) -> Result<CreationTemplate, RegistryError> {
        self.check_templates(caller, Action::DeleteRepositoryCreationTemplate, account).await?;
        let template = self.find_template(account, prefix).await?;
        self.meta.delete_creation_template(account, prefix).await?;
        Ok(template)
    }

    async fn find_template(
        &self,
        account: &AccountId,
        prefix: &str,
    ) -> Result<CreationTemplate, RegistryError> {
        self.meta.creation_templates(account).await?.into_iter().find(|t| t.prefix == prefix).ok_or_else(
            || {
                RegistryError::TemplateNotFound(format!(
                    "The repository creation template with prefix '{prefix}' does not exist"
                ))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn prefixes_cover_namespaces_not_substrings() {
        assert!(covers("ROOT", "anything/at/all"));
        assert!(covers("mlops/", "mlops/python-base"));
        assert!(covers("mlops", "mlops/python-base"));
        assert!(covers("mlops", "mlops"));
        assert!(!covers("mlops", "mlopsx/base"));
        assert!(!covers("mlops/", "ml/base"));
        assert!(covers("team/a", "team/a/b"));
    }
}
