//! Which repositories scan on push: their own `scanOnPush`, or a rule of the registry's scanning
//! configuration (PutRegistryScanningConfiguration) whose filter names them.

use berth_core::{AccountId, RepositoryName};
use berth_iam::Action;
use berth_meta::Repository;

use crate::{Caller, Registry, RegistryError, RepoPath};

/// Rules per configuration, filters per rule, and a filter's length (ECR's model).
const MAX_RULES: usize = 2;
const MAX_FILTERS: usize = 100;
const MAX_FILTER_CHARS: usize = 255;

/// A registry's scanning configuration as ECR shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryScanning {
    /// `BASIC`: berth's own scanner.
    pub scan_type: String,
    pub rules: Vec<ScanningRule>,
}

impl Default for RegistryScanning {
    fn default() -> Self {
        Self { scan_type: "BASIC".to_owned(), rules: Vec::new() }
    }
}

/// One rule: a frequency for the repositories one of its `WILDCARD` filters names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanningRule {
    pub scan_frequency: String,
    pub repository_filters: Vec<String>,
}

/// How a repository is scanned, as BatchGetRepositoryScanningConfiguration reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryScanning {
    pub repository: RepoPath,
    pub scan_on_push: bool,
    /// `SCAN_ON_PUSH` or `MANUAL`.
    pub frequency: String,
    /// The registry filters that gave that frequency.
    pub applied_filters: Vec<String>,
}

/// Whether `filter` names the repository: text without `*` is found anywhere in the name; with
/// `*`, the whole name must match, `*` standing for any run of characters.
pub fn filter_matches(filter: &str, name: &str) -> bool {
    if !filter.contains('*') {
        return name.contains(filter);
    }
    berth_core::glob_matches(filter, name, false)
}

/// ECR answers every refusal of a scanning configuration with a ValidationException.
fn invalid(reason: String) -> RegistryError {
    RegistryError::Validation { member: "rules".to_owned(), rule: reason }
}

