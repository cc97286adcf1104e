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
#[derive(Clone, Copy)]
pub(crate) struct StoredPolicies<'a> {
    pub(crate) repository: Option<&'a str>,
    pub(crate) registry: Option<&'a str>,
}

/// A SigV4 request whose envelope and key checked out, waiting for its body so that its
/// signature can be checked.
pub struct PendingSignature {
    auth: sigv4::Authorization,
    key: AccessKey,
    secret: String,
    signed_at: SystemTime,
}

impl std::fmt::Debug for PendingSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignature")
            .field("access_key_id", &self.key.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The tags a request sets or removes: `aws:RequestTag/<key>` and `aws:TagKeys`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestTags<'a> {
    pub(crate) set: &'a [(String, String)],
    pub(crate) removed: &'a [String],
}

impl RequestTags<'_> {
    fn add_to(&self, context: &mut berth_iam::ContextKeys) {
        if self.set.is_empty() && self.removed.is_empty() {
            return;
        }
        for (key, value) in self.set {
            context.insert(format!("aws:requesttag/{}", key.to_ascii_lowercase()), vec![value.clone()]);
        }
        let keys = self.set.iter().map(|(k, _)| k.clone()).chain(self.removed.iter().cloned()).collect();
        context.insert("aws:tagkeys".to_owned(), keys);
    }
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
    TokenSigner::new(&key).map_err(|e| RegistryError::Internal(e.to_string()))
}

