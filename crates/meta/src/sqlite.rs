//! The embedded backend: one SQLite file in WAL mode with `synchronous = FULL`, so a committed
//! transaction survives a crash. Writes go through a single connection (SQLite has one writer
//! anyway, and this avoids lock-upgrade failures); reads use a pool of their own.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use berth_core::{AccountId, Digest, RepositoryName, RepositorySettings, StorageClass, Tag};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{
    AccessFacts, AccessKey, Account, BlobCommit, BlobRecord, CreationTemplate, EVENTS_JOB, Garbage,
    HeldContent, HeldManifest, ImageDetail, ImageFilter, Job, KeyRewrap, LayerParts, LifecycleImage,
    ManifestDeletion, ManifestRecord, MetaError, MetaStore, Millis, NewManifest, NewRepository, PREVIEW_JOB,
    Page, PreviewStatus, REMATCH_JOB, REWRAP_JOB, Repository, SCAN_JOB, StoredBytes, StoredEvent,
    StoredInventory, StoredLifecyclePolicy, StoredPreview, StoredScan, TagFilter, Upload, VulnerabilityFeed,
    VulnerabilitySource, WrappedKey, now_millis,
};

pub struct SqliteMetaStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn backend(e: sqlx::Error) -> MetaError {
    MetaError::Backend(Box::new(e))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// Maps a unique-constraint violation to `AlreadyExists(what)`, anything else to `Backend`.
fn exists_or_backend(what: String) -> impl FnOnce(sqlx::Error) -> MetaError {
    move |e| if is_unique_violation(&e) { MetaError::AlreadyExists(what) } else { backend(e) }
}

fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, MetaError> {
    text.parse().map_err(|_| MetaError::Malformed(format!("{what} {text:?}")))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A list of digests as one JSON array parameter, for set-based queries over `json_each`.
fn digest_array(digests: &[Digest]) -> String {
    serde_json::Value::Array(digests.iter().map(|d| serde_json::Value::String(d.to_string())).collect())
        .to_string()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns of a manifest record. (`sealed_annotations` is no longer written: annotations are
/// read from the manifest itself when a listing needs them.)
const MANIFEST_COLUMNS: &str = "digest, media_type, artifact_type, size, subject_digest, pushed_at, image_size, \
     last_pulled_at, storage_class, last_archived_at, last_activated_at";
/// How many columns [`MANIFEST_COLUMNS`] names: a query that selects more reads them from here.
const MANIFEST_COLUMN_COUNT: usize = 11;
/// The same columns, qualified for queries that join manifests as `m`.
const MANIFEST_COLUMNS_M: &str = "m.digest, m.media_type, m.artifact_type, m.size, m.subject_digest, \
     m.pushed_at, m.image_size, m.last_pulled_at, m.storage_class, m.last_archived_at, m.last_activated_at";

fn manifest_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ManifestRecord, MetaError> {
    let subject: Option<String> = row.get(4);
    Ok(ManifestRecord {
        digest: parse(row.get::<&str, _>(0), "digest")?,
        media_type: row.get(1),
        artifact_type: row.get(2),
        size: to_u64(row.get(3)),
        subject: subject.as_deref().map(|s| parse(s, "digest")).transpose()?,
        pushed_at: row.get(5),
        image_size: to_u64(row.get(6)),
        last_pulled_at: row.get(7),
        storage_class: StorageClass::from_api(row.get::<&str, _>(8))
            .ok_or_else(|| MetaError::Malformed(format!("storage class {:?}", row.get::<&str, _>(8))))?,
        last_archived_at: row.get(9),
        last_activated_at: row.get(10),
    })
}

/// A blob's columns for [`blob_from_row`], its wrapped keys as one JSON array of
/// `[key id, hex of the wrap]`; `b` names the blobs table.
const BLOB_COLUMNS: &str = "b.digest, b.size, b.location,
     (SELECT json_group_array(json_array(k.key_id, hex(k.wrapped_key))) FROM blob_keys k
      WHERE k.digest = b.digest)";

fn blob_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<BlobRecord, MetaError> {
    let keys: Vec<(String, String)> = serde_json::from_str(row.get::<&str, _>(3))
        .map_err(|e| MetaError::Malformed(format!("wrapped keys of a blob: {e}")))?;
    let keys = keys
        .into_iter()
        .map(|(key_id, wrapped)| {
            let wrapped =
                hex::decode(wrapped).map_err(|e| MetaError::Malformed(format!("a wrapped key: {e}")))?;
            Ok(WrappedKey { key_id, wrapped })
        })
        .collect::<Result<_, MetaError>>()?;
    Ok(BlobRecord {
        digest: parse(row.get::<&str, _>(0), "digest")?,
        size: to_u64(row.get(1)),
        location: row.get(2),
        keys,
    })
}

/// Records `blob`'s bytes and wrapped keys as `digest` unless that digest is stored; true if it
/// was not.
async fn insert_blob(
    tx: &mut sqlx::SqliteConnection,
    digest: &str,
    blob: &BlobRecord,
    created_at: Millis,
) -> Result<bool, MetaError> {
    let inserted = sqlx::query(
        "INSERT INTO blobs (digest, size, location, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(digest)
    .bind(to_i64(blob.size))
    .bind(&blob.location)
    .bind(created_at)
    .execute(&mut *tx)
    .await
    .map_err(backend)?
    .rows_affected()
        > 0;
    if inserted {
        for key in &blob.keys {
            sqlx::query(
                "INSERT INTO blob_keys (digest, key_id, wrapped_key, wrapped_at) VALUES (?, ?, ?, ?)",
            )
            .bind(digest)
            .bind(&key.key_id)
            .bind(&key.wrapped)
            .bind(now_millis())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
    }
    Ok(inserted)
}

const JOB_COLUMNS: &str = "id, kind, subject, run_after, attempts, claimed_by, lease_until, last_error";

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job, MetaError> {
    Ok(Job {
        id: row.get(0),
        kind: row.get(1),
        subject: row.get(2),
        run_after: row.get(3),
        attempts: u32::try_from(row.get::<i64, _>(4)).unwrap_or(u32::MAX),
        claimed_by: row.get(5),
        lease_until: row.get(6),
        last_error: row.get(7),
    })
}

/// Records an image event in the transaction of its change, and has it handed to the webhooks.
async fn record_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    repository_id: i64,
    at: Millis,
    action: &str,
    digest: &str,
    tag: Option<&str>,
    detail: Option<&str>,
) -> Result<(), MetaError> {
    sqlx::query(
        "INSERT INTO events (at, account_id, repository, action, digest, tag, detail)
         SELECT ?, account_id, name, ?, ?, ?, ? FROM repositories WHERE id = ?",
    )
    .bind(at)
    .bind(action)
    .bind(digest)
    .bind(tag)
    .bind(detail)
    .bind(repository_id)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    schedule(tx, EVENTS_JOB, "", at).await
}

/// Adds advisories under `source`, each replacing the one with its id.
async fn upsert_vulnerability_records(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    source: &str,
    records: &[(String, Vec<u8>)],
    at: Millis,
) -> Result<(), MetaError> {
    for (id, record) in records {
        sqlx::query(
            "INSERT INTO vulnerability_records (id, source, record, imported_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET source = excluded.source, record = excluded.record,
               imported_at = excluded.imported_at",
        )
        .bind(id)
        .bind(source)
        .bind(record)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

/// Schedules a job inside a transaction: a job already waiting keeps the earlier time; a job
/// being worked on is due again at `run_after` once its worker finishes or its lease runs out.
async fn schedule(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    kind: &str,
    subject: &str,
    run_after: Millis,
) -> Result<(), MetaError> {
    sqlx::query(
        "INSERT INTO jobs (kind, subject, run_after) VALUES (?, ?, ?)
         ON CONFLICT (kind, subject) DO UPDATE SET run_after = MIN(run_after, excluded.run_after),
           rescheduled = CASE WHEN claimed_by IS NULL THEN rescheduled ELSE 1 END",
    )
    .bind(kind)
    .bind(subject)
    .bind(run_after)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

const REPOSITORY_COLUMNS: &str = "id, account_id, name, created_at, tag_mutability, mutability_exclusions, \
     scan_on_push, encryption_type, kms_key";

/// The same columns, qualified for queries that join repositories as `r`.
const REPOSITORY_COLUMNS_R: &str = "r.id, r.account_id, r.name, r.created_at, r.tag_mutability, \
     r.mutability_exclusions, r.scan_on_push, r.encryption_type, r.kms_key";

fn repository_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Repository, MetaError> {
    let exclusions: String = row.get(5);
    Ok(Repository {
        id: row.get(0),
        account_id: parse(row.get::<&str, _>(1), "account id")?,
        name: parse(row.get::<&str, _>(2), "repository name")?,
        created_at: row.get(3),
        settings: RepositorySettings {
            tag_mutability: parse(row.get::<&str, _>(4), "tag mutability")?,
            mutability_exclusions: exclusions
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            scan_on_push: row.get(6),
            encryption: parse(row.get::<&str, _>(7), "encryption type")?,
            kms_key: row.get(8),
        },
    })
}

fn access_key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AccessKey, MetaError> {
    Ok(AccessKey {
        access_key_id: row.get(0),
        account_id: parse(row.get::<&str, _>(1), "account id")?,
        user_name: row.get(2),
        sealed_secret: row.get(3),
        active: row.get(4),
        created_at: row.get(5),
    })
}

/// Makes the database owner-only (0600) before SQLite opens it: a new file is created so, and
/// one an older version left readable by others is tightened, with its WAL and shared-memory
/// files. SQLite gives the WAL and shared-memory files it creates the database's mode.
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(metadata) = std::fs::metadata(&file) else { continue };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %file.display(), mode = format!("{:o}", mode & 0o777), "file was readable by others; made it 0600");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl SqliteMetaStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, MetaError> {
        private_files(path).map_err(|e| MetaError::Backend(Box::new(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // A connection to a local file does not go stale: the ping sqlx makes by default before
        // lending one out would double the round trips of every query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| MetaError::Backend(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend)?;
        Ok(Self { writer, reader })
    }

    /// The feed at `url`, or every feed, with how many advisories each holds now.
    async fn feeds(&self, url: Option<&str>) -> Result<Vec<VulnerabilityFeed>, MetaError> {
        type Row = (String, Option<String>, Option<String>, i64, Option<i64>, Option<String>, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT f.url, f.etag, f.last_modified, f.checked_at, f.changed_at, f.error,
               (SELECT COUNT(*) FROM vulnerability_records r WHERE r.source = f.url)
             FROM vulnerability_feeds f WHERE ?1 IS NULL OR f.url = ?1 ORDER BY f.url",
        )
        .bind(url)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(url, etag, last_modified, checked_at, changed_at, error, records)| VulnerabilityFeed {
                url,
                etag,
                last_modified,
                checked_at,
                changed_at,
                error,
                records: to_u64(records),
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl MetaStore for SqliteMetaStore {
    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn ping(&self) -> Result<(), MetaError> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(backend)?;
        Ok(())
    }

    async fn create_account(&self, account: &Account) -> Result<(), MetaError> {
        sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)")
            .bind(account.id.as_str())
            .bind(&account.name)
            .bind(account.created_at)
            .execute(&self.writer)
            .await
            .map_err(exists_or_backend(format!("account {}", account.id)))?;
        Ok(())
    }

    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, MetaError> {
        let row = sqlx::query("SELECT id, name, created_at FROM accounts WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok(Account {
                id: parse(r.get::<&str, _>(0), "account id")?,
                name: r.get(1),
                created_at: r.get(2),
            })
        })
        .transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, MetaError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM accounts ORDER BY id")
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(id, name, created_at)| Ok(Account { id: parse(&id, "account id")?, name, created_at }))
            .collect()
    }

    async fn create_user(&self, account: &AccountId, name: &str, path: &str) -> Result<(), MetaError> {
        sqlx::query("INSERT INTO users (account_id, name, path, created_at) VALUES (?, ?, ?, ?)")
            .bind(account.as_str())
            .bind(name)
            .bind(path)
            .bind(now_millis())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    MetaError::AlreadyExists(format!("user {name}"))
                } else if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
                    MetaError::NotFound(format!("account {account}"))
                } else {
                    backend(e)
                }
            })?;
        Ok(())
    }

    async fn list_users(&self, account: &AccountId) -> Result<Vec<(String, String)>, MetaError> {
        sqlx::query_as("SELECT name, path FROM users WHERE account_id = ? ORDER BY name")
            .bind(account.as_str())
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn user_path(&self, account: &AccountId, name: &str) -> Result<Option<String>, MetaError> {
        sqlx::query_scalar("SELECT path FROM users WHERE account_id = ? AND name = ?")
            .bind(account.as_str())
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    async fn delete_user(&self, account: &AccountId, name: &str) -> Result<bool, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM access_keys WHERE account_id = ? AND user_name = ?")
            .bind(account.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM user_policies WHERE account_id = ? AND user_name = ?")
            .bind(account.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = sqlx::query("DELETE FROM users WHERE account_id = ? AND name = ?")
            .bind(account.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn put_user_policy(
        &self,
        account: &AccountId,
        user: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO user_policies (account_id, user_name, policy_name, policy) VALUES (?, ?, ?, ?)
             ON CONFLICT (account_id, user_name, policy_name) DO UPDATE SET policy = excluded.policy",
        )
        .bind(account.as_str())
        .bind(user)
        .bind(policy_name)
        .bind(policy)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
                MetaError::NotFound(format!("user {user}"))
            } else {
                backend(e)
            }
        })?;
        Ok(())
    }

    async fn user_policies(
        &self,
        account: &AccountId,
        user: &str,
    ) -> Result<Vec<(String, String)>, MetaError> {
        sqlx::query_as(
            "SELECT policy_name, policy FROM user_policies WHERE account_id = ? AND user_name = ? ORDER BY policy_name",
        )
        .bind(account.as_str())
        .bind(user)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)
    }

    async fn delete_user_policy(
        &self,
        account: &AccountId,
        user: &str,
        policy_name: &str,
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "DELETE FROM user_policies WHERE account_id = ? AND user_name = ? AND policy_name = ?",
        )
        .bind(account.as_str())
        .bind(user)
        .bind(policy_name)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_access_keys(&self, account: &AccountId) -> Result<Vec<AccessKey>, MetaError> {
        let rows = sqlx::query(
            "SELECT access_key_id, account_id, user_name, sealed_secret, active, created_at
             FROM access_keys WHERE account_id = ? ORDER BY access_key_id",
        )
        .bind(account.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(access_key_from_row).collect()
    }

    async fn create_access_key(&self, key: &AccessKey) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, account_id, user_name, sealed_secret, active, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.access_key_id)
        .bind(key.account_id.as_str())
        .bind(&key.user_name)
        .bind(&key.sealed_secret)
        .bind(key.active)
        .bind(key.created_at)
        .execute(&self.writer)
        .await
        .map_err(exists_or_backend(format!("access key {}", key.access_key_id)))?;
        Ok(())
    }

    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, MetaError> {
        let row = sqlx::query(
            "SELECT access_key_id, account_id, user_name, sealed_secret, active, created_at
             FROM access_keys WHERE access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(access_key_from_row).transpose()
    }

    async fn set_access_key_active(&self, access_key_id: &str, active: bool) -> Result<(), MetaError> {
        let done = sqlx::query("UPDATE access_keys SET active = ? WHERE access_key_id = ?")
            .bind(active)
            .bind(access_key_id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("access key {access_key_id}")));
        }
        Ok(())
    }

