//! Authentication (registry tokens), the authorization gate every operation passes, and the
//! first-start bootstrap of the owner account.

use std::time::{Duration, SystemTime};

use berth_core::{AccountId, repository_arn};
use berth_iam::policy::{self, PolicyKind};
use berth_iam::sigv4::{self, SigV4Error, SignedRequest};
use berth_iam::token::{IssuedToken, TokenError, TokenSigner};
use berth_iam::{Action, AuthzRequest, Decision, Policies, Principal, authorize};
use berth_kms::{DataKey, KeyProvider};
use berth_meta::{AccessKey, Account, MetaError, MetaStore, Repository, now_millis};

use crate::{Caller, Registry, RegistryError, RepoPath};

const TOKEN_KEY_SECRET: &str = "login-token-signing-key";

/// The policy texts a decision weighs besides the caller's own.
struct StoredPolicies<'a> {
    repository: Option<&'a str>,
    registry: Option<&'a str>,
}

fn secret_context(access_key_id: &str) -> String {
    format!("access-key:{access_key_id}")
}

/// Loads the token signing key, creating it on first start. Concurrent first starts agree on
/// one key because the store keeps whichever was written first.
pub(crate) async fn token_signer(
    meta: &dyn MetaStore,
    kms: &dyn KeyProvider,
) -> Result<TokenSigner, RegistryError> {
    let fresh = DataKey::generate()?;
    let sealed = kms.seal(fresh.as_bytes(), TOKEN_KEY_SECRET).await?;
    let stored = meta.put_secret_once(TOKEN_KEY_SECRET, &sealed).await?;
    let key = kms.open(&stored, TOKEN_KEY_SECRET).await?;
    Ok(TokenSigner::new(&key))
}

