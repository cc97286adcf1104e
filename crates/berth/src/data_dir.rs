//! The data directory of the embedded default: the key file, the SQLite database, encrypted
//! blobs and the bootstrap credentials, opened and wired into a [`Registry`].

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_registry::{BootstrapCredentials, Registry};

use crate::config::Config;

const CREDENTIALS_FILE: &str = "bootstrap-credentials";
const CREDENTIALS_PROFILE: &str = "berth";

fn credentials_path(config: &Config) -> PathBuf {
    config.data_dir.join(CREDENTIALS_FILE)
}

/// The file `serve` holds an exclusive lock on while it runs, with its process id inside.
const LOCK_FILE: &str = "serve.lock";

/// A lock that only one `berth serve` per data directory can hold; released when dropped (or
/// when the process ends, however it ends).
pub(crate) struct ServeLock {
    _file: std::fs::File,
}

/// Takes the data directory for this server, or says which process has it.
pub(crate) fn lock_for_serving(config: &Config) -> Result<ServeLock, String> {
    let dir = &config.data_dir;
    create_private_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(format!(
                "another berth serve{} is using the data directory {}; stop it first, or give this one \
                 another --data-dir (admin commands work beside the running server)",
                if holder.is_empty() { String::new() } else { format!(" (process {holder})") },
                dir.display()
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(ServeLock { _file: file })
}

/// Creates the data directory owner-only, or makes an existing one owner-only.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        // Everything in it is ciphertext or sealed, but names, sizes and counts are not for others.
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory was readable by others; made it 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
    }
    Ok(())
}

/// Opens the data directory a server created, for the commands that work beside it; only
/// `serve` creates one, so a command run from the wrong folder says so instead of creating a
/// second registry nobody serves.
pub(crate) async fn open_existing(config: &Config) -> Result<Arc<Registry>, String> {
    let dir = &config.data_dir;
    if !dir.join("meta.db").is_file() || !dir.join("master.key").is_file() {
        return Err(format!(
            "there is no berth data directory at {}: point at the running server's with --data-dir (or \
             BERTH_DATA_DIR), or create one by starting `berth serve` there",
            dir.display()
        ));
    }
    // Not bootstrapped: the owner is whoever `serve` made it, whatever this command's
    // environment says (a different BERTH_BOOTSTRAP_ACCOUNT_ID must not add a second owner).
    open_registry(config).await
}

/// Opens (creating on first start) everything under the data directory, and bootstraps the
/// owner account if it does not exist yet.
pub(crate) async fn open(config: &Config) -> Result<Arc<Registry>, String> {
    let registry = open_registry(config).await?;

    let owner = config.bootstrap.account_id.parse().map_err(|e: berth_core::InvalidInput| e.to_string())?;
    let fixed = match (&config.bootstrap.access_key_id, &config.bootstrap.secret_access_key) {
        (Some(id), Some(secret)) => {
            Some(BootstrapCredentials { access_key_id: id.clone(), secret_access_key: secret.clone() })
        }
        _ => None,
    };
    if let Some(created) = registry.bootstrap(&owner, fixed).await.map_err(|e| e.to_string())? {
        write_credentials(&credentials_path(config), &created)?;
        tracing::info!(
            account = %owner,
            access_key_id = %created.access_key_id,
            file = %credentials_path(config).display(),
            "created the owner account; its root credentials are in the file"
        );
    }
    Ok(registry)
}

/// Opens (creating on first start) everything under the data directory.
async fn open_registry(config: &Config) -> Result<Arc<Registry>, String> {
    let dir = &config.data_dir;
    create_private_dir(dir)?;
    let registry = match (config.aws_kms(), config.pkcs11()?) {
        (Some((service, cache)), _) => {
            let keys = berth_kms::AwsKmsKeyService::connect(&service).await;
            let keys = Arc::new(berth_kms::CachedKeyService::new(keys, cache));
            Registry::open_embedded_with_keys(dir, config.registry_settings(), keys).await
        }
        (None, Some((hsm, cache))) => {
            let keys = berth_kms::LocalKeyService::open_with_hsm(&dir.join("kms"), &config.region, &hsm)
                .map_err(|e| format!("kms: {e}"))?;
            let keys = Arc::new(berth_kms::CachedKeyService::new(keys, cache));
            Registry::open_embedded_with_keys(dir, config.registry_settings(), keys).await
        }
        (None, None) => Registry::open_embedded(dir, config.registry_settings()).await,
    };
    let registry = registry.map_err(|e| e.to_string())?;
    check_key_service(config, &registry).await?;
    Ok(Arc::new(registry))
}

/// Refuses a key service that does not hold the keys of the existing `KMS` repositories: `local`
/// and `pkcs11` keep a record of each key under kms/, `aws-kms` keeps its keys in KMS, so a
/// switch between the two kinds would leave those repositories unreadable.
async fn check_key_service(config: &Config, registry: &Registry) -> Result<(), String> {
    let in_use = registry.customer_keys_in_use().await.map_err(|e| e.to_string())?;
    if in_use.is_empty() {
        return Ok(());
    }
    let records = berth_kms::LocalKeyService::open(&config.data_dir.join("kms"), &config.region)
        .map_err(|e| format!("kms: {e}"))?;
    let provider = config.kms.provider.as_str();
    let (stranded, made_under): (Vec<&String>, &str) = if provider == "aws-kms" {
        (in_use.iter().filter(|arn| records.has_record(arn)).collect(), "local or pkcs11")
    } else {
        (in_use.iter().filter(|arn| !records.has_record(arn)).collect(), "aws-kms")
    };
    match stranded.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} customer keys that guard KMS repositories are not in the {provider} key service (the first: \
             {first}); they were made under the {made_under} provider. Set kms.provider (BERTH_KMS_PROVIDER) \
             back to it, or delete those repositories before switching",
            stranded.len()
        )),
    }
}

/// A profile in the AWS credentials-file format.
pub(crate) fn credentials_profile(profile: &str, access_key_id: &str, secret: &str) -> String {
    format!("[{profile}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n")
}

/// Writes the credentials once, mode 0600, in the AWS credentials-file format.
fn write_credentials(path: &Path, credentials: &BootstrapCredentials) -> Result<(), String> {
    let text =
        credentials_profile(CREDENTIALS_PROFILE, &credentials.access_key_id, &credentials.secret_access_key);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The owner's access key id: from the environment if fixed there, else the credentials file.
pub(crate) fn bootstrap_access_key_id(config: &Config) -> Result<String, String> {
    if let Some(id) = &config.bootstrap.access_key_id {
        return Ok(id.clone());
    }
    let path = credentials_path(config);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e} (pass --access-key-id to name the key)", path.display()))?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == "aws_access_key_id")
        .map(|(_, v)| v.trim().to_owned())
        .ok_or_else(|| format!("{} has no aws_access_key_id", path.display()))
}
