//! The registry's own key-encryption key: a file in the data directory readable only by the
//! registry's user, with versions (rotation adds one; what older versions wrapped or sealed still
//! opens). A running server notices a version added beside it (`berth admin kms rotate`) within
//! a second.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{DataKey, KeyProvider, KmsError, WRAP_FORMAT_V1};

/// The first format: one key, in hex.
const KEY_FILE_HEADER_V1: &str = "berth-local-key-v1\n";
/// With versions: `version <n> <hex>` lines, oldest first.
const KEY_FILE_HEADER_V2: &str = "berth-local-key-v2\n";
/// Wraps and seals that name the version they were made with (after the format byte, a u32).
/// Those of [`WRAP_FORMAT_V1`] were made by version 1.
const WRAP_FORMAT_VERSIONED: u8 = 3;
const DATA_KEY_CONTEXT: &str = "berth data key";
/// How often the file is looked at for a version added by another process.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The registry's own key-encryption key.
pub struct LocalKeyProvider {
    path: PathBuf,
    key_id: String,
    state: Mutex<Loaded>,
    random: SystemRandom,
}

/// The versions as last read, and when the file was last looked at.
struct Loaded {
    keys: Arc<Vec<LessSafeKey>>,
    modified: Option<(u64, u64, SystemTime)>,
    checked: Instant,
}

/// What tells one version of the file from the next: its inode (a rotation replaces the file),
/// size and modification time (whose granularity alone can miss a change made within a tick).
fn modified(path: &Path) -> Option<(u64, u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(path).ok()?;
    Some((metadata.ino(), metadata.len(), metadata.modified().ok()?))
}

/// Every version's material, oldest first, from either format.
fn read_versions(path: &Path) -> Result<Vec<[u8; 32]>, KmsError> {
    let io_err = |source| KmsError::KeyFile { path: path.display().to_string(), source };
    let mode = fs::metadata(path).map_err(io_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KmsError::BadKeyFile {
            path: path.display().to_string(),
            reason: format!("permissions {:o} let others read it; chmod 600", mode & 0o777),
        });
    }
    let text = fs::read_to_string(path).map_err(io_err)?;
    let bad =
        |reason: &str| KmsError::BadKeyFile { path: path.display().to_string(), reason: reason.to_owned() };
    let material = |hex_text: &str| -> Result<[u8; 32], KmsError> {
        hex::decode(hex_text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("key is not 64 hex digits"))
    };
    if let Some(encoded) = text.strip_prefix(KEY_FILE_HEADER_V1) {
        return Ok(vec![material(encoded)?]);
    }
    let lines = text.strip_prefix(KEY_FILE_HEADER_V2).ok_or_else(|| bad("missing header"))?;
    let mut versions = Vec::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split(' ');
        match (fields.next(), fields.next().and_then(|n| n.parse::<usize>().ok()), fields.next()) {
            (Some("version"), Some(n), Some(hex_text)) if n == versions.len() + 1 => {
                versions.push(material(hex_text)?)
            }
            _ => return Err(bad("a version line is malformed or out of order")),
        }
    }
    if versions.is_empty() {
        return Err(bad("no key material"));
    }
    Ok(versions)
}

fn keys_of(path: &Path, versions: &[[u8; 32]]) -> Result<Vec<LessSafeKey>, KmsError> {
    versions
        .iter()
        .map(|m| {
            UnboundKey::new(&AES_256_GCM, m).map(LessSafeKey::new).map_err(|_| KmsError::BadKeyFile {
                path: path.display().to_string(),
                reason: "unusable key".to_owned(),
            })
        })
        .collect()
}