/// Credentials of the owner's root key, returned once when bootstrap creates them.
pub struct BootstrapCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for BootstrapCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Creates the owner account and its root access key unless the account exists. `fixed`
    /// supplies the key instead of a random one. Returns the credentials it created.
    pub async fn bootstrap(
        &self,
        owner: &AccountId,
        fixed: Option<BootstrapCredentials>,
    ) -> Result<Option<BootstrapCredentials>, RegistryError> {
        if self.meta.get_account(owner).await?.is_some() {
            return Ok(None);
        }
        let account = Account { id: owner.clone(), name: "owner".to_owned(), created_at: now_millis() };
        match self.meta.create_account(&account).await {
            Ok(()) => {}
            // Another node bootstrapped at the same moment.
            Err(MetaError::AlreadyExists(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let credentials = match fixed {
            Some(credentials) => credentials,
            None => {
                let pair = berth_iam::generate_access_key()
                    .ok_or_else(|| RegistryError::Internal("random source failed".to_owned()))?;
                BootstrapCredentials {
                    access_key_id: pair.access_key_id,
                    secret_access_key: pair.secret_access_key,
                }
            }
        };
        self.store_access_key(owner, None, &credentials.access_key_id, &credentials.secret_access_key)
            .await?;
        Ok(Some(credentials))
    }

    pub(crate) async fn store_access_key(
        &self,
        account: &AccountId,
        user_name: Option<String>,
        access_key_id: &str,
        secret: &str,
    ) -> Result<(), RegistryError> {
        if !berth_iam::is_access_key_id(access_key_id) {
            return Err(RegistryError::Unsupported(format!(
                "access key id {access_key_id:?} must be 16 to 128 upper-case letters and digits"
            )));
        }
        let sealed_secret = self.kms.seal(secret.as_bytes(), &secret_context(access_key_id)).await?;
        let key = AccessKey {
            access_key_id: access_key_id.to_owned(),
            account_id: account.clone(),
            user_name,
            sealed_secret,
            active: true,
            created_at: now_millis(),
        };
        self.meta.create_access_key(&key).await?;
        Ok(())
    }

    /// Issues a registry token for an active access key.
    pub async fn issue_token(&self, access_key_id: &str) -> Result<IssuedToken, RegistryError> {
        self.issue_token_for(access_key_id, berth_iam::token::TOKEN_LIFETIME).await
    }

    /// Issues a registry token that lives `lifetime` (at most the standard 12 hours).
    pub async fn issue_token_for(
        &self,
        access_key_id: &str,
        lifetime: Duration,
    ) -> Result<IssuedToken, RegistryError> {
        match self.meta.get_access_key(access_key_id).await? {
            Some(key) if key.active => Ok(self.tokens.issue_for(access_key_id, SystemTime::now(), lifetime)),
            _ => Err(RegistryError::Unauthenticated(format!(
                "The access key {access_key_id} does not exist or is disabled"
            ))),
        }
    }

    /// Checks a SigV4-signed ECR API request and returns who signed it.
    pub async fn authenticate_sigv4(&self, request: &SignedRequest<'_>) -> Result<Caller, RegistryError> {
        let header = request
            .headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.as_str())
            .ok_or(RegistryError::Signature(SigV4Error::Missing))?;
        let auth = sigv4::parse_authorization(header).map_err(RegistryError::Signature)?;
        let key = self
            .meta
            .get_access_key(&auth.access_key_id)
            .await?
            .filter(|k| k.active)
            .ok_or(RegistryError::Signature(SigV4Error::UnknownKey))?;
        let secret = self.kms.open(&key.sealed_secret, &secret_context(&key.access_key_id)).await?;
        let secret = String::from_utf8(secret)
            .map_err(|_| RegistryError::Internal("stored secret is not text".to_owned()))?;
        sigv4::verify(&auth, request, &secret, "ecr", SystemTime::now()).map_err(RegistryError::Signature)?;
        let principal = self.principal_of(&key).await?;
        Ok(Caller::new(principal, Some(key.access_key_id)))
    }

    /// Checks HTTP Basic credentials: user `AWS` and a registry token as the password.
    pub async fn authenticate_basic(&self, user: &str, password: &str) -> Result<Caller, RegistryError> {
        let unauthenticated = |m: &str| RegistryError::Unauthenticated(m.to_owned());
        if user != berth_iam::token::TOKEN_USER {
            return Err(unauthenticated("the user name must be AWS, with a registry token as the password"));
        }
        let claims = self.tokens.verify(password, SystemTime::now()).map_err(|e| match e {
            TokenError::Expired => unauthenticated(&e.to_string()),
            TokenError::Malformed | TokenError::BadSignature => {
                unauthenticated("the password is not a valid registry token")
            }
        })?;
        // A token dies with its key: disabled or deleted keys end every token issued to them.
        self.caller_for_key(&claims.access_key_id)
            .await
            .map_err(|_| unauthenticated("the access key behind this token is disabled or deleted"))
    }

    /// The caller an active access key stands for.
    pub(crate) async fn caller_for_key(&self, access_key_id: &str) -> Result<Caller, RegistryError> {
        let key = self.meta.get_access_key(access_key_id).await?.filter(|k| k.active).ok_or_else(|| {
            RegistryError::Unauthenticated(format!("access key {access_key_id} is not active"))
        })?;
        let principal = self.principal_of(&key).await?;
        Ok(Caller::new(principal, Some(key.access_key_id)))
    }

    /// Who an access key stands for, the same on both surfaces: its account's root, or a user
    /// whose ARN carries its path (`arn:aws:iam::<account>:user/<path><name>`).
    async fn principal_of(&self, key: &AccessKey) -> Result<Principal, RegistryError> {
        let account = key.account_id.clone();
        let Some(name) = &key.user_name else { return Ok(Principal::Root { account }) };
        let path = self.meta.user_path(&account, name).await?.unwrap_or_else(|| "/".to_owned());
        Ok(Principal::User { account, name: format!("{}{name}", path.trim_start_matches('/')) })
    }

    /// Asks the one evaluator whether `caller` may perform `action` on `repo`, under the
    /// repository's policy and its account's registry policy.
    pub(crate) async fn check(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepoPath,
    ) -> Result<(), RegistryError> {
        self.authorize_on(caller, action, repo).await.map(|_| ())
    }

    /// Authorizes `action` on `repo` and returns the repository, if it exists, from the same
    /// read that fetched the policies.
    pub(crate) async fn authorize_on(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepoPath,
    ) -> Result<Option<Repository>, RegistryError> {
        let facts = self.meta.access_facts(&repo.account, &repo.name).await?;
        let arn = repository_arn(&self.settings.region, &repo.account, &repo.name);
        let policies = StoredPolicies {
            repository: facts.repository_policy.as_deref(),
            registry: facts.registry_policy.as_deref(),
        };
        self.decide(caller, action, &repo.account, &arn, policies, facts.repository.as_ref()).await?;
        Ok(facts.repository)
    }

    /// Asks the one evaluator about a resource of `account` that is not one repository (a
    /// registry-wide action, or every repository at once), under the registry policy.
    pub(crate) async fn check_resource(
        &self,
        caller: &Caller,
        action: Action,
        account: &AccountId,
        arn: &str,
    ) -> Result<(), RegistryError> {
        let registry_policy = self.meta.registry_policy(account).await?;
        let policies = StoredPolicies { repository: None, registry: registry_policy.as_deref() };
        self.decide(caller, action, account, arn, policies, None).await
    }

    async fn decide(
        &self,
        caller: &Caller,
        action: Action,
        account: &AccountId,
        arn: &str,
        stored: StoredPolicies<'_>,
        repository: Option<&Repository>,
    ) -> Result<(), RegistryError> {
        // Stored policies were validated when set; one that no longer parses grants nothing.
        let parse = |text: &str| match policy::parse(text, PolicyKind::Resource) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(resource = arn, error = %e, "a stored policy does not parse; ignoring it");
                None
            }
        };
        let resource = stored.repository.and_then(parse);
        let registry = stored.registry.and_then(parse);
        let mut context = caller.context.clone();
        if let (Some(repository), true) = (repository, resource.is_some() || registry.is_some()) {
            // Resource tags are read only when a policy could ask about them.
            for (key, value) in self.meta.repository_tags(repository.id).await? {
                for prefix in ["aws:resourcetag/", "ecr:resourcetag/"] {
                    context.insert(format!("{prefix}{}", key.to_ascii_lowercase()), vec![value.clone()]);
                }
            }
        }
        let identity = self.identity_policies(&caller.principal).await?;
        let request = AuthzRequest {
            principal: &caller.principal,
            action,
            resource_account: account,
            resource_arn: arn,
            context: &context,
        };
        let policies =
            Policies { identity: &identity, resource: resource.as_ref(), registry: registry.as_ref() };
        match authorize(&request, &policies) {
            Decision::Allow => Ok(()),
            // Without credentials the right answer is a challenge, not a refusal.
            Decision::Deny(_) if caller.principal == Principal::Anonymous => {
                Err(RegistryError::Unauthenticated("authentication required".to_owned()))
            }
            Decision::Deny(message) => Err(RegistryError::Denied(message)),
        }
    }

    /// The identity policies attached to a user (none for roots and anonymous callers).
    async fn identity_policies(&self, principal: &Principal) -> Result<Vec<policy::Policy>, RegistryError> {
        let Principal::User { account, name } = principal else { return Ok(Vec::new()) };
        let plain = name.rsplit('/').next().unwrap_or(name);
        let texts = self.meta.user_policies(account, plain).await?;
        Ok(texts
            .iter()
            .filter_map(|(policy_name, text)| match policy::parse(text, PolicyKind::Identity) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(user = %principal, policy = policy_name, error = %e, "a stored identity policy does not parse; ignoring it");
                    None
                }
            })
            .collect())
    }

    /// Authorizes, then finds the repository (which only an authorized caller learns about).
    pub(crate) async fn authorized_repository(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepoPath,
    ) -> Result<Repository, RegistryError> {
        self.authorize_on(caller, action, repo).await?.ok_or_else(|| RegistryError::NameUnknown {
            account: repo.account.to_string(),
            name: repo.name.to_string(),
        })
    }

    /// Whether a caller holds any credentials at all (for the `/v2/` version check).
    pub fn require_authenticated(&self, caller: &Caller) -> Result<(), RegistryError> {
        match caller.principal {
            Principal::Anonymous => Err(RegistryError::Unauthenticated("authentication required".to_owned())),
            _ => Ok(()),
        }
    }

    /// The accounts whose repositories `caller` may list.
    pub(crate) fn visible_accounts(&self, caller: &Caller) -> Vec<AccountId> {
        caller.principal.account().cloned().into_iter().collect()
    }
}
