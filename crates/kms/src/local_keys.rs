//! The `local` key service: customer keys kept as files in the data directory, one folder per
//! account, every file readable by the registry's user only. Each key has versions of key
//! material (rotation adds one; wraps name the version they were made with, so old ones still
//! unwrap) and a state (a disabled key wraps and unwraps nothing).
//!
//! The `pkcs11` service is the same records with the material in an HSM: a version then names
//! the token's key object, and the token seals and opens data keys itself.
//!
//! Files are read on every use rather than cached, so `berth admin kms` changes made beside a
//! running server (a disabled key, a rotation) take effect at once; the registry caches the data
//! keys it unwrapped, not the keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::pkcs11::{Hsm, Pkcs11Settings};
use crate::service::{
    DEFAULT_ALIAS, DEFAULT_KEY_DESCRIPTION, KeyDescription, KeyService, KeyState, refuse_reserved_alias,
};
use crate::{DataKey, KmsError};

const KEY_FILE_HEADER: &str = "berth-kms-key-v1";
/// First byte of a data key wrapped by this service (the registry key's wraps start with 1).
const WRAP_FORMAT: u8 = 2;
const WRAP_CONTEXT: &[u8] = b"berth customer data key\0";
const TAG_LEN: usize = 16;
const MAX_ALIAS_LEN: usize = 256;
const MAX_DESCRIPTION_LEN: usize = 8192;

/// Customer keys in files under one folder (`<data dir>/kms`), their material there too or in
/// an HSM.
pub struct LocalKeyService {
    root: PathBuf,
    region: String,
    random: SystemRandom,
    /// Where new versions of material are made; `None` for the key files themselves.
    hsm: Option<Hsm>,
}

/// One version of a key's material: the bytes themselves, or the label of the HSM's key object.
enum Material {
    Bytes([u8; 32]),
    Hsm(String),
}

/// How a version that lives in an HSM is written in a key file: `version N pkcs11:<label>`.
const HSM_VERSION_PREFIX: &str = "pkcs11:";

/// One key as stored: its state and every version of its material.
struct StoredKey {
    account: String,
    state: KeyState,
    created_at_millis: i64,
    description: String,
    versions: Vec<Material>,
}

/// What a `kmsKey` names.
enum KeyName {
    Id(String),
    Alias(String),
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_key_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// `alias/` and then what KMS allows in an alias name.
fn check_alias(alias: &str) -> Result<(), KmsError> {
    let name = alias.strip_prefix("alias/").unwrap_or("");
    if name.is_empty()
        || alias.len() > MAX_ALIAS_LEN
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    {
        return Err(KmsError::InvalidKeyName(format!(
            "alias {alias:?} must be alias/ followed by 1 to 250 letters, digits, '/', '_' or '-'"
        )));
    }
    Ok(())
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> KmsError + '_ {
    move |source| KmsError::KeyFile { path: path.display().to_string(), source }
}

/// Writes `contents` to `path` owner-only, atomically (a reader sees the old file or the new).
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), KmsError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))?;
    }
    Ok(())
}

