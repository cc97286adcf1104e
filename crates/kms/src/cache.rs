//! A remote key service in front of which sits a memory of two things: data keys it unwrapped
//! (so that a read does not call the service), and each key's state (so that a key disabled at the
//! service stops its repositories within `state_ttl`, cached data keys or not). Both are bounded
//! and short-lived; data keys are zeroized when they leave the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::service::{KeyDescription, KeyService, KeyState};
use crate::{DataKey, KmsError};

/// How long and how much is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long an unwrapped data key is reused.
    pub data_key_ttl: Duration,
    /// How long a key's state is trusted before the service is asked again: the longest a key
    /// disabled at the service keeps serving.
    pub state_ttl: Duration,
    /// At most this many data keys are held.
    pub max_data_keys: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            data_key_ttl: Duration::from_secs(300),
            state_ttl: Duration::from_secs(30),
            max_data_keys: 10_000,
        }
    }
}

type DataKeyId = (String, [u8; 32]);

pub struct CachedKeyService<S> {
    inner: S,
    settings: CacheSettings,
    data_keys: Mutex<HashMap<DataKeyId, (DataKey, Instant)>>,
    states: Mutex<HashMap<String, (KeyState, Instant)>>,
}

impl<S: KeyService> CachedKeyService<S> {
    pub fn new(inner: S, settings: CacheSettings) -> Self {
        Self { inner, settings, data_keys: Mutex::new(HashMap::new()), states: Mutex::new(HashMap::new()) }
    }