impl LocalKeyProvider {
    /// Opens the key file, or creates it (mode 0600) with a new random key on first start.
    pub fn open_or_create(path: &Path) -> Result<Self, KmsError> {
        let random = SystemRandom::new();
        if !path.exists() {
            let mut bytes = [0u8; 32];
            random.fill(&mut bytes).map_err(|_| KmsError::Random)?;
            crate::local_keys::write_private(path, &format!("{KEY_FILE_HEADER_V1}{}\n", hex::encode(bytes)))?;
        }
        let versions = read_versions(path)?;
        // The id names the key without revealing it: a hash of its first version under a fixed
        // label, so that it stays the same through rotations.
        let id_hash =
            ring::digest::digest(&ring::digest::SHA256, &[b"berth key id\0", &versions[0][..]].concat());
        let key_id = format!("local:{}", &hex::encode(id_hash.as_ref())[..16]);
        let loaded = Loaded {
            keys: Arc::new(keys_of(path, &versions)?),
            modified: modified(path),
            checked: Instant::now(),
        };
        Ok(Self { path: path.to_owned(), key_id, state: Mutex::new(loaded), random })
    }

    /// Every version, oldest first, read again if the file changed since it was last looked at.
    fn keys(&self) -> Result<Arc<Vec<LessSafeKey>>, KmsError> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.checked.elapsed() >= RELOAD_CHECK {
            state.checked = Instant::now();
            let now = modified(&self.path);
            if now != state.modified {
                let versions = read_versions(&self.path)?;
                state.keys = Arc::new(keys_of(&self.path, &versions)?);
                state.modified = now;
            }
        }
        Ok(Arc::clone(&state.keys))
    }

    fn seal_bytes(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, KmsError> {
        let keys = self.keys()?;
        let key = keys.last().ok_or(KmsError::Unwrap)?;
        let version = u32::try_from(keys.len()).map_err(|_| KmsError::Unwrap)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| KmsError::Random)?;
        let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + plaintext.len() + 16);
        out.push(WRAP_FORMAT_VERSIONED);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut body,
        )
        .map_err(|_| KmsError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open_bytes(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, KmsError> {
        let (&format, rest) = sealed.split_first().ok_or(KmsError::Unwrap)?;
        let (version, rest) = match format {
            WRAP_FORMAT_V1 => (1, rest),
            WRAP_FORMAT_VERSIONED if rest.len() >= 4 => {
                let (version, rest) = rest.split_at(4);
                (u32::from_be_bytes(version.try_into().map_err(|_| KmsError::Unwrap)?), rest)
            }
            _ => return Err(KmsError::Unwrap),
        };
        if rest.len() < NONCE_LEN + 16 {
            return Err(KmsError::Unwrap);
        }
        let keys = self.keys()?;
        let key = usize::try_from(version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|v| keys.get(v))
            .ok_or(KmsError::Unwrap)?;
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KmsError::Unwrap)?;
        let mut body = body.to_vec();
        let plain =
            key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut body).map(|plain| plain.to_vec());
        // Only the returned copy holds the plaintext.
        zeroize::Zeroize::zeroize(&mut body);
        plain.map_err(|_| KmsError::Unwrap)
    }
}