impl StoredKey {
    fn render(&self) -> String {
        let mut out = format!(
            "{KEY_FILE_HEADER}\naccount {}\nstate {}\ncreated {}\ndescription {}\n",
            self.account,
            self.state.as_str(),
            self.created_at_millis,
            self.description
        );
        for (n, material) in self.versions.iter().enumerate() {
            let text = match material {
                Material::Bytes(bytes) => hex::encode(bytes),
                Material::Hsm(label) => format!("{HSM_VERSION_PREFIX}{label}"),
            };
            out.push_str(&format!("version {} {text}\n", n + 1));
        }
        out
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KmsError> {
        let bad = |reason: String| KmsError::BadKeyFile { path: path.display().to_string(), reason };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(bad("missing header".to_owned()));
        }
        let mut key = StoredKey {
            account: String::new(),
            state: KeyState::Disabled,
            created_at_millis: 0,
            description: String::new(),
            versions: Vec::new(),
        };
        for line in lines {
            let (field, value) = line.split_once(' ').unwrap_or((line, ""));
            match field {
                "account" => key.account = value.to_owned(),
                "state" => {
                    key.state = match value {
                        "Enabled" => KeyState::Enabled,
                        "Disabled" => KeyState::Disabled,
                        other => return Err(bad(format!("unknown state {other:?}"))),
                    }
                }
                "created" => {
                    key.created_at_millis = value.parse().map_err(|_| bad("bad creation time".into()))?
                }
                "description" => key.description = value.to_owned(),
                "version" => {
                    let (number, material) =
                        value.split_once(' ').ok_or_else(|| bad("bad version line".into()))?;
                    let material = match material.strip_prefix(HSM_VERSION_PREFIX) {
                        Some(label) => Material::Hsm(label.to_owned()),
                        None => Material::Bytes(
                            hex::decode(material)
                                .ok()
                                .and_then(|b| b.try_into().ok())
                                .ok_or_else(|| bad("key material is not 64 hex digits".into()))?,
                        ),
                    };
                    if number.parse::<usize>().ok() != Some(key.versions.len() + 1) {
                        return Err(bad(format!("version {number} is out of order")));
                    }
                    key.versions.push(material);
                }
                _ => return Err(bad(format!("unknown line {field:?}"))),
            }
        }
        if !is_account(&key.account) || key.versions.is_empty() {
            return Err(bad("no account or no key material".to_owned()));
        }
        Ok(key)
    }
}