    /// The key's state, from memory while fresh, else from the service (whose failure is the
    /// caller's: a key that cannot be checked is not used).
    async fn ensure_enabled(&self, key_arn: &str) -> Result<(), KmsError> {
        let remembered = lock(&self.states)
            .get(key_arn)
            .filter(|(_, at)| at.elapsed() < self.settings.state_ttl)
            .map(|(state, _)| *state);
        let state = match remembered {
            Some(state) => state,
            None => {
                let state = self.inner.key_state(key_arn).await?;
                lock(&self.states).insert(key_arn.to_owned(), (state, Instant::now()));
                state
            }
        };
        match state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::KeyDisabled(format!("{key_arn} is disabled."))),
        }
    }

    fn remember(&self, id: DataKeyId, key: &DataKey) {
        let mut keys = lock(&self.data_keys);
        if keys.len() >= self.settings.max_data_keys {
            let ttl = self.settings.data_key_ttl;
            keys.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        if keys.len() >= self.settings.max_data_keys
            && let Some(oldest) = keys.iter().min_by_key(|(_, (_, at))| *at).map(|(id, _)| id.clone())
        {
            keys.remove(&oldest);
        }
        if self.settings.max_data_keys > 0 {
            keys.insert(id, (key.clone(), Instant::now()));
        }
    }

    /// Forgets everything: after a change made through this service, the next use asks again.
    fn forget(&self) {
        lock(&self.data_keys).clear();
        lock(&self.states).clear();
    }

    #[cfg(test)]
    fn data_keys_held(&self) -> usize {
        lock(&self.data_keys).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fingerprint(wrapped: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, wrapped);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[async_trait::async_trait]
impl<S: KeyService> KeyService for CachedKeyService<S> {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    async fn find_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        self.inner.find_key(account, key).await
    }

    async fn create_default_key(&self, account: &str) -> Result<KeyDescription, KmsError> {
        self.inner.create_default_key(account).await
    }

    async fn key_state(&self, key_arn: &str) -> Result<KeyState, KmsError> {
        self.inner.key_state(key_arn).await
    }

    async fn wrap(&self, key_arn: &str, key: &DataKey) -> Result<Vec<u8>, KmsError> {
        self.ensure_enabled(key_arn).await?;
        self.inner.wrap(key_arn, key).await
    }

    async fn unwrap(&self, key_arn: &str, wrapped: &[u8]) -> Result<DataKey, KmsError> {
        self.ensure_enabled(key_arn).await?;
        let id = (key_arn.to_owned(), fingerprint(wrapped));
        let ttl = self.settings.data_key_ttl;
        if let Some((key, _)) = lock(&self.data_keys).get(&id).filter(|(_, at)| at.elapsed() < ttl) {
            return Ok(key.clone());
        }
        let key = self.inner.unwrap(key_arn, wrapped).await?;
        self.remember(id, &key);
        Ok(key)
    }

    async fn create_key(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        self.inner.create_key(account, description, alias).await
    }

    async fn list_keys(&self, account: &str) -> Result<Vec<KeyDescription>, KmsError> {
        self.inner.list_keys(account).await
    }

    async fn set_key_state(
        &self,
        account: &str,
        key: &str,
        state: KeyState,
    ) -> Result<KeyDescription, KmsError> {
        let described = self.inner.set_key_state(account, key, state).await;
        self.forget();
        described
    }

    async fn rotate_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        let described = self.inner.rotate_key(account, key).await;
        self.forget();
        described
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A service that counts its calls and whose one key can be switched off.
    #[derive(Default)]
    struct Counting {
        unwraps: AtomicU32,
        state_checks: AtomicU32,
        disabled: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl KeyService for Counting {
        fn provider(&self) -> &'static str {
            "counting"
        }
        async fn find_key(&self, _: &str, _: &str) -> Result<KeyDescription, KmsError> {
            Err(KmsError::Unsupported("not here".into()))
        }
        async fn create_default_key(&self, _: &str) -> Result<KeyDescription, KmsError> {
            Err(KmsError::Unsupported("not here".into()))
        }
        async fn key_state(&self, _: &str) -> Result<KeyState, KmsError> {
            self.state_checks.fetch_add(1, Ordering::SeqCst);
            Ok(if self.disabled.load(Ordering::SeqCst) { KeyState::Disabled } else { KeyState::Enabled })
        }
        async fn wrap(&self, _: &str, key: &DataKey) -> Result<Vec<u8>, KmsError> {
            Ok(key.as_bytes().to_vec())
        }
        async fn unwrap(&self, _: &str, wrapped: &[u8]) -> Result<DataKey, KmsError> {
            self.unwraps.fetch_add(1, Ordering::SeqCst);
            Ok(DataKey::from_bytes(wrapped.try_into().map_err(|_| KmsError::Unwrap)?))
        }
    }

    fn settings(state_ttl_ms: u64, max: usize) -> CacheSettings {
        CacheSettings {
            data_key_ttl: Duration::from_secs(60),
            state_ttl: Duration::from_millis(state_ttl_ms),
            max_data_keys: max,
        }
    }

    #[tokio::test]
    async fn a_data_key_is_unwrapped_once_and_then_served_from_memory() {
        let cached = CachedKeyService::new(Counting::default(), settings(60_000, 10));
        let wrapped = [7u8; 32];
        for _ in 0..5 {
            let key = cached.unwrap("arn:k", &wrapped).await.expect("unwraps");
            assert_eq!(key.as_bytes(), &wrapped);
        }
        assert_eq!(cached.inner.unwraps.load(Ordering::SeqCst), 1);
        assert_eq!(cached.inner.state_checks.load(Ordering::SeqCst), 1);
        // Another wrapped key under the same key is another entry.
        cached.unwrap("arn:k", &[8u8; 32]).await.expect("unwraps");
        assert_eq!(cached.inner.unwraps.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_key_disabled_at_the_service_stops_cached_keys_once_its_state_is_stale() {
        let cached = CachedKeyService::new(Counting::default(), settings(50, 10));
        cached.unwrap("arn:k", &[7u8; 32]).await.expect("unwraps");
        cached.inner.disabled.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let refused = cached.unwrap("arn:k", &[7u8; 32]).await.expect_err("disabled");
        assert!(matches!(refused, KmsError::KeyDisabled(_)), "{refused:?}");
        assert!(matches!(
            cached.wrap("arn:k", &DataKey::from_bytes([1; 32])).await,
            Err(KmsError::KeyDisabled(_))
        ));
        cached.inner.disabled.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(80)).await;
        cached.unwrap("arn:k", &[7u8; 32]).await.expect("recovers when the key returns");
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_bound() {
        let cached = CachedKeyService::new(Counting::default(), settings(60_000, 3));
        for i in 0..10u8 {
            cached.unwrap("arn:k", &[i; 32]).await.expect("unwraps");
        }
        assert_eq!(cached.data_keys_held(), 3);
        let none = CachedKeyService::new(Counting::default(), settings(60_000, 0));
        none.unwrap("arn:k", &[1; 32]).await.expect("unwraps");
        assert_eq!(none.data_keys_held(), 0, "a bound of 0 caches nothing");
    }
}