    async fn delete_access_key(&self, access_key_id: &str) -> Result<(), MetaError> {
        let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = ?")
            .bind(access_key_id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("access key {access_key_id}")));
        }
        Ok(())
    }

    async fn put_secret_once(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, MetaError> {
        sqlx::query("INSERT INTO sealed_secrets (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(sealed)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(backend)
    }

    async fn repository_by_id(&self, repository_id: i64) -> Result<Option<Repository>, MetaError> {
        let row = sqlx::query(&format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE id = ?"))
            .bind(repository_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.as_ref().map(repository_from_row).transpose()
    }

    async fn get_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<Option<Repository>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE account_id = ? AND name = ?"
        ))
        .bind(account.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(repository_from_row).transpose()
    }

    async fn create_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
        new: &NewRepository<'_>,
    ) -> Result<Repository, MetaError> {
        let settings = new.settings;
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE id = ?")
            .bind(account.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(MetaError::NotFound(format!("account {account}")));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO repositories (account_id, name, created_at, tag_mutability, mutability_exclusions,
                                       scan_on_push, encryption_type, kms_key)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(account.as_str())
        .bind(name.as_str())
        .bind(now_millis())
        .bind(settings.tag_mutability.as_str())
        .bind(settings.mutability_exclusions.join(","))
        .bind(settings.scan_on_push)
        .bind(settings.encryption.as_str())
        .bind(&settings.kms_key)
        .fetch_one(&mut *tx)
        .await
        .map_err(exists_or_backend(format!("repository {account}/{name}")))?;
        for (key, value) in new.tags {
            sqlx::query("INSERT INTO repository_tags (repository_id, key, value) VALUES (?, ?, ?)")
                .bind(id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        if let Some(policy) = new.policy {
            sqlx::query(
                "INSERT INTO repository_policies (repository_id, policy, updated_at) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(policy)
            .bind(now_millis())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        if let Some(policy) = new.lifecycle_policy {
            sqlx::query(
                "INSERT INTO lifecycle_policies (repository_id, policy, updated_at) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(policy)
            .bind(now_millis())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        let row = sqlx::query(&format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE id = ?"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        repository_from_row(&row)
    }

    async fn delete_repository(&self, repository_id: i64, force: bool) -> Result<Vec<String>, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if !force {
            let holds: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository_id = ? LIMIT 1")
                    .bind(repository_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            if holds.is_some() {
                return Err(MetaError::NotEmpty(format!("repository {repository_id}")));
            }
        }
        let uploads: Vec<String> = sqlx::query_scalar("SELECT id FROM uploads WHERE repository_id = ?")
            .bind(repository_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        // Every image goes with the repository: one DELETE event each, in digest order.
        let gone = sqlx::query(
            "INSERT INTO events (at, account_id, repository, action, digest)
             SELECT ?, r.account_id, r.name, 'DELETE', m.digest FROM manifests m
             JOIN repositories r ON r.id = m.repository_id WHERE m.repository_id = ? ORDER BY m.digest",
        )
        .bind(now_millis())
        .bind(repository_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if gone > 0 {
            schedule(&mut tx, EVENTS_JOB, "", now_millis()).await?;
        }
        // Children first: manifests' references and tags go with the manifests.
        for sql in [
            "DELETE FROM repository_policies WHERE repository_id = ?",
            "DELETE FROM tags WHERE repository_id = ?",
            "DELETE FROM manifest_references WHERE repository_id = ?",
            "DELETE FROM manifests WHERE repository_id = ?",
            "DELETE FROM repository_blobs WHERE repository_id = ?",
            "DELETE FROM uploads WHERE repository_id = ?",
            "DELETE FROM repository_tags WHERE repository_id = ?",
            "DELETE FROM repositories WHERE id = ?",
        ] {
            sqlx::query(sql).bind(repository_id).execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(uploads)
    }

    async fn update_repository_settings(
        &self,
        repository_id: i64,
        settings: &RepositorySettings,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE repositories SET tag_mutability = ?, mutability_exclusions = ?, scan_on_push = ?,
                                     encryption_type = ?, kms_key = ? WHERE id = ?",
        )
        .bind(settings.tag_mutability.as_str())
        .bind(settings.mutability_exclusions.join(","))
        .bind(settings.scan_on_push)
        .bind(settings.encryption.as_str())
        .bind(&settings.kms_key)
        .bind(repository_id)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn repository_tags(&self, repository_id: i64) -> Result<Vec<(String, String)>, MetaError> {
        sqlx::query_as("SELECT key, value FROM repository_tags WHERE repository_id = ? ORDER BY key")
            .bind(repository_id)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn tag_repository(
        &self,
        repository_id: i64,
        tags: &[(String, String)],
        max: usize,
    ) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO repository_tags (repository_id, key, value) VALUES (?, ?, ?)
                 ON CONFLICT (repository_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(repository_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repository_tags WHERE repository_id = ?")
            .bind(repository_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if usize::try_from(count).unwrap_or(usize::MAX) > max {
            return Err(MetaError::LimitExceeded(format!("a repository can have at most {max} tags")));
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn untag_repository(&self, repository_id: i64, keys: &[String]) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        for key in keys {
            sqlx::query("DELETE FROM repository_tags WHERE repository_id = ? AND key = ?")
                .bind(repository_id)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn access_facts(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<AccessFacts, MetaError> {
        // One row whether or not the repository exists: the left joins leave its columns NULL.
        let row = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS_R}, p.policy,
                    (SELECT policy FROM registry_policies WHERE account_id = ?1)
             FROM (SELECT 1) AS one
             LEFT JOIN repositories r ON r.account_id = ?1 AND r.name = ?2
             LEFT JOIN repository_policies p ON p.repository_id = r.id"
        ))
        .bind(account.as_str())
        .bind(name.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        let exists = row.get::<Option<i64>, _>(0).is_some();
        Ok(AccessFacts {
            repository: if exists { Some(repository_from_row(&row)?) } else { None },
            repository_policy: row.get(9),
            registry_policy: row.get(10),
        })
    }

    async fn repository_policy(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<Option<String>, MetaError> {
        sqlx::query_scalar(
            "SELECT p.policy FROM repository_policies p JOIN repositories r ON r.id = p.repository_id
             WHERE r.account_id = ? AND r.name = ?",
        )
        .bind(account.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)
    }

    async fn set_repository_policy(
        &self,
        repository_id: i64,
        policy: Option<&str>,
    ) -> Result<Option<String>, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT policy FROM repository_policies WHERE repository_id = ?")
                .bind(repository_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        match policy {
            Some(text) => sqlx::query(
                "INSERT INTO repository_policies (repository_id, policy, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (repository_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
            )
            .bind(repository_id)
            .bind(text)
            .bind(now_millis()),
            None => sqlx::query("DELETE FROM repository_policies WHERE repository_id = ?").bind(repository_id),
        }
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(previous)
    }

    async fn registry_policy(&self, account: &AccountId) -> Result<Option<String>, MetaError> {
        sqlx::query_scalar("SELECT policy FROM registry_policies WHERE account_id = ?")
            .bind(account.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    async fn set_registry_policy(
        &self,
        account: &AccountId,
        policy: Option<&str>,
    ) -> Result<Option<String>, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT policy FROM registry_policies WHERE account_id = ?")
                .bind(account.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        match policy {
            Some(text) => sqlx::query(
                "INSERT INTO registry_policies (account_id, policy, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (account_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
            )
            .bind(account.as_str())
            .bind(text)
            .bind(now_millis()),
            None => sqlx::query("DELETE FROM registry_policies WHERE account_id = ?").bind(account.as_str()),
        }
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(previous)
    }

    async fn registry_scanning(&self, account: &AccountId) -> Result<Option<String>, MetaError> {
        sqlx::query_scalar("SELECT configuration FROM registry_scanning WHERE account_id = ?")
            .bind(account.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    async fn set_registry_scanning(&self, account: &AccountId, configuration: &str) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO registry_scanning (account_id, configuration, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (account_id) DO UPDATE SET configuration = excluded.configuration,
               updated_at = excluded.updated_at",
        )
        .bind(account.as_str())
        .bind(configuration)
        .bind(now_millis())
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn put_creation_template(
        &self,
        account: &AccountId,
        template: &CreationTemplate,
        replace: bool,
    ) -> Result<(), MetaError> {
        let t = template;
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM creation_templates WHERE account_id = ? AND prefix = ?")
                .bind(account.as_str())
                .bind(&t.prefix)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        match (exists.is_some(), replace) {
            (true, false) => return Err(MetaError::AlreadyExists(format!("template {}", t.prefix))),
            (false, true) => return Err(MetaError::NotFound(format!("template {}", t.prefix))),
            _ => {}
        }
        sqlx::query("DELETE FROM creation_template_tags WHERE account_id = ? AND prefix = ?")
            .bind(account.as_str())
            .bind(&t.prefix)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO creation_templates (account_id, prefix, description, tag_mutability, mutability_exclusions,
                 encryption_type, kms_key, repository_policy, lifecycle_policy, applied_for, custom_role_arn,
                 created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (account_id, prefix) DO UPDATE SET description = excluded.description,
                 tag_mutability = excluded.tag_mutability, mutability_exclusions = excluded.mutability_exclusions,
                 encryption_type = excluded.encryption_type, kms_key = excluded.kms_key,
                 repository_policy = excluded.repository_policy, lifecycle_policy = excluded.lifecycle_policy,
                 applied_for = excluded.applied_for, custom_role_arn = excluded.custom_role_arn,
                 updated_at = excluded.updated_at",
        )
        .bind(account.as_str())
        .bind(&t.prefix)
        .bind(&t.description)
        .bind(t.settings.tag_mutability.as_str())
        .bind(t.settings.mutability_exclusions.join(","))
        .bind(t.settings.encryption.as_str())
        .bind(&t.settings.kms_key)
        .bind(&t.repository_policy)
        .bind(&t.lifecycle_policy)
        .bind(t.applied_for.join(","))
        .bind(&t.custom_role_arn)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        for (key, value) in &t.resource_tags {
            sqlx::query(
                "INSERT INTO creation_template_tags (account_id, prefix, key, value) VALUES (?, ?, ?, ?)",
            )
            .bind(account.as_str())
            .bind(&t.prefix)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn creation_templates(&self, account: &AccountId) -> Result<Vec<CreationTemplate>, MetaError> {
        let rows = sqlx::query(
            "SELECT prefix, description, tag_mutability, mutability_exclusions, encryption_type, kms_key,
                    repository_policy, lifecycle_policy, applied_for, custom_role_arn, created_at, updated_at
             FROM creation_templates WHERE account_id = ? ORDER BY prefix",
        )
        .bind(account.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let tags: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT prefix, key, value FROM creation_template_tags WHERE account_id = ? ORDER BY prefix, key",
        )
        .bind(account.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let split =
            |text: String| text.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>();
        rows.iter()
            .map(|row| {
                let prefix: String = row.get(0);
                Ok(CreationTemplate {
                    description: row.get(1),
                    settings: RepositorySettings {
                        tag_mutability: parse(row.get::<&str, _>(2), "tag mutability")?,
                        mutability_exclusions: split(row.get(3)),
                        scan_on_push: false,
                        encryption: parse(row.get::<&str, _>(4), "encryption type")?,
                        kms_key: row.get(5),
                    },
                    resource_tags: tags
                        .iter()
                        .filter(|(p, _, _)| p == &prefix)
                        .map(|(_, k, v)| (k.clone(), v.clone()))
                        .collect(),
                    repository_policy: row.get(6),
                    lifecycle_policy: row.get(7),
                    applied_for: split(row.get(8)),
                    custom_role_arn: row.get(9),
                    created_at: row.get(10),
                    updated_at: row.get(11),
                    prefix,
                })
            })
            .collect()
    }

    async fn delete_creation_template(&self, account: &AccountId, prefix: &str) -> Result<bool, MetaError> {
        let done = sqlx::query("DELETE FROM creation_templates WHERE account_id = ? AND prefix = ?")
            .bind(account.as_str())
            .bind(prefix)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn ensure_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<Repository, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE id = ?")
            .bind(account.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(MetaError::NotFound(format!("account {account}")));
        }
        sqlx::query(
            "INSERT INTO repositories (account_id, name, created_at) VALUES (?, ?, ?)
             ON CONFLICT (account_id, name) DO NOTHING",
        )
        .bind(account.as_str())
        .bind(name.as_str())
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let row = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE account_id = ? AND name = ?"
        ))
        .bind(account.as_str())
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        repository_from_row(&row)
    }

    async fn list_repositories(
        &self,
        accounts: &[AccountId],
        page: Page<'_>,
    ) -> Result<Vec<Repository>, MetaError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; accounts.len()].join(", ");
        let sql = format!(
            "SELECT {REPOSITORY_COLUMNS} FROM repositories
             WHERE account_id IN ({placeholders}) AND (account_id || '/' || name) > ?
             ORDER BY account_id || '/' || name LIMIT ?"
        );
        let mut query = sqlx::query(&sql);
        for account in accounts {
            query = query.bind(account.as_str());
        }
        let rows = query
            .bind(page.last.unwrap_or(""))
            .bind(i64::from(page.limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.iter().map(repository_from_row).collect()
    }

    async fn held_content(
        &self,
        repository_id: i64,
        blobs: &[Digest],
        manifests: &[Digest],
    ) -> Result<HeldContent, MetaError> {
        let mut held = HeldContent::default();
        if !blobs.is_empty() {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT b.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repository_id = ? AND rb.digest IN (SELECT value FROM json_each(?))",
            )
            .bind(repository_id)
            .bind(digest_array(blobs))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
            for (digest, size) in rows {
                held.blobs.insert(parse(&digest, "digest")?, to_u64(size));
            }
        }
        if !manifests.is_empty() {
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT digest, size, image_size FROM manifests
                 WHERE repository_id = ? AND digest IN (SELECT value FROM json_each(?))",
            )
            .bind(repository_id)
            .bind(digest_array(manifests))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
            for (digest, size, image_size) in rows {
                let manifest = HeldManifest { size: to_u64(size), image_size: to_u64(image_size) };
                held.manifests.insert(parse(&digest, "digest")?, manifest);
            }
        }
        Ok(held)
    }

    async fn repository_blob(
        &self,
        repository_id: i64,
        digest: &Digest,
    ) -> Result<Option<BlobRecord>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {BLOB_COLUMNS} FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
             WHERE rb.repository_id = ? AND rb.digest = ?"
        ))
        .bind(repository_id)
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(blob_from_row).transpose()
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<BlobRecord>, MetaError> {
        let row = sqlx::query(&format!("SELECT {BLOB_COLUMNS} FROM blobs b WHERE b.digest = ?"))
            .bind(digest.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.as_ref().map(blob_from_row).transpose()
    }

    async fn blob_in_use(&self, repository_id: i64, digest: &Digest) -> Result<bool, MetaError> {
        let digest = digest.to_string();
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM manifest_references WHERE repository_id = ? AND child_digest = ?
             UNION ALL SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ? LIMIT 1",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(repository_id)
        .bind(&digest)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        Ok(used.is_some())
    }

    async fn link_blob(&self, repository_id: i64, digest: &Digest) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at)
             SELECT ?, digest, ? FROM blobs WHERE digest = ?
             ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repository_id)
        .bind(now_millis())
        .bind(digest.to_string())
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_blob_key(
        &self,
        digest: &Digest,
        location: &str,
        key: &WrappedKey,
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "INSERT INTO blob_keys (digest, key_id, wrapped_key, wrapped_at)
             SELECT digest, ?, ?, ? FROM blobs WHERE digest = ? AND location = ?
             ON CONFLICT (digest, key_id) DO UPDATE SET wrapped_at = excluded.wrapped_at",
        )
        .bind(&key.key_id)
        .bind(&key.wrapped)
        .bind(now_millis())
        .bind(digest.to_string())
        .bind(location)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let stored: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = ? AND location = ?")
            .bind(digest.to_string())
            .bind(location)
            .fetch_optional(&self.writer)
            .await
            .map_err(backend)?;
        Ok(stored.is_some())
    }

    async fn touch_blob_key(&self, digest: &Digest, key_id: &str) -> Result<bool, MetaError> {
        let done = sqlx::query("UPDATE blob_keys SET wrapped_at = ? WHERE digest = ? AND key_id = ?")
            .bind(now_millis())
            .bind(digest.to_string())
            .bind(key_id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn drop_unneeded_wraps(
        &self,
        before: Millis,
        registry_key: &str,
        limit: u32,
        dry_run: bool,
    ) -> Result<u64, MetaError> {
        // A repository's key is its kms_key under KMS or KMS_DSSE, else the registry's own (as
        // the registry's guarding_key decides). A wrap is unneeded when the blob is held, but by
        // no repository under the wrap's key; wraps of blobs nothing holds go with the blob.
        const UNNEEDED: &str = "blob_keys.wrapped_at < ?1
             AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blob_keys.digest)
             AND NOT EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                 WHERE rb.digest = blob_keys.digest
                   AND CASE WHEN r.encryption_type IN ('KMS', 'KMS_DSSE') AND r.kms_key IS NOT NULL
                            THEN r.kms_key ELSE ?2 END = blob_keys.key_id)";
        let count = if dry_run {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM blob_keys WHERE {UNNEEDED}"))
                .bind(before)
                .bind(registry_key)
                .fetch_one(&self.reader)
                .await
                .map_err(backend)?
        } else {
            let done = sqlx::query(&format!(
                "DELETE FROM blob_keys WHERE (digest, key_id) IN
                     (SELECT digest, key_id FROM blob_keys WHERE {UNNEEDED} LIMIT ?3)"
            ))
            .bind(before)
            .bind(registry_key)
            .bind(i64::from(limit))
            .execute(&self.writer)
            .await
            .map_err(backend)?;
            i64::try_from(done.rows_affected()).unwrap_or(i64::MAX)
        };
        Ok(to_u64(count))
    }

    async fn key_wraps(
        &self,
        key_id: &str,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<(Digest, Vec<u8>)>, MetaError> {
        let rows = sqlx::query(
            "SELECT digest, wrapped_key FROM blob_keys WHERE key_id = ? AND digest > ? ORDER BY digest LIMIT ?",
        )
        .bind(key_id)
        .bind(after.map(ToString::to_string).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| Ok((parse(r.get::<&str, _>(0), "digest")?, r.get(1)))).collect()
    }

    async fn customer_keys_in_use(&self) -> Result<Vec<String>, MetaError> {
        sqlx::query_scalar(
            "SELECT DISTINCT kms_key FROM repositories
             WHERE encryption_type IN ('KMS', 'KMS_DSSE') AND kms_key IS NOT NULL ORDER BY kms_key",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)
    }

    async fn count_key_wraps(&self, key_id: &str) -> Result<u64, MetaError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blob_keys WHERE key_id = ?")
            .bind(key_id)
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(to_u64(count))
    }

    async fn replace_blob_key(
        &self,
        digest: &Digest,
        key_id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE blob_keys SET wrapped_key = ? WHERE digest = ? AND key_id = ? AND wrapped_key = ?",
        )
        .bind(new)
        .bind(digest.to_string())
        .bind(key_id)
        .bind(old)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn start_key_rewrap(&self, key_id: &str, at: Millis) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO key_rewraps (key_id, requested_at) VALUES (?, ?)
             ON CONFLICT (key_id) DO UPDATE SET requested_at = excluded.requested_at, after_digest = NULL,
               rewrapped = 0, finished_at = NULL",
        )
        .bind(key_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        schedule(&mut tx, REWRAP_JOB, key_id, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn advance_key_rewrap(
        &self,
        key_id: &str,
        requested_at: Millis,
        after: Option<&Digest>,
        rewrapped: u64,
        finished_at: Option<Millis>,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE key_rewraps SET after_digest = ?, rewrapped = rewrapped + ?, finished_at = ?
             WHERE key_id = ? AND requested_at = ?",
        )
        .bind(after.map(ToString::to_string))
        .bind(to_i64(rewrapped))
        .bind(finished_at)
        .bind(key_id)
        .bind(requested_at)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn key_rewrap(&self, key_id: &str) -> Result<Option<KeyRewrap>, MetaError> {
        let row = sqlx::query(
            "SELECT key_id, requested_at, after_digest, rewrapped, finished_at FROM key_rewraps WHERE key_id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(KeyRewrap {
                key_id: r.get(0),
                requested_at: r.get(1),
                after: r.get::<Option<&str>, _>(2).map(|d| parse(d, "digest")).transpose()?,
                rewrapped: to_u64(r.get(3)),
                finished_at: r.get(4),
            })
        })
        .transpose()
    }

    async fn unlink_blob(&self, repository_id: i64, digest: &Digest) -> Result<bool, MetaError> {
        let done = sqlx::query("DELETE FROM repository_blobs WHERE repository_id = ? AND digest = ?")
            .bind(repository_id)
            .bind(digest.to_string())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn commit_blob(
        &self,
        repository_id: i64,
        upload_id: &str,
        blob: &BlobRecord,
    ) -> Result<BlobCommit, MetaError> {
        let digest = blob.digest.to_string();
        let now = now_millis();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let inserted = insert_blob(&mut tx, &digest, blob, now).await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES (?, ?, ?)
             ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let stored = sqlx::query(&format!("SELECT {BLOB_COLUMNS} FROM blobs b WHERE b.digest = ?"))
            .bind(&digest)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        let stored = blob_from_row(&stored)?;
        Ok(if inserted { BlobCommit::Stored(stored) } else { BlobCommit::AlreadyStored(stored) })
    }

    async fn create_upload(&self, upload: &Upload, max_open_in_account: u64) -> Result<(), MetaError> {
        // One statement: the count and the insert see the same state under the one writer.
        let inserted = sqlx::query(
            "INSERT INTO uploads (id, repository_id, length, key_id, wrapped_key, created_at, updated_at,
                                  last_part_size, short_part_size)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
             WHERE (SELECT COUNT(*) FROM uploads u JOIN repositories r ON r.id = u.repository_id
                    WHERE r.account_id = (SELECT account_id FROM repositories WHERE id = ?)) < ?",
        )
        .bind(&upload.id)
        .bind(upload.repository_id)
        .bind(to_i64(upload.length))
        .bind(&upload.key_id)
        .bind(&upload.wrapped_key)
        .bind(upload.created_at)
        .bind(upload.created_at)
        .bind(upload.parts.last.map(to_i64))
        .bind(upload.parts.short.map(to_i64))
        .bind(upload.repository_id)
        .bind(to_i64(max_open_in_account))
        .execute(&self.writer)
        .await
        .map_err(backend)?
        .rows_affected();
        if inserted == 0 {
            return Err(MetaError::LimitExceeded(format!(
                "the account already has {max_open_in_account} uploads open"
            )));
        }
        Ok(())
    }

    async fn get_upload(&self, repository_id: i64, id: &str) -> Result<Option<Upload>, MetaError> {
        let row = sqlx::query(
            "SELECT id, repository_id, length, key_id, wrapped_key, created_at, last_part_size, short_part_size
             FROM uploads WHERE id = ? AND repository_id = ?",
        )
        .bind(id)
        .bind(repository_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        Ok(row.map(|r| Upload {
            id: r.get(0),
            repository_id: r.get(1),
            length: to_u64(r.get(2)),
            key_id: r.get(3),
            wrapped_key: r.get(4),
            created_at: r.get(5),
            parts: LayerParts {
                last: r.get::<Option<i64>, _>(6).map(to_u64),
                short: r.get::<Option<i64>, _>(7).map(to_u64),
            },
        }))
    }

    async fn advance_upload(
        &self,
        id: &str,
        expected: u64,
        length: u64,
        parts: LayerParts,
    ) -> Result<(), MetaError> {
        let done = sqlx::query(
            "UPDATE uploads SET length = ?, last_part_size = ?, short_part_size = ?, updated_at = ?
             WHERE id = ? AND length = ?",
        )
        .bind(to_i64(length))
        .bind(parts.last.map(to_i64))
        .bind(parts.short.map(to_i64))
        .bind(now_millis())
        .bind(id)
        .bind(to_i64(expected))
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(MetaError::UploadMoved { expected });
        }
        Ok(())
    }

    async fn delete_upload(&self, id: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn stale_uploads(&self, before: Millis, limit: u32) -> Result<Vec<String>, MetaError> {
        sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?")
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn put_manifest(
        &self,
        repository_id: i64,
        manifest: &NewManifest,
        tag: Option<&Tag>,
        tag_may_move: bool,
        max_tags: usize,
    ) -> Result<bool, MetaError> {
        let record = &manifest.record;
        let digest = record.digest.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let mut tag_moves = false;
        if let Some(tag) = tag {
            let points_at: Option<String> =
                sqlx::query_scalar("SELECT manifest_digest FROM tags WHERE repository_id = ? AND name = ?")
                    .bind(repository_id)
                    .bind(tag.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            if points_at.is_some() && !tag_may_move {
                return Err(MetaError::AlreadyExists(format!("tag {tag}")));
            }
            tag_moves = points_at.as_deref() != Some(digest.as_str());
            if tag_moves {
                let tags: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM tags WHERE repository_id = ? AND manifest_digest = ?",
                )
                .bind(repository_id)
                .bind(&digest)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
                if to_u64(tags) >= max_tags as u64 {
                    return Err(MetaError::LimitExceeded(format!(
                        "the image {digest} already has {tags} tags, the most an image may have"
                    )));
                }
            }
        }

        // One set-based query per kind, so that a long manifest does not hold the one writer for
        // a query per descriptor.
        let blobs = digest_array(&manifest.blobs);
        let manifests = digest_array(&manifest.manifests);
        let mut missing = [Vec::<String>::new(), Vec::new()];
        for (found, (digests, table)) in
            missing.iter_mut().zip([(&blobs, "repository_blobs"), (&manifests, "manifests")])
        {
            *found = sqlx::query_scalar(&format!(
                "SELECT DISTINCT j.value FROM json_each(?) j
                 WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE repository_id = ? AND digest = j.value)"
            ))
            .bind(digests)
            .bind(repository_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        }
        let [missing_blobs, missing_manifests] = missing;
        if !missing_blobs.is_empty() || !missing_manifests.is_empty() {
            let digests = |texts: Vec<String>| -> Result<Vec<Digest>, MetaError> {
                texts.iter().map(|t| parse(t, "digest")).collect()
            };
            return Err(MetaError::MissingReferences {
                blobs: digests(missing_blobs)?,
                manifests: digests(missing_manifests)?,
            });
        }

        // The manifest's own bytes are a blob the repository now holds.
        let content = &manifest.content;
        if !manifest.content_written {
            let stored: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = ?")
                .bind(&digest)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            if stored.is_none() {
                return Err(MetaError::NotFound(format!("the stored content of {digest}")));
            }
        }
        let content_stored = insert_blob(&mut tx, &digest, content, record.pushed_at).await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES (?, ?, ?)
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(record.pushed_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;

        // Pushing an archived image again restores it, as ECR does.
        let manifest_changed = sqlx::query(&format!(
            "INSERT INTO manifests (repository_id, sealed_annotations, {MANIFEST_COLUMNS})
             VALUES (?, x'', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (repository_id, digest) DO UPDATE SET
               storage_class = excluded.storage_class, last_activated_at = excluded.pushed_at
             WHERE manifests.storage_class <> excluded.storage_class"
        ))
        .bind(repository_id)
        .bind(&digest)
        .bind(&record.media_type)
        .bind(&record.artifact_type)
        .bind(to_i64(record.size))
        .bind(record.subject.as_ref().map(ToString::to_string))
        .bind(record.pushed_at)
        .bind(to_i64(record.image_size))
        .bind(record.last_pulled_at)
        .bind(record.storage_class.as_str())
        .bind(record.last_archived_at)
        .bind(record.last_activated_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0;
        for (children, is_manifest) in [(&blobs, false), (&manifests, true)] {
            sqlx::query(
                "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, child_is_manifest)
                 SELECT ?, ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
            )
            .bind(repository_id)
            .bind(&digest)
            .bind(is_manifest)
            .bind(children)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (repository_id, name) DO UPDATE SET
                   manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at",
            )
            .bind(repository_id)
            .bind(tag.as_str())
            .bind(&digest)
            .bind(record.pushed_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        if manifest_changed || tag_moves {
            let tag = tag.map(Tag::as_str);
            record_event(&mut tx, repository_id, record.pushed_at, "PUSH", &digest, tag, None).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(content_stored)
    }

    async fn get_manifest(
        &self,
        repository_id: i64,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repository_id = ? AND digest = ?"
        ))
        .bind(repository_id)
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(manifest_from_row).transpose()
    }

    async fn resolve_tag(&self, repository_id: i64, tag: &Tag) -> Result<Option<ManifestRecord>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {MANIFEST_COLUMNS_M}
             FROM tags t JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
             WHERE t.repository_id = ? AND t.name = ?"
        ))
        .bind(repository_id)
        .bind(tag.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(manifest_from_row).transpose()
    }

    async fn list_tags(&self, repository_id: i64, page: Page<'_>) -> Result<Vec<String>, MetaError> {
        // One row holding the page joined by newlines, which no tag can contain: sqlx hands each
        // row over from its worker thread separately, and a 10,000-tag page as 10,000 rows cost
        // more in those hand-overs than in SQLite.
        let joined: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(name, char(10) ORDER BY name)
             FROM (SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?)",
        )
        .bind(repository_id)
        .bind(page.last.unwrap_or(""))
        .bind(i64::from(page.limit))
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(joined.map(|names| names.split('\n').map(str::to_owned).collect()).unwrap_or_default())
    }

    async fn describe_images(
        &self,
        repository_id: i64,
        filter: ImageFilter,
        page: Page<'_>,
    ) -> Result<Vec<ImageDetail>, MetaError> {
        let tagged = "EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)";
        let by_tags = match filter.tags {
            TagFilter::Any => "1".to_owned(),
            TagFilter::Tagged => tagged.to_owned(),
            TagFilter::Untagged => format!("NOT {tagged}"),
        };
        let rows = sqlx::query(&format!(
            "SELECT {MANIFEST_COLUMNS_M},
                    (SELECT group_concat(name, char(10)) FROM (SELECT t.name FROM tags t
                      WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest ORDER BY t.name))
             FROM manifests m WHERE m.repository_id = ? AND m.digest > ? AND {by_tags}
               AND (? IS NULL OR m.storage_class = ?)
             ORDER BY m.digest LIMIT ?"
        ))
        .bind(repository_id)
        .bind(page.last.unwrap_or(""))
        .bind(filter.storage_class.map(StorageClass::as_str))
        .bind(filter.storage_class.map(StorageClass::as_str))
        .bind(i64::from(page.limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let tags: Option<String> = row.get(MANIFEST_COLUMN_COUNT);
                Ok(ImageDetail {
                    record: manifest_from_row(row)?,
                    tags: tags.map(|t| t.split('\n').map(str::to_owned).collect()).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn list_images(
        &self,
        repository_id: i64,
        filter: ImageFilter,
        after: Option<(&Digest, &str)>,
        limit: u32,
    ) -> Result<Vec<(Digest, Option<String>)>, MetaError> {
        let by_tags = match filter.tags {
            TagFilter::Any => "1",
            TagFilter::Tagged => "t.name IS NOT NULL",
            TagFilter::Untagged => "t.name IS NULL",
        };
        let (after_digest, after_tag) = after.map(|(d, t)| (d.to_string(), t.to_owned())).unwrap_or_default();
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT m.digest, t.name FROM manifests m
             LEFT JOIN tags t ON t.repository_id = m.repository_id AND t.manifest_digest = m.digest
             WHERE m.repository_id = ? AND {by_tags} AND (? IS NULL OR m.storage_class = ?)
               AND (m.digest, COALESCE(t.name, '')) > (?, ?)
             ORDER BY m.digest, COALESCE(t.name, '') LIMIT ?"
        ))
        .bind(repository_id)
        .bind(filter.storage_class.map(StorageClass::as_str))
        .bind(filter.storage_class.map(StorageClass::as_str))
        .bind(after_digest)
        .bind(after_tag)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(|(digest, tag)| Ok((parse(&digest, "digest")?, tag))).collect()
    }

    async fn manifest_tags(&self, repository_id: i64, digest: &Digest) -> Result<Vec<String>, MetaError> {
        sqlx::query_scalar(
            "SELECT name FROM tags WHERE repository_id = ? AND manifest_digest = ? ORDER BY name",
        )
        .bind(repository_id)
        .bind(digest.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)
    }

    async fn record_pull(&self, repository_id: i64, digest: &Digest, at: Millis) -> Result<(), MetaError> {
        sqlx::query("UPDATE manifests SET last_pulled_at = ? WHERE repository_id = ? AND digest = ?")
            .bind(at)
            .bind(repository_id)
            .bind(digest.to_string())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn referrers(
        &self,
        repository_id: i64,
        subject: &Digest,
    ) -> Result<Vec<ManifestRecord>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repository_id = ? AND subject_digest = ?
             ORDER BY digest"
        ))
        .bind(repository_id)
        .bind(subject.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(manifest_from_row).collect()
    }

    async fn delete_manifest(
        &self,
        repository_id: i64,
        digest: &Digest,
    ) -> Result<ManifestDeletion, MetaError> {
        let digest = digest.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        // Checked in the deleting transaction, so an index pushed meanwhile is either seen here
        // or finds its child gone and is refused.
        let index: Option<String> = sqlx::query_scalar(
            "SELECT manifest_digest FROM manifest_references
             WHERE repository_id = ? AND child_digest = ? AND child_is_manifest = 1 AND manifest_digest <> ?
             ORDER BY manifest_digest LIMIT 1",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(&digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(index) = index {
            return Ok(ManifestDeletion::ListedBy(parse(&index, "index digest")?));
        }
        let deleted = sqlx::query("DELETE FROM manifests WHERE repository_id = ? AND digest = ?")
            .bind(repository_id)
            .bind(&digest)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        if deleted {
            sqlx::query("DELETE FROM repository_blobs WHERE repository_id = ? AND digest = ?")
                .bind(repository_id)
                .bind(&digest)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            record_event(&mut tx, repository_id, now_millis(), "DELETE", &digest, None, None).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(if deleted { ManifestDeletion::Deleted } else { ManifestDeletion::NotFound })
    }

    async fn delete_tag(&self, repository_id: i64, tag: &Tag) -> Result<bool, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let digest: Option<String> = sqlx::query_scalar(
            "DELETE FROM tags WHERE repository_id = ? AND name = ? RETURNING manifest_digest",
        )
        .bind(repository_id)
        .bind(tag.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(digest) = &digest {
            record_event(&mut tx, repository_id, now_millis(), "DELETE", digest, Some(tag.as_str()), None)
                .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(digest.is_some())
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<StoredEvent>, MetaError> {
        let rows = sqlx::query(
            "SELECT id, at, account_id, repository, action, digest, tag, detail FROM events
             WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| StoredEvent {
                id: row.get(0),
                at: row.get(1),
                account: row.get(2),
                repository: row.get(3),
                action: row.get(4),
                digest: row.get(5),
                tag: row.get(6),
                detail: row.get(7),
            })
            .collect())
    }

    async fn latest_event(&self) -> Result<i64, MetaError> {
        let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(latest.unwrap_or(0))
    }

    async fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>, MetaError> {
        sqlx::query_scalar("SELECT delivered FROM event_cursors WHERE endpoint = ?")
            .bind(endpoint)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    async fn set_event_cursor(&self, endpoint: &str, delivered: i64, at: Millis) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO event_cursors (endpoint, delivered, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (endpoint) DO UPDATE SET delivered = MAX(delivered, excluded.delivered),
               updated_at = excluded.updated_at",
        )
        .bind(endpoint)
        .bind(delivered)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn begin_event_cursor(&self, endpoint: &str, delivered: i64, at: Millis) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO event_cursors (endpoint, delivered, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (endpoint) DO NOTHING",
        )
        .bind(endpoint)
        .bind(delivered)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn prune_events(&self, before: Millis) -> Result<u64, MetaError> {
        // By id, the commit order: an event is never removed while an earlier one stays.
        let done = sqlx::query("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events WHERE at < ?)")
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn start_image_scan(
        &self,
        repository_id: i64,
        digest: &Digest,
        at: Millis,
    ) -> Result<bool, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        // An image that is gone, or already being scanned, starts nothing.
        let started = sqlx::query(
            "INSERT INTO image_scans (repository_id, digest, status, description, started_at)
             SELECT repository_id, digest, 'IN_PROGRESS', 'The scan is in progress.', ? FROM manifests
             WHERE repository_id = ? AND digest = ?
             ON CONFLICT (repository_id, digest) DO UPDATE SET status = excluded.status,
               description = excluded.description, started_at = excluded.started_at
             WHERE image_scans.status <> 'IN_PROGRESS'",
        )
        .bind(at)
        .bind(repository_id)
        .bind(digest.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0;
        if started {
            schedule(&mut tx, SCAN_JOB, &format!("{repository_id}/{digest}"), at).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(started)
    }

    async fn image_scan(&self, repository_id: i64, digest: &Digest) -> Result<Option<StoredScan>, MetaError> {
        let row: Option<(String, String, i64, Option<i64>, Option<String>, Option<String>, Option<i64>)> =
            sqlx::query_as(
                "SELECT status, description, started_at, completed_at, inventory, findings, matched_at
                 FROM image_scans WHERE repository_id = ? AND digest = ?",
            )
            .bind(repository_id)
            .bind(digest.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        Ok(row.map(|(status, description, started_at, completed_at, inventory, findings, matched_at)| {
            StoredScan { status, description, started_at, completed_at, inventory, findings, matched_at }
        }))
    }

    async fn record_image_scan(
        &self,
        repository_id: i64,
        digest: &Digest,
        scan: &StoredScan,
    ) -> Result<(), MetaError> {
        let digest = digest.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let updated = sqlx::query(
            "UPDATE image_scans SET status = ?, description = ?, completed_at = ?, inventory = ?, findings = ?,
               matched_at = ? WHERE repository_id = ? AND digest = ?",
        )
        .bind(&scan.status)
        .bind(&scan.description)
        .bind(scan.completed_at)
        .bind(&scan.inventory)
        .bind(&scan.findings)
        .bind(scan.matched_at)
        .bind(repository_id)
        .bind(&digest)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0;
        if updated && scan.status != "IN_PROGRESS" {
            let detail = serde_json::json!({ "scan-status": scan.status }).to_string();
            let at = scan.completed_at.unwrap_or_else(now_millis);
            record_event(&mut tx, repository_id, at, "SCAN", &digest, None, Some(&detail)).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn record_findings(
        &self,
        repository_id: i64,
        digest: &Digest,
        findings: &str,
        at: Millis,
        change: Option<&str>,
    ) -> Result<(), MetaError> {
        let digest = digest.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let updated = sqlx::query(
            "UPDATE image_scans SET findings = ?, matched_at = ?
             WHERE repository_id = ? AND digest = ? AND inventory IS NOT NULL",
        )
        .bind(findings)
        .bind(at)
        .bind(repository_id)
        .bind(&digest)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0;
        if let Some(change) = change.filter(|_| updated) {
            record_event(&mut tx, repository_id, at, "SCAN", &digest, None, Some(change)).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn stored_inventories(
        &self,
        after: Option<(i64, &Digest)>,
        limit: u32,
    ) -> Result<Vec<StoredInventory>, MetaError> {
        let (after_repository, after_digest) =
            after.map(|(r, d)| (r, d.to_string())).unwrap_or((-1, String::new()));
        let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT repository_id, digest, inventory, findings FROM image_scans
             WHERE inventory IS NOT NULL AND (repository_id, digest) > (?, ?)
             ORDER BY repository_id, digest LIMIT ?",
        )
        .bind(after_repository)
        .bind(after_digest)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(repository_id, digest, inventory, findings)| {
                Ok(StoredInventory { repository_id, digest: parse(&digest, "digest")?, inventory, findings })
            })
            .collect()
    }

    async fn import_vulnerability_records(
        &self,
        source: &str,
        records: &[(String, Vec<u8>)],
        at: Millis,
    ) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        upsert_vulnerability_records(&mut tx, source, records, at).await?;
        schedule(&mut tx, REMATCH_JOB, "all", at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn vulnerability_records(&self) -> Result<Vec<Vec<u8>>, MetaError> {
        sqlx::query_scalar("SELECT record FROM vulnerability_records ORDER BY id")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn vulnerability_sources(&self) -> Result<Vec<VulnerabilitySource>, MetaError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT source, COUNT(*), MAX(imported_at) FROM vulnerability_records GROUP BY source ORDER BY source",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(source, records, imported_at)| VulnerabilitySource {
                source,
                records: to_u64(records),
                imported_at,
            })
            .collect())
    }

    async fn vulnerability_feed(&self, url: &str) -> Result<Option<VulnerabilityFeed>, MetaError> {
        Ok(self.feeds(Some(url)).await?.pop())
    }

    async fn vulnerability_feeds(&self) -> Result<Vec<VulnerabilityFeed>, MetaError> {
        self.feeds(None).await
    }

    async fn replace_vulnerability_feed(
        &self,
        url: &str,
        records: &[(String, Vec<u8>)],
        (etag, last_modified): (Option<&str>, Option<&str>),
        at: Millis,
    ) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM vulnerability_records WHERE source = ?")
            .bind(url)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        upsert_vulnerability_records(&mut tx, url, records, at).await?;
        sqlx::query(
            "INSERT INTO vulnerability_feeds (url, etag, last_modified, checked_at, changed_at, error)
             VALUES (?, ?, ?, ?, ?, NULL)
             ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
               checked_at = excluded.checked_at, changed_at = excluded.changed_at, error = NULL",
        )
        .bind(url)
        .bind(etag)
        .bind(last_modified)
        .bind(at)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        schedule(&mut tx, REMATCH_JOB, "all", at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn note_vulnerability_feed_check(
        &self,
        url: &str,
        at: Millis,
        error: Option<&str>,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO vulnerability_feeds (url, checked_at, error) VALUES (?, ?, ?)
             ON CONFLICT (url) DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error",
        )
        .bind(url)
        .bind(at)
        .bind(error)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn lifecycle_policy(&self, repository_id: i64) -> Result<Option<StoredLifecyclePolicy>, MetaError> {
        let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT policy, updated_at, last_evaluated_at FROM lifecycle_policies WHERE repository_id = ?",
        )
        .bind(repository_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        Ok(row.map(|(text, updated_at, last_evaluated_at)| StoredLifecyclePolicy {
            text,
            updated_at,
            last_evaluated_at,
        }))
    }

    async fn set_lifecycle_policy(
        &self,
        repository_id: i64,
        policy: Option<&str>,
    ) -> Result<Option<StoredLifecyclePolicy>, MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let previous: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT policy, updated_at, last_evaluated_at FROM lifecycle_policies WHERE repository_id = ?",
        )
        .bind(repository_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        match policy {
            // A new policy has not run yet: its evaluation time starts empty.
            Some(text) => sqlx::query(
                "INSERT INTO lifecycle_policies (repository_id, policy, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (repository_id) DO UPDATE SET policy = excluded.policy,
                   updated_at = excluded.updated_at, last_evaluated_at = NULL",
            )
            .bind(repository_id)
            .bind(text)
            .bind(now_millis()),
            None => sqlx::query("DELETE FROM lifecycle_policies WHERE repository_id = ?").bind(repository_id),
        }
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(previous.map(|(text, updated_at, last_evaluated_at)| StoredLifecyclePolicy {
            text,
            updated_at,
            last_evaluated_at,
        }))
    }

    async fn record_lifecycle_evaluation(&self, repository_id: i64, at: Millis) -> Result<(), MetaError> {
        sqlx::query("UPDATE lifecycle_policies SET last_evaluated_at = ? WHERE repository_id = ?")
            .bind(at)
            .bind(repository_id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn repositories_with_lifecycle_policy(&self) -> Result<Vec<Repository>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS_R} FROM repositories r
             JOIN lifecycle_policies p ON p.repository_id = r.id
             ORDER BY r.account_id || '/' || r.name"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(repository_from_row).collect()
    }

    async fn lifecycle_images(&self, repository_id: i64) -> Result<Vec<LifecycleImage>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {MANIFEST_COLUMNS_M},
                    (SELECT group_concat(name, char(10)) FROM (SELECT t.name FROM tags t
                      WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest ORDER BY t.name)),
                    (SELECT group_concat(manifest_digest, char(10)) FROM (SELECT r.manifest_digest
                      FROM manifest_references r
                      WHERE r.repository_id = m.repository_id AND r.child_digest = m.digest
                        AND r.child_is_manifest ORDER BY r.manifest_digest))
             FROM manifests m WHERE m.repository_id = ? ORDER BY m.digest"
        ))
        .bind(repository_id)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let lines = |text: Option<String>| -> Vec<String> {
            text.map(|t| t.split('\n').map(str::to_owned).collect()).unwrap_or_default()
        };
        rows.iter()
            .map(|row| {
                Ok(LifecycleImage {
                    record: manifest_from_row(row)?,
                    tags: lines(row.get(MANIFEST_COLUMN_COUNT)),
                    parents: lines(row.get(MANIFEST_COLUMN_COUNT + 1))
                        .iter()
                        .map(|d| parse(d, "digest"))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    async fn set_storage_class(
        &self,
        repository_id: i64,
        digest: &Digest,
        class: StorageClass,
        at: Millis,
    ) -> Result<bool, MetaError> {
        let stamp = match class {
            StorageClass::Archive => "last_archived_at",
            StorageClass::Standard => "last_activated_at",
        };
        let digest = digest.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let moved = sqlx::query(&format!(
            "UPDATE manifests SET storage_class = ?, {stamp} = ?
             WHERE repository_id = ? AND digest = ? AND storage_class <> ?"
        ))
        .bind(class.as_str())
        .bind(at)
        .bind(repository_id)
        .bind(&digest)
        .bind(class.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0;
        if moved {
            let detail = serde_json::json!({ "target-storage-class": class.as_str() }).to_string();
            record_event(&mut tx, repository_id, at, "UPDATE_STORAGE_CLASS", &digest, None, Some(&detail))
                .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(moved)
    }

    async fn start_lifecycle_preview(
        &self,
        repository_id: i64,
        policy: &str,
        at: Millis,
    ) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM lifecycle_previews WHERE repository_id = ?")
                .bind(repository_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if status.as_deref() == Some(PreviewStatus::InProgress.as_str()) {
            return Err(MetaError::AlreadyExists(format!("a preview of repository {repository_id}")));
        }
        sqlx::query(
            "INSERT INTO lifecycle_previews (repository_id, policy, status, results, started_at, finished_at)
             VALUES (?, ?, ?, NULL, ?, NULL)
             ON CONFLICT (repository_id) DO UPDATE SET policy = excluded.policy, status = excluded.status,
               results = NULL, started_at = excluded.started_at, finished_at = NULL",
        )
        .bind(repository_id)
        .bind(policy)
        .bind(PreviewStatus::InProgress.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        schedule(&mut tx, PREVIEW_JOB, &repository_id.to_string(), at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn lifecycle_preview(&self, repository_id: i64) -> Result<Option<StoredPreview>, MetaError> {
        let row: Option<(String, String, Option<String>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT policy, status, results, started_at, finished_at FROM lifecycle_previews
             WHERE repository_id = ?",
        )
        .bind(repository_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(|(policy, status, results, started_at, finished_at)| {
            Ok(StoredPreview {
                policy,
                status: PreviewStatus::parse(&status)?,
                results,
                started_at,
                finished_at,
            })
        })
        .transpose()
    }

    async fn finish_lifecycle_preview(
        &self,
        repository_id: i64,
        status: PreviewStatus,
        results: Option<&str>,
        at: Millis,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE lifecycle_previews SET status = ?, results = ?, finished_at = ? WHERE repository_id = ?",
        )
        .bind(status.as_str())
        .bind(results)
        .bind(at)
        .bind(repository_id)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn schedule_job(&self, kind: &str, subject: &str, run_after: Millis) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        schedule(&mut tx, kind, subject, run_after).await?;
        tx.commit().await.map_err(backend)
    }

    async fn request_job(&self, kind: &str, subject: &str, run_after: Millis) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO jobs (kind, subject, run_after) VALUES (?, ?, ?)
             ON CONFLICT (kind, subject) DO UPDATE SET
               rescheduled = CASE WHEN claimed_by IS NULL THEN rescheduled ELSE 1 END",
        )
        .bind(kind)
        .bind(subject)
        .bind(run_after)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn claim_job(
        &self,
        kinds: &[&str],
        worker: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<Job>, MetaError> {
        let kinds = serde_json::to_string(kinds).map_err(|e| MetaError::Backend(Box::new(e)))?;
        // One statement on the one writer: two workers cannot claim the same job.
        let row = sqlx::query(&format!(
            "UPDATE jobs SET claimed_by = ?, lease_until = ?, attempts = attempts + 1, rescheduled = 0
             WHERE id = (SELECT id FROM jobs
                         WHERE kind IN (SELECT value FROM json_each(?)) AND run_after <= ?
                           AND (claimed_by IS NULL OR lease_until < ?)
                         ORDER BY run_after, id LIMIT 1)
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(worker)
        .bind(lease_until)
        .bind(kinds)
        .bind(now)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn renew_job(&self, id: i64, worker: &str, lease_until: Millis) -> Result<bool, MetaError> {
        let done = sqlx::query("UPDATE jobs SET lease_until = ? WHERE id = ? AND claimed_by = ?")
            .bind(lease_until)
            .bind(id)
            .bind(worker)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_job(&self, id: i64, worker: &str, next_run: Option<Millis>) -> Result<(), MetaError> {
        // Scheduled again while it ran: released to run again (when it was asked for), not deleted.
        let release = "UPDATE jobs SET claimed_by = NULL, lease_until = NULL, attempts = 0, last_error = NULL,
                         rescheduled = 0, run_after = CASE WHEN rescheduled = 1 THEN MIN(run_after, ?) ELSE ? END
                       WHERE id = ? AND claimed_by = ?";
        match next_run {
            Some(at) => sqlx::query(release).bind(at).bind(at),
            None => {
                sqlx::query("DELETE FROM jobs WHERE id = ? AND claimed_by = ? AND rescheduled = 0")
                    .bind(id)
                    .bind(worker)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                // What is left was scheduled again: due at the time it was asked for.
                sqlx::query(release).bind(i64::MAX).bind(i64::MAX)
            }
        }
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn fail_job(&self, id: i64, worker: &str, error: &str, retry_at: Millis) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE jobs SET claimed_by = NULL, lease_until = NULL, run_after = ?, last_error = ?
             WHERE id = ? AND claimed_by = ?",
        )
        .bind(retry_at)
        .bind(error)
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn jobs(&self) -> Result<Vec<Job>, MetaError> {
        let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY run_after, id"))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn collect_garbage(&self, before: Millis, limit: u32, dry_run: bool) -> Result<Garbage, MetaError> {
        // A hold is in use while an image of its repository is that content or names it.
        const IN_USE: &str = "(EXISTS (SELECT 1 FROM manifests m
                                 WHERE m.repository_id = repository_blobs.repository_id
                                   AND m.digest = repository_blobs.digest)
                         OR EXISTS (SELECT 1 FROM manifest_references r
                                 WHERE r.repository_id = repository_blobs.repository_id
                                   AND r.child_digest = repository_blobs.digest))";
        // The one writer makes this transaction exclusive: a manifest push either committed
        // before it (and its references count) or checks its layers after it (and finds any
        // released one missing, refusing the push rather than losing a layer).
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let released_holds = if dry_run {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT COUNT(*) FROM repository_blobs WHERE linked_at < ? AND NOT {IN_USE}"
            ))
            .bind(before)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
        } else {
            let done =
                sqlx::query(&format!("DELETE FROM repository_blobs WHERE linked_at < ? AND NOT {IN_USE}"))
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            i64::try_from(done.rows_affected()).unwrap_or(i64::MAX)
        };
        // Without the holds just released (a dry run still has them), which blobs nothing holds.
        let unheld = if dry_run {
            format!(
                "NOT EXISTS (SELECT 1 FROM repository_blobs WHERE repository_blobs.digest = b.digest
                             AND (repository_blobs.linked_at >= ?1 OR {IN_USE}))"
            )
        } else {
            "NOT EXISTS (SELECT 1 FROM repository_blobs WHERE repository_blobs.digest = b.digest)".to_owned()
        };
        let rows = sqlx::query(&format!(
            "SELECT {BLOB_COLUMNS} FROM blobs b
             WHERE b.created_at < ?1 AND {unheld} ORDER BY b.digest LIMIT ?2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let blobs: Vec<BlobRecord> = rows.iter().map(blob_from_row).collect::<Result<_, _>>()?;
        if !dry_run {
            let digests: Vec<String> = blobs.iter().map(|b| b.digest.to_string()).collect();
            let digests = serde_json::to_string(&digests).map_err(|e| MetaError::Backend(Box::new(e)))?;
            sqlx::query("DELETE FROM blobs WHERE digest IN (SELECT value FROM json_each(?))")
                .bind(digests)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Garbage { released_holds: to_u64(released_holds), blobs })
    }

    async fn stored_bytes(&self) -> Result<StoredBytes, MetaError> {
        let repositories = sqlx::query(
            "SELECT r.account_id, r.name, COALESCE(SUM(b.size), 0) FROM repositories r
             LEFT JOIN repository_blobs rb ON rb.repository_id = r.id LEFT JOIN blobs b ON b.digest = rb.digest
             GROUP BY r.id ORDER BY r.account_id, r.name",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let accounts = sqlx::query(
            "SELECT account_id, SUM(size) FROM (SELECT DISTINCT r.account_id, b.digest, b.size FROM repositories r
             JOIN repository_blobs rb ON rb.repository_id = r.id JOIN blobs b ON b.digest = rb.digest)
             GROUP BY account_id ORDER BY account_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let total: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(size), 0) FROM blobs")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(StoredBytes {
            repositories: repositories
                .iter()
                .map(|r| {
                    Ok((
                        parse(r.get::<&str, _>(0), "account id")?,
                        parse(r.get::<&str, _>(1), "repository name")?,
                        to_u64(r.get(2)),
                    ))
                })
                .collect::<Result<_, MetaError>>()?,
            accounts: accounts
                .iter()
                .map(|r| Ok((parse(r.get::<&str, _>(0), "account id")?, to_u64(r.get(1)))))
                .collect::<Result<_, MetaError>>()?,
            total: to_u64(total),
        })
    }

    async fn known_locations(
        &self,
        locations: &[String],
    ) -> Result<std::collections::HashSet<String>, MetaError> {
        let locations = serde_json::to_string(locations).map_err(|e| MetaError::Backend(Box::new(e)))?;
        let known: Vec<String> = sqlx::query_scalar(
            "SELECT location FROM blobs WHERE location IN (SELECT value FROM json_each(?))",
        )
        .bind(locations)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(known.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn sqlite_backend_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::SqliteMetaStore::open(&dir.path().join("meta.db")).await.expect("open");
        crate::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn every_connection_syncs_each_commit_and_the_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let store = super::SqliteMetaStore::open(&path).await.expect("open");
        // 2 is FULL: in WAL mode, every commit fsyncs the log before it returns.
        for pool in [&store.writer, &store.reader] {
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(pool).await.expect("pragma");
            assert_eq!(level, 2, "synchronous must be FULL");
            let mode: String =
                sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.expect("pragma");
            assert_eq!(mode, "wal");
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).expect("exists").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file} is {mode:o}");
        }
    }

    #[tokio::test]
    async fn ping_answers_only_while_the_database_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::SqliteMetaStore::open(&dir.path().join("meta.db")).await.expect("open");
        assert!(crate::MetaStore::ping(&store).await.is_ok());
        crate::MetaStore::close(&store).await;
        assert!(crate::MetaStore::ping(&store).await.is_err(), "a closed store is not ready");
    }

    #[tokio::test]
    async fn an_existing_database_reopens_and_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let store = super::SqliteMetaStore::open(&path).await.expect("open");
        crate::MetaStore::close(&store).await;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        super::SqliteMetaStore::open(&path).await.expect("an existing database opens again");
        let mode = std::fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "tightened on open");
    }

    #[tokio::test]
    async fn blobs_stored_before_per_key_wraps_keep_their_wrap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        // The database as the release before per-key wraps left it, with one blob.
        let mut earlier = sqlx::migrate!("./migrations/sqlite");
        earlier.migrations = earlier.migrations.iter().filter(|m| m.version < 13).cloned().collect();
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("connect");
        earlier.run(&pool).await.expect("earlier migrations");
        let digest = format!("sha256:{}", "ab".repeat(32));
        sqlx::query(
            "INSERT INTO blobs (digest, size, location, key_id, wrapped_key, created_at)
             VALUES (?, 5, 'blobs/ab/x', 'local:old', x'0102', 1)",
        )
        .bind(&digest)
        .execute(&pool)
        .await
        .expect("old blob");
        pool.close().await;

        let store = super::SqliteMetaStore::open(&path).await.expect("upgrade");
        let blob = crate::MetaStore::get_blob(&store, &digest.parse().expect("digest"))
            .await
            .expect("get")
            .expect("kept");
        assert_eq!(blob.location, "blobs/ab/x");
        assert_eq!(
            blob.keys,
            vec![super::WrappedKey { key_id: "local:old".to_owned(), wrapped: vec![1, 2] }]
        );
    }
}