#[async_trait::async_trait]
impl KeyProvider for LocalKeyProvider {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn wrap(&self, key: &DataKey) -> Result<Vec<u8>, KmsError> {
        self.seal_bytes(key.as_bytes(), DATA_KEY_CONTEXT)
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, KmsError> {
        let mut bytes = self.open_bytes(wrapped, DATA_KEY_CONTEXT)?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map(DataKey::from_bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        key.map_err(|_| KmsError::Unwrap)
    }

    async fn seal(&self, secret: &[u8], context: &str) -> Result<Vec<u8>, KmsError> {
        self.seal_bytes(secret, &format!("secret:{context}"))
    }

    async fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, KmsError> {
        self.open_bytes(sealed, &format!("secret:{context}"))
    }

    fn versions(&self) -> u32 {
        self.keys().map_or(0, |keys| u32::try_from(keys.len()).unwrap_or(u32::MAX))
    }

    async fn rotate(&self) -> Result<u32, KmsError> {
        let mut versions = read_versions(&self.path)?;
        let mut fresh = [0u8; 32];
        self.random.fill(&mut fresh).map_err(|_| KmsError::Random)?;
        versions.push(fresh);
        let mut text = KEY_FILE_HEADER_V2.to_owned();
        for (n, material) in versions.iter().enumerate() {
            text.push_str(&format!("version {} {}\n", n + 1, hex::encode(material)));
        }
        crate::local_keys::write_private(&self.path, &text)?;
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *state = Loaded {
            keys: Arc::new(keys_of(&self.path, &versions)?),
            modified: modified(&self.path),
            checked: Instant::now(),
        };
        Ok(u32::try_from(versions.len()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_a_private_key_file_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let kms = LocalKeyProvider::open_or_create(&path).expect("create");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let dek = DataKey::generate().expect("dek");
        let wrapped = kms.wrap(&dek).await.expect("wrap");
        assert!(!wrapped.windows(32).any(|w| w == dek.as_bytes()), "wrapped key shows the key");

        // The same file opened again (a restart) unwraps what the first instance wrapped.
        let again = LocalKeyProvider::open_or_create(&path).expect("reopen");
        assert_eq!(again.key_id(), kms.key_id());
        assert_eq!(again.unwrap(&wrapped).await.expect("unwrap").as_bytes(), dek.as_bytes());
    }

    #[tokio::test]
    async fn tampering_and_wrong_context_are_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = LocalKeyProvider::open_or_create(&dir.path().join("k")).expect("create");
        let sealed = kms.seal(b"secret", "access-key:AKIA1").await.expect("seal");
        assert_eq!(kms.open(&sealed, "access-key:AKIA1").await.expect("open"), b"secret");
        assert!(kms.open(&sealed, "access-key:AKIA2").await.is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(kms.open(&flipped, "access-key:AKIA1").await.is_err());
        assert!(kms.unwrap(&sealed).await.is_err(), "a sealed secret is not a data key");
    }

    #[tokio::test]
    async fn rotation_adds_a_version_old_wraps_still_open_and_another_process_notices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let kms = LocalKeyProvider::open_or_create(&path).expect("create");
        let beside = LocalKeyProvider::open_or_create(&path).expect("a second process");
        let dek = DataKey::generate().expect("dek");
        // A wrap as releases before versions made it: format 1, version 1's material, no version.
        let material: [u8; 32] = hex::decode(
            fs::read_to_string(&path).expect("key").strip_prefix(KEY_FILE_HEADER_V1).expect("v1 file").trim(),
        )
        .expect("hex")
        .try_into()
        .expect("32 bytes");
        let first = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &material).expect("key"));
        let mut legacy = vec![WRAP_FORMAT_V1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];
        let mut body = dek.as_bytes().to_vec();
        first
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([9; NONCE_LEN]),
                Aad::from(DATA_KEY_CONTEXT.as_bytes()),
                &mut body,
            )
            .expect("seal");
        legacy.extend_from_slice(&body);
        let before = kms.wrap(&dek).await.expect("wrap");
        let sealed = kms.seal(b"secret", "ctx").await.expect("seal");

        assert_eq!(kms.rotate().await.expect("rotate"), 2);
        assert_eq!((kms.versions(), kms.key_id()), (2, beside.key_id()), "the id survives rotation");
        let after = kms.wrap(&dek).await.expect("wrap");
        assert_eq!((&before[..5], &after[..5]), (&[3, 0, 0, 0, 1][..], &[3, 0, 0, 0, 2][..]));
        for wrapped in [&legacy, &before, &after] {
            assert_eq!(kms.unwrap(wrapped).await.expect("unwrap").as_bytes(), dek.as_bytes());
        }
        assert_eq!(kms.open(&sealed, "ctx").await.expect("open"), b"secret");
        // The other process reads the new version within a second, and opens what it wrapped.
        tokio::time::sleep(RELOAD_CHECK + Duration::from_millis(100)).await;
        assert_eq!(beside.unwrap(&after).await.expect("unwrap").as_bytes(), dek.as_bytes());
        assert_eq!(beside.versions(), 2);
        assert_eq!(LocalKeyProvider::open_or_create(&path).expect("reopen").versions(), 2);
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn refuses_a_world_readable_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        LocalKeyProvider::open_or_create(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(LocalKeyProvider::open_or_create(&path), Err(KmsError::BadKeyFile { .. })));
    }
}