impl RegistryScanning {
    /// Holds a configuration to what berth's scanner can do and ECR's model allows.
    pub fn validate(&self) -> Result<(), RegistryError> {
        match self.scan_type.as_str() {
            "BASIC" => {}
            "ENHANCED" => {
                return Err(RegistryError::Validation {
                    member: "scanType".to_owned(),
                    rule:
                        "berth scans with its own scanner (BASIC); ENHANCED scanning needs Amazon Inspector"
                            .to_owned(),
                });
            }
            other => {
                return Err(RegistryError::Validation {
                    member: "scanType".to_owned(),
                    rule: format!("{other:?} must be BASIC or ENHANCED"),
                });
            }
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(format!("at most {MAX_RULES} rules")));
        }
        for rule in &self.rules {
            match rule.scan_frequency.as_str() {
                "SCAN_ON_PUSH" | "MANUAL" => {}
                "CONTINUOUS_SCAN" => {
                    return Err(invalid(
                        "CONTINUOUS_SCAN needs ENHANCED scanning; BASIC scans on push".to_owned(),
                    ));
                }
                other => {
                    return Err(invalid(format!(
                        "scanFrequency {other:?} is not one of SCAN_ON_PUSH, MANUAL"
                    )));
                }
            }
            if rule.repository_filters.is_empty() || rule.repository_filters.len() > MAX_FILTERS {
                return Err(invalid(format!("a rule has 1 to {MAX_FILTERS} repository filters")));
            }
            for filter in &rule.repository_filters {
                let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/*".contains(c);
                if filter.is_empty()
                    || filter.chars().count() > MAX_FILTER_CHARS
                    || !filter.chars().all(allowed)
                {
                    return Err(invalid(format!(
                        "the repository filter {filter:?} must be 1 to {MAX_FILTER_CHARS} of a-z, 0-9, '.', '_', '-', '/' and '*'"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The first rule that names the repository, with the filters that did.
    fn rule_for(&self, name: &RepositoryName) -> Option<(&ScanningRule, Vec<String>)> {
        self.rules.iter().find_map(|rule| {
            let matched: Vec<String> = rule
                .repository_filters
                .iter()
                .filter(|f| filter_matches(f, name.as_str()))
                .cloned()
                .collect();
            (!matched.is_empty()).then_some((rule, matched))
        })
    }
}

impl Registry {
    async fn scanning_of(&self, account: &AccountId) -> Result<RegistryScanning, RegistryError> {
        match self.meta.registry_scanning(account).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                RegistryError::Internal(format!("stored scanning configuration is malformed: {e}"))
            }),
            None => Ok(RegistryScanning::default()),
        }
    }

    /// PutRegistryScanningConfiguration.
    pub async fn put_registry_scanning(
        &self,
        caller: &Caller,
        account: &AccountId,
        configuration: RegistryScanning,
    ) -> Result<RegistryScanning, RegistryError> {
        self.check_resource(caller, Action::PutRegistryScanningConfiguration, account, "*").await?;
        configuration.validate()?;
        let json = serde_json::to_string(&configuration)
            .map_err(|e| RegistryError::Internal(format!("serializing a scanning configuration: {e}")))?;
        self.meta.set_registry_scanning(account, &json).await?;
        Ok(configuration)
    }

    /// GetRegistryScanningConfiguration.
    pub async fn registry_scanning(
        &self,
        caller: &Caller,
        account: &AccountId,
    ) -> Result<RegistryScanning, RegistryError> {
        self.check_resource(caller, Action::GetRegistryScanningConfiguration, account, "*").await?;
        self.scanning_of(account).await
    }

    /// BatchGetRepositoryScanningConfiguration: each repository's scanning, or that it is not there.
    pub async fn repository_scanning(
        &self,
        caller: &Caller,
        repos: &[RepoPath],
    ) -> Result<(Vec<RepositoryScanning>, Vec<RepoPath>), RegistryError> {
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for repo in repos {
            let repository = match self
                .authorized_repository(caller, Action::BatchGetRepositoryScanningConfiguration, repo)
                .await
            {
                Ok(repository) => repository,
                Err(RegistryError::NameUnknown { .. }) => {
                    missing.push(repo.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (frequency, applied_filters) = self.frequency_of(&repository).await?;
            found.push(RepositoryScanning {
                repository: repo.clone(),
                scan_on_push: repository.settings.scan_on_push,
                frequency,
                applied_filters,
            });
        }
        Ok((found, missing))
    }

    /// How a repository is scanned, and the registry filters that say so: a rule that names it
    /// decides; else its own scanOnPush.
    async fn frequency_of(&self, repository: &Repository) -> Result<(String, Vec<String>), RegistryError> {
        let configuration = self.scanning_of(&repository.account_id).await?;
        Ok(match configuration.rule_for(&repository.name) {
            Some((rule, filters)) => (rule.scan_frequency.clone(), filters),
            None if repository.settings.scan_on_push => ("SCAN_ON_PUSH".to_owned(), Vec::new()),
            None => ("MANUAL".to_owned(), Vec::new()),
        })
    }

    /// Whether a push into the repository starts a scan, as BatchGetRepositoryScanningConfiguration
    /// reports it.
    pub(crate) async fn scans_on_push(&self, repository: &Repository) -> Result<bool, RegistryError> {
        Ok(self.frequency_of(repository).await?.0 == "SCAN_ON_PUSH")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_ecrs_user_guide_says() {
        // Without `*`: found anywhere in the name.
        assert!(filter_matches("prod", "repo-prod-repo"));
        assert!(!filter_matches("prod", "repo-dev"));
        // With `*`: the whole name, `*` for any run of characters, none included.
        for name in ["prod", "prod-repo", "prodrepo"] {
            assert!(filter_matches("prod*", name), "{name}");
        }
        assert!(!filter_matches("prod*", "repo-prod"));
        assert!(filter_matches("prod*repo", "prod-repo") && filter_matches("prod*repo", "prodrepo"));
        assert!(!filter_matches("prod*repo", "prod-repo-x"));
    }

    #[test]
    fn configurations_berth_cannot_honour_are_refused() {
        let rule = |frequency: &str, filters: &[&str]| ScanningRule {
            scan_frequency: frequency.to_owned(),
            repository_filters: filters.iter().map(|f| (*f).to_owned()).collect(),
        };
        let with = |scan_type: &str, rules: Vec<ScanningRule>| RegistryScanning {
            scan_type: scan_type.to_owned(),
            rules,
        };
        assert!(
            with("BASIC", vec![rule("SCAN_ON_PUSH", &["team-a/*"]), rule("MANUAL", &["*"])])
                .validate()
                .is_ok()
        );
        for refused in [
            with("ENHANCED", vec![]),
            with("BASIC", vec![rule("CONTINUOUS_SCAN", &["*"])]),
            with("BASIC", vec![rule("SCAN_ON_PUSH", &[])]),
            with("BASIC", vec![rule("SCAN_ON_PUSH", &["Upper"])]),
            with("BASIC", vec![rule("SCAN_ON_PUSH", &["a"]), rule("MANUAL", &["b"]), rule("MANUAL", &["c"])]),
        ] {
            assert!(matches!(refused.validate(), Err(RegistryError::Validation { .. })), "{refused:?}");
        }
    }
}