impl LocalKeyService {
    /// The service over `root` (created owner-only on first use); ARNs name `region`.
    pub fn open(root: &Path, region: &str) -> Result<Self, KmsError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(io_error(root))?;
        let mode = fs::metadata(root).map_err(io_error(root))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KmsError::BadKeyFile {
                path: root.display().to_string(),
                reason: format!("permissions {:o} let others in; chmod 700", mode & 0o777),
            });
        }
        Ok(Self { root: root.to_owned(), region: region.to_owned(), random: SystemRandom::new(), hsm: None })
    }

    /// The service over `root` with the material of new key versions in the HSM `settings`
    /// names. Versions made before (in key files) keep working.
    pub fn open_with_hsm(root: &Path, region: &str, settings: &Pkcs11Settings) -> Result<Self, KmsError> {
        let hsm = Hsm::open(settings)?;
        Ok(Self { hsm: Some(hsm), ..Self::open(root, region)? })
    }

    fn account_dir(&self, account: &str) -> Result<PathBuf, KmsError> {
        if !is_account(account) {
            return Err(KmsError::InvalidKeyName(format!("{account:?} is not a 12-digit account id")));
        }
        Ok(self.root.join(account))
    }

    fn key_path(&self, account: &str, key_id: &str) -> Result<PathBuf, KmsError> {
        Ok(self.account_dir(account)?.join("keys").join(key_id))
    }

    fn arn(&self, account: &str, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{account}:key/{key_id}", self.region)
    }

    /// Holds the account's lock while `change` runs, so that two processes (a server and an
    /// admin command) never lose each other's changes.
    fn locked<T>(
        &self,
        account: &str,
        change: impl FnOnce(&Path) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let dir = self.account_dir(account)?;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join("keys")).map_err(io_error(&dir))?;
        let lock_path = dir.join(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        lock.lock().map_err(io_error(&lock_path))?;
        let result = change(&dir);
        drop(lock);
        result
    }

    fn load(&self, account: &str, key_id: &str) -> Result<StoredKey, KmsError> {
        let path = self.key_path(account, key_id)?;
        match fs::read_to_string(&path) {
            Ok(text) => StoredKey::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(KmsError::KeyNotFound(format!("Key '{}' does not exist", self.arn(account, key_id))))
            }
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    fn aliases(&self, account: &str) -> Result<Vec<(String, String)>, KmsError> {
        let path = self.account_dir(account)?.join("aliases");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(alias, id)| (alias.to_owned(), id.to_owned()))
            .collect())
    }

    fn describe(&self, account: &str, key_id: &str) -> Result<KeyDescription, KmsError> {
        let key = self.load(account, key_id)?;
        let aliases =
            self.aliases(account)?.into_iter().filter(|(_, id)| id == key_id).map(|(a, _)| a).collect();
        Ok(KeyDescription {
            arn: self.arn(account, key_id),
            key_id: key_id.to_owned(),
            account: key.account,
            state: key.state,
            description: key.description,
            aliases,
            versions: u32::try_from(key.versions.len()).unwrap_or(u32::MAX),
            created_at_millis: key.created_at_millis,
        })
    }

    /// Which account and key a `kmsKey` value names, for a repository of `account`.
    fn resolve(&self, account: &str, key: &str) -> Result<(String, KeyName), KmsError> {
        let Some(rest) = key.strip_prefix("arn:") else {
            return if key.starts_with("alias/") {
                check_alias(key)?;
                Ok((account.to_owned(), KeyName::Alias(key.to_owned())))
            } else if is_key_id(key) {
                Ok((account.to_owned(), KeyName::Id(key.to_owned())))
            } else {
                Err(KmsError::InvalidKeyName(format!(
                    "{key:?} is not a key id, key ARN, alias name (alias/...) or alias ARN"
                )))
            };
        };
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, "kms", region, key_account, resource] = parts[..] else {
            return Err(KmsError::InvalidKeyName(format!("{key:?} is not a KMS key or alias ARN")));
        };
        if !partition.starts_with("aws") || !is_account(key_account) {
            return Err(KmsError::InvalidKeyName(format!("{key:?} is not a KMS key or alias ARN")));
        }
        if region != self.region {
            return Err(KmsError::KeyNotFound(format!(
                "{key} is in region {region}; a repository's key must be in the registry's region {}",
                self.region
            )));
        }
        if key_account != account {
            return Err(KmsError::KeyAccessDenied(format!(
                "{key} belongs to account {key_account}; the local key service lets only an account's own keys \
                 guard its repositories"
            )));
        }
        let name = match resource.split_once('/') {
            Some(("key", id)) if is_key_id(id) => KeyName::Id(id.to_owned()),
            Some(("alias", _)) => {
                check_alias(resource)?;
                KeyName::Alias(resource.to_owned())
            }
            _ => return Err(KmsError::InvalidKeyName(format!("{key:?} is not a KMS key or alias ARN"))),
        };
        Ok((key_account.to_owned(), name))
    }

    /// The account and key id an ARN this service issued names.
    fn parse_arn<'a>(&self, arn: &'a str) -> Result<(&'a str, &'a str), KmsError> {
        let prefix = format!("arn:aws:kms:{}:", self.region);
        arn.strip_prefix(&prefix)
            .and_then(|rest| rest.split_once(":key/"))
            .filter(|(account, id)| is_account(account) && is_key_id(id))
            .ok_or_else(|| {
                KmsError::KeyNotFound(format!("{arn} is not a key of this registry's key service"))
            })
    }

    /// Whether `arn` names a key whose record this service keeps (made under `local` or `pkcs11`).
    pub fn has_record(&self, arn: &str) -> bool {
        self.parse_arn(arn).is_ok_and(|(account, key_id)| self.load(account, key_id).is_ok())
    }

    /// A key usable for wrapping: it exists and is enabled.
    fn usable(&self, arn: &str) -> Result<StoredKey, KmsError> {
        let (account, key_id) = self.parse_arn(arn)?;
        let key = self.load(account, key_id)?;
        match key.state {
            KeyState::Enabled => Ok(key),
            KeyState::Disabled => Err(KmsError::KeyDisabled(format!("{arn} is disabled."))),
        }
    }

    /// New material for version `version` of a key: on the HSM when there is one.
    fn new_material(&self, account: &str, key_id: &str, version: usize) -> Result<Material, KmsError> {
        if let Some(hsm) = &self.hsm {
            let label = format!("berth/{account}/{key_id}/v{version}");
            hsm.generate(&label)?;
            return Ok(Material::Hsm(label));
        }
        let mut material = [0u8; 32];
        self.random.fill(&mut material).map_err(|_| KmsError::Random)?;
        Ok(Material::Bytes(material))
    }

    /// AES-256-GCM of `body` under one version of material.
    fn seal(
        &self,
        material: &Material,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        body: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        match material {
            Material::Bytes(bytes) => {
                let sealing =
                    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KmsError::Unwrap)?);
                let mut out = body.to_vec();
                sealing
                    .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out)
                    .map_err(|_| KmsError::Random)?;
                Ok(out)
            }
            Material::Hsm(label) => self.hsm_for(label)?.seal(label, &nonce, aad, body),
        }
    }

    /// Opens what [`Self::seal`] sealed, into a data key.
    fn open_sealed(
        &self,
        material: &Material,
        nonce: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<[u8; 32], KmsError> {
        // The plaintext key must not outlive this call anywhere but in the returned `DataKey`:
        // every copy is zeroized when dropped.
        let plain = match material {
            Material::Bytes(bytes) => {
                let opening =
                    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KmsError::Unwrap)?);
                let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KmsError::Unwrap)?;
                let mut body = zeroize::Zeroizing::new(sealed.to_vec());
                let len = opening
                    .open_in_place(nonce, Aad::from(aad), &mut body)
                    .map_err(|_| KmsError::Unwrap)?
                    .len();
                body.truncate(len);
                body
            }
            Material::Hsm(label) => self.hsm_for(label)?.open_sealed(label, nonce, aad, sealed)?,
        };
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| KmsError::Unwrap)
    }

    fn hsm_for(&self, label: &str) -> Result<&Hsm, KmsError> {
        self.hsm.as_ref().ok_or_else(|| {
            KmsError::Unavailable(format!(
                "key material {label} is in an HSM, and this registry is not configured with one \
                 (kms.provider = \"pkcs11\")"
            ))
        })
    }

    /// Makes a key in `account`, optionally named by `alias`.
    fn create_key_now(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        if description.len() > MAX_DESCRIPTION_LEN || description.contains(['\n', '\r']) {
            return Err(KmsError::InvalidKeyName(format!(
                "a key's description is one line of at most {MAX_DESCRIPTION_LEN} bytes"
            )));
        }
        if let Some(alias) = alias {
            check_alias(alias)?;
        }
        refuse_reserved_alias(alias)?;
        self.create_locked(account, description, alias)
    }

    fn create_locked(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        let key_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let key = StoredKey {
            account: account.to_owned(),
            state: KeyState::Enabled,
            created_at_millis: now_millis(),
            description: description.to_owned(),
            versions: vec![self.new_material(account, &key_id, 1)?],
        };
        self.locked(account, |dir| {
            let mut aliases = self.aliases(account)?;
            if let Some(alias) = alias {
                if aliases.iter().any(|(a, _)| a == alias) {
                    return Err(KmsError::AlreadyExists(format!(
                        "An alias with the name {alias} already exists"
                    )));
                }
                aliases.push((alias.to_owned(), key_id.clone()));
            }
            write_private(&dir.join("keys").join(&key_id), &key.render())?;
            if alias.is_some() {
                let text: String = aliases.iter().map(|(a, id)| format!("{a} {id}\n")).collect();
                write_private(&dir.join("aliases"), &text)?;
            }
            Ok(())
        })?;
        self.describe(account, &key_id)
    }

    /// Every key of `account`, oldest first.
    fn list_keys_now(&self, account: &str) -> Result<Vec<KeyDescription>, KmsError> {
        let dir = self.account_dir(account)?.join("keys");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir)(e)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            if let Some(id) = entry.file_name().to_str().filter(|n| is_key_id(n)) {
                keys.push(self.describe(account, id)?);
            }
        }
        keys.sort_by(|a, b| (a.created_at_millis, &a.key_id).cmp(&(b.created_at_millis, &b.key_id)));
        Ok(keys)
    }

    /// Enables or disables a key (`key` as a repository would name it).
    fn set_key_state_now(
        &self,
        account: &str,
        key: &str,
        state: KeyState,
    ) -> Result<KeyDescription, KmsError> {
        self.change_key(account, key, |stored| {
            stored.state = state;
            Ok(())
        })
    }

    /// Adds a version of key material: new wraps use it, older wraps still open.
    fn rotate_key_now(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        let (owner, key_id) = self.find(account, key)?;
        self.change_key(account, key, |stored| {
            let material = self.new_material(&owner, &key_id, stored.versions.len() + 1)?;
            stored.versions.push(material);
            Ok(())
        })
    }

    fn change_key(
        &self,
        account: &str,
        key: &str,
        change: impl FnOnce(&mut StoredKey) -> Result<(), KmsError>,
    ) -> Result<KeyDescription, KmsError> {
        let (account, key_id) = self.find(account, key)?;
        self.locked(&account, |_| {
            let mut stored = self.load(&account, &key_id)?;
            change(&mut stored)?;
            write_private(&self.key_path(&account, &key_id)?, &stored.render())
        })?;
        self.describe(&account, &key_id)
    }

    /// The account and id of the key `key` names, for a repository of `account`.
    fn find(&self, account: &str, key: &str) -> Result<(String, String), KmsError> {
        let (account, name) = self.resolve(account, key)?;
        match name {
            KeyName::Id(id) => Ok((account, id)),
            KeyName::Alias(alias) => self
                .aliases(&account)?
                .into_iter()
                .find(|(a, _)| *a == alias)
                .map(|(_, id)| (account.clone(), id))
                .ok_or_else(|| {
                    KmsError::KeyNotFound(format!(
                        "Alias arn:aws:kms:{}:{account}:{alias} is not found.",
                        self.region
                    ))
                }),
        }
    }
}