/// Credentials of the owner's root key, returned once when bootstrap creates them.
pub struct BootstrapCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// One authorization question about a resource of `account`.
pub(crate) struct Request<'a> {
    pub(crate) action: Action,
    pub(crate) account: &'a AccountId,
    pub(crate) arn: &'a str,
    pub(crate) tags: RequestTags<'a>,
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
            Some(key) if key.active => self
                .tokens
                .issue_for(access_key_id, self.now(), lifetime)
                .map_err(|e| RegistryError::Internal(e.to_string())),
            _ => Err(RegistryError::Unauthenticated(format!(
                "The access key {access_key_id} does not exist or is disabled"
            ))),
        }
    }

    /// Checks what a SigV4-signed ECR API request shows before its body is read: an
    /// `Authorization` header, a scope for this registry's service and region with the headers
    /// the protocol must sign, a current clock, and an active key. Nothing of the body is
    /// buffered for a request that fails here.
    pub async fn begin_sigv4(&self, headers: &[(String, String)]) -> Result<PendingSignature, RegistryError> {
        let header = headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.as_str())
            .ok_or(RegistryError::Signature(SigV4Error::Missing))?;
        let auth = sigv4::parse_authorization(header).map_err(RegistryError::Signature)?;
        let expect = sigv4::Expectations {
            service: "ecr",
            region: &self.settings.region,
            signed_headers: &["x-amz-target", "content-type"],
        };
        let signed_at =
            sigv4::check_envelope(&auth, headers, &expect, self.now()).map_err(RegistryError::Signature)?;
        let key = self
            .meta
            .get_access_key(&auth.access_key_id)
            .await?
            .filter(|k| k.active)
            .ok_or(RegistryError::Signature(SigV4Error::UnknownKey))?;
        let secret = self.kms.open(&key.sealed_secret, &secret_context(&key.access_key_id)).await?;
        let secret = String::from_utf8(secret)
            .map_err(|_| RegistryError::Internal("stored secret is not text".to_owned()))?;
        Ok(PendingSignature { auth, key, secret, signed_at })
    }

    /// Checks the signature of a request [`Self::begin_sigv4`] let through, now that its body
    /// is in, and returns who signed it.
    pub async fn finish_sigv4(
        &self,
        pending: PendingSignature,
        request: &SignedRequest<'_>,
    ) -> Result<Caller, RegistryError> {
        sigv4::verify_signature(&pending.auth, request, &pending.secret, pending.signed_at)
            .map_err(RegistryError::Signature)?;
        let principal = self.principal_of(&pending.key).await?;
        Ok(Caller::new(principal, Some(pending.key.access_key_id)))
    }

    /// Checks HTTP Basic credentials: user `AWS` and a registry token as the password.
    pub async fn authenticate_basic(&self, user: &str, password: &str) -> Result<Caller, RegistryError> {
        let unauthenticated = |m: &str| RegistryError::Unauthenticated(m.to_owned());
        if user != berth_iam::token::TOKEN_USER {
            return Err(unauthenticated("the user name must be AWS, with a registry token as the password"));
        }
        let claims = self.tokens.verify(password, self.now()).map_err(|e| match e {
            TokenError::Expired => unauthenticated(&e.to_string()),
            TokenError::Malformed | TokenError::BadSignature | TokenError::Random | TokenError::Key => {
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

    /// Authorizes `action` on `repo` and returns the repository, if it exists, from the same
    /// read that fetched the policies.
    pub(crate) async fn authorize_on(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepoPath,
    ) -> Result<Option<Repository>, RegistryError> {
        self.authorize_tagging(caller, action, repo, RequestTags::default()).await
    }

    /// [`Self::authorize_on`] for a request that sets or removes tags, which policies see as
    /// `aws:RequestTag/<key>` and `aws:TagKeys`.
    pub(crate) async fn authorize_tagging(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepoPath,
        tags: RequestTags<'_>,
    ) -> Result<Option<Repository>, RegistryError> {
        let facts = self.meta.access_facts(&repo.account, &repo.name).await?;
        let arn = repository_arn(&self.settings.region, &repo.account, &repo.name);
        let policies = StoredPolicies {
            repository: facts.repository_policy.as_deref(),
            registry: facts.registry_policy.as_deref(),
        };
        let request = Request { action, account: &repo.account, arn: &arn, tags };
        self.decide(caller, &request, policies, facts.repository.as_ref()).await?;
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
        let request = Request { action, account, arn, tags: RequestTags::default() };
        self.decide(caller, &request, policies, None).await
    }

    /// Asks the evaluator and turns a refusal into the error the caller should see.
    async fn decide(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        stored: StoredPolicies<'_>,
        repository: Option<&Repository>,
    ) -> Result<(), RegistryError> {
        match self.evaluate(caller, request, stored, repository).await? {
            Decision::Allow => Ok(()),
            // Without credentials the right answer is a challenge, not a refusal.
            Decision::Deny(_) if caller.principal == Principal::Anonymous => {
                Err(RegistryError::Unauthenticated("authentication required".to_owned()))
            }
            Decision::Deny(message) => Err(RegistryError::Denied(message)),
        }
    }

    /// The one evaluator's decision on `request` by `caller`, under the caller's identity
    /// policies and the given resource-side policies, with every condition key the request
    /// carries (see `berth_iam::condition_keys`).
    pub(crate) async fn evaluate(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        stored: StoredPolicies<'_>,
        repository: Option<&Repository>,
    ) -> Result<Decision, RegistryError> {
        // Stored policies were validated when set; one that no longer parses grants nothing.
        let parse = |text: &str| match policy::parse(text, PolicyKind::Resource) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(resource = request.arn, error = %e, "a stored policy does not parse; ignoring it");
                None
            }
        };
        let resource = stored.repository.and_then(parse);
        let registry = stored.registry.and_then(parse);
        let identity = self.identity_policies(&caller.principal).await?;
        let mut context = caller.context.clone();
        context.insert("aws:requestedregion".to_owned(), vec![self.settings.region.clone()]);
        request.tags.add_to(&mut context);
        let asks_about_tags =
            |p: &policy::Policy| p.asks_about("aws:resourcetag/") || p.asks_about("ecr:resourcetag/");
        if let Some(repository) = repository
            && identity.iter().chain(&resource).chain(&registry).any(asks_about_tags)
        {
            // Resource tags are read only when some policy asks about them.
            for (key, value) in self.meta.repository_tags(repository.id).await? {
                for prefix in ["aws:resourcetag/", "ecr:resourcetag/"] {
                    context.insert(format!("{prefix}{}", key.to_ascii_lowercase()), vec![value.clone()]);
                }
            }
        }
        let question = AuthzRequest {
            principal: &caller.principal,
            action: request.action,
            resource_account: request.account,
            resource_arn: request.arn,
            context: &context,
        };
        let policies =
            Policies { identity: &identity, resource: resource.as_ref(), registry: registry.as_ref() };
        Ok(authorize(&question, &policies))
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
        self.authorize_on(caller, action, repo).await?.ok_or_else(|| RegistryError::name_unknown(repo))
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
