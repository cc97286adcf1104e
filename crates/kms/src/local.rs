use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{DataKey, KeyProvider, KmsError, WRAP_FORMAT_V1};

const KEY_FILE_HEADER: &str = "berth-local-key-v1\n";
const DATA_KEY_CONTEXT: &str = "berth data key";

/// A key-encryption key kept in a file readable only by the registry's user.
pub struct LocalKeyProvider {
    key: LessSafeKey,
    key_id: String,
    random: SystemRandom,
}

impl LocalKeyProvider {
    /// Opens the key file, or creates it (mode 0600) with a new random key on first start.
    pub fn open_or_create(path: &Path) -> Result<Self, KmsError> {
        let io_err = |source| KmsError::KeyFile { path: path.display().to_string(), source };
        let random = SystemRandom::new();
        if !path.exists() {
            let mut bytes = [0u8; 32];
            random.fill(&mut bytes).map_err(|_| KmsError::Random)?;
            crate::local_keys::write_private(path, &format!("{KEY_FILE_HEADER}{}\n", hex::encode(bytes)))?;
        }
        let mode = fs::metadata(path).map_err(io_err)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KmsError::BadKeyFile {
                path: path.display().to_string(),
                reason: format!("permissions {:o} let others read it; chmod 600", mode & 0o777),
            });
        }
        let text = fs::read_to_string(path).map_err(io_err)?;
        let bad = |reason: &str| KmsError::BadKeyFile {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let encoded = text.strip_prefix(KEY_FILE_HEADER).ok_or_else(|| bad("missing header"))?;
        let bytes: [u8; 32] = hex::decode(encoded.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("key is not 64 hex digits"))?;
        // The id names the key without revealing it: a hash of the key under a fixed label.
        let id_hash = ring::digest::digest(&ring::digest::SHA256, &[b"berth key id\0", &bytes[..]].concat());
        let key_id = format!("local:{}", &hex::encode(id_hash.as_ref())[..16]);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| bad("unusable key"))?);
        Ok(Self { key, key_id, random })
    }

    fn seal_bytes(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, KmsError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| KmsError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(WRAP_FORMAT_V1);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| KmsError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open_bytes(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, KmsError> {
        let (&version, rest) = sealed.split_first().ok_or(KmsError::Unwrap)?;
        if version != WRAP_FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
            return Err(KmsError::Unwrap);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KmsError::Unwrap)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map(|plain| plain.to_vec());
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

    #[test]
    fn refuses_a_world_readable_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        LocalKeyProvider::open_or_create(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(LocalKeyProvider::open_or_create(&path), Err(KmsError::BadKeyFile { .. })));
    }
}