#[async_trait::async_trait]
impl KeyService for LocalKeyService {
    fn provider(&self) -> &'static str {
        if self.hsm.is_some() { "pkcs11" } else { "local" }
    }

    async fn find_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        let (account, id) = self.find(account, key)?;
        self.describe(&account, &id)
    }

    async fn create_default_key(&self, account: &str) -> Result<KeyDescription, KmsError> {
        self.create_locked(account, DEFAULT_KEY_DESCRIPTION, Some(DEFAULT_ALIAS))
    }

    async fn create_key(
        &self,
        account: &str,
        description: &str,
        alias: Option<&str>,
    ) -> Result<KeyDescription, KmsError> {
        self.create_key_now(account, description, alias)
    }

    async fn list_keys(&self, account: &str) -> Result<Vec<KeyDescription>, KmsError> {
        self.list_keys_now(account)
    }

    async fn set_key_state(
        &self,
        account: &str,
        key: &str,
        state: KeyState,
    ) -> Result<KeyDescription, KmsError> {
        self.set_key_state_now(account, key, state)
    }

    async fn rotate_key(&self, account: &str, key: &str) -> Result<KeyDescription, KmsError> {
        self.rotate_key_now(account, key)
    }

    async fn key_state(&self, key_arn: &str) -> Result<KeyState, KmsError> {
        let (account, key_id) = self.parse_arn(key_arn)?;
        Ok(self.load(account, key_id)?.state)
    }

    async fn wrap(&self, key_arn: &str, key: &DataKey) -> Result<Vec<u8>, KmsError> {
        let stored = self.usable(key_arn)?;
        let version = u32::try_from(stored.versions.len()).map_err(|_| KmsError::Unwrap)?;
        let material = stored.versions.last().ok_or(KmsError::Unwrap)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| KmsError::Random)?;
        let aad = [WRAP_CONTEXT, key_arn.as_bytes()].concat();
        let body = self.seal(material, nonce, &aad, key.as_bytes())?;
        let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + body.len());
        out.push(WRAP_FORMAT);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    async fn unwrap(&self, key_arn: &str, wrapped: &[u8]) -> Result<DataKey, KmsError> {
        let stored = self.usable(key_arn)?;
        let (&format, rest) = wrapped.split_first().ok_or(KmsError::Unwrap)?;
        if format != WRAP_FORMAT || rest.len() != 4 + NONCE_LEN + 32 + TAG_LEN {
            return Err(KmsError::Unwrap);
        }
        let (version, rest) = rest.split_at(4);
        let version = u32::from_be_bytes(version.try_into().map_err(|_| KmsError::Unwrap)?);
        let material = usize::try_from(version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|v| stored.versions.get(v))
            .ok_or(KmsError::Unwrap)?;
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let aad = [WRAP_CONTEXT, key_arn.as_bytes()].concat();
        Ok(DataKey::from_bytes(self.open_sealed(material, nonce, &aad, body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    fn service(dir: &Path) -> LocalKeyService {
        LocalKeyService::open(&dir.join("kms"), "eu-west-1").expect("open")
    }

    #[tokio::test]
    async fn a_key_is_found_by_id_arn_alias_and_alias_arn_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = service(dir.path());
        let made = kms.create_key(A, "team keys", Some("alias/team")).await.expect("create");
        assert_eq!(made.arn, format!("arn:aws:kms:eu-west-1:{A}:key/{}", made.key_id));
        assert_eq!(
            (made.state, made.versions, made.aliases.clone()),
            (KeyState::Enabled, 1, vec!["alias/team".into()])
        );
        for name in [
            made.key_id.clone(),
            made.arn.clone(),
            "alias/team".to_owned(),
            format!("arn:aws:kms:eu-west-1:{A}:alias/team"),
        ] {
            assert_eq!(kms.describe_key(A, Some(&name)).await.expect(&name).arn, made.arn, "{name}");
        }
        let dek = DataKey::generate().expect("dek");
        let wrapped = kms.wrap(&made.arn, &dek).await.expect("wrap");
        assert!(!wrapped.windows(32).any(|w| w == dek.as_bytes()));
        assert_eq!(kms.unwrap(&made.arn, &wrapped).await.expect("unwrap").as_bytes(), dek.as_bytes());

        // Files are the registry user's alone.
        for path in [dir.path().join("kms"), dir.path().join("kms").join(A).join("keys").join(&made.key_id)] {
            let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
    }

    #[tokio::test]
    async fn names_that_are_not_this_accounts_keys_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = service(dir.path());
        let other = kms.create_key(B, "", None).await.expect("create");
        assert!(matches!(kms.describe_key(A, Some(&other.arn)).await, Err(KmsError::KeyAccessDenied(_))));
        assert!(matches!(kms.describe_key(A, Some(&other.key_id)).await, Err(KmsError::KeyNotFound(_))));
        let elsewhere = other.arn.replace("eu-west-1", "us-east-2");
        assert!(matches!(kms.describe_key(B, Some(&elsewhere)).await, Err(KmsError::KeyNotFound(_))));
        assert!(matches!(kms.describe_key(A, Some("alias/none")).await, Err(KmsError::KeyNotFound(_))));
        for bad in ["not-a-key", "alias/", "alias/a b", "arn:aws:s3:::bucket", "../../etc/passwd"] {
            assert!(
                matches!(kms.describe_key(A, Some(bad)).await, Err(KmsError::InvalidKeyName(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            kms.create_key(A, "", Some("alias/aws/mine")).await,
            Err(KmsError::InvalidKeyName(_))
        ));
        kms.create_key(A, "", Some("alias/x")).await.expect("create");
        assert!(matches!(kms.create_key(A, "", Some("alias/x")).await, Err(KmsError::AlreadyExists(_))));
    }

    #[tokio::test]
    async fn no_key_means_the_accounts_default_key_made_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = service(dir.path());
        let first = kms.describe_key(A, None).await.expect("default");
        assert_eq!(first.aliases, vec![DEFAULT_ALIAS.to_owned()]);
        assert_eq!(kms.describe_key(A, Some("aws/ecr")).await.expect("again").arn, first.arn);
        assert_eq!(kms.describe_key(A, Some(DEFAULT_ALIAS)).await.expect("again").arn, first.arn);
        assert_ne!(kms.describe_key(B, None).await.expect("other account").arn, first.arn);
        assert_eq!(kms.list_keys(A).await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn a_disabled_key_wraps_and_unwraps_nothing_until_enabled_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = service(dir.path());
        let key = kms.create_key(A, "", Some("alias/k")).await.expect("create");
        let dek = DataKey::generate().expect("dek");
        let wrapped = kms.wrap(&key.arn, &dek).await.expect("wrap");
        assert_eq!(
            kms.set_key_state(A, "alias/k", KeyState::Disabled).await.expect("disable").state,
            KeyState::Disabled
        );
        assert!(matches!(kms.unwrap(&key.arn, &wrapped).await, Err(KmsError::KeyDisabled(_))));
        assert!(matches!(kms.wrap(&key.arn, &dek).await, Err(KmsError::KeyDisabled(_))));
        // A second service over the same folder (an admin command beside the server) sees it.
        kms.set_key_state(A, &key.key_id, KeyState::Enabled).await.expect("enable");
        assert_eq!(
            service(dir.path()).unwrap(&key.arn, &wrapped).await.expect("unwrap").as_bytes(),
            dek.as_bytes()
        );
    }

    #[tokio::test]
    async fn rotation_wraps_with_the_new_version_and_old_wraps_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = service(dir.path());
        let key = kms.create_key(A, "", None).await.expect("create");
        let dek = DataKey::generate().expect("dek");
        let old = kms.wrap(&key.arn, &dek).await.expect("wrap");
        assert_eq!(kms.rotate_key(A, &key.arn).await.expect("rotate").versions, 2);
        let new = kms.wrap(&key.arn, &dek).await.expect("wrap");
        assert_eq!((old[1..5].to_vec(), new[1..5].to_vec()), (vec![0, 0, 0, 1], vec![0, 0, 0, 2]));
        for wrapped in [&old, &new] {
            assert_eq!(kms.unwrap(&key.arn, wrapped).await.expect("unwrap").as_bytes(), dek.as_bytes());
        }
    }

    #[tokio::test]
    async fn a_wrap_opens_only_under_its_own_key_and_untampered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = service(dir.path());
        let (one, two) = (
            kms.create_key(A, "", None).await.expect("one"),
            kms.create_key(A, "", None).await.expect("two"),
        );
        let dek = DataKey::generate().expect("dek");
        let wrapped = kms.wrap(&one.arn, &dek).await.expect("wrap");
        assert!(matches!(kms.unwrap(&two.arn, &wrapped).await, Err(KmsError::Unwrap)));
        for at in [0, 1, 4, 5, wrapped.len() - 1] {
            let mut tampered = wrapped.clone();
            tampered[at] ^= 1;
            assert!(kms.unwrap(&one.arn, &tampered).await.is_err(), "byte {at} flipped");
        }
        assert!(kms.unwrap(&one.arn, &wrapped[..wrapped.len() - 1]).await.is_err());
    }
}
