-- Accounts, their access keys, repositories, blobs, manifests, tags and uploads.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    user_name      TEXT,
    sealed_secret  BLOB NOT NULL,
    active         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

-- Registry-wide secrets (the login-token signing key), sealed by the key provider.
CREATE TABLE sealed_secrets (
    name    TEXT PRIMARY KEY NOT NULL,
    sealed  BLOB NOT NULL
);

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

-- A blob's bytes are stored once; the data key that opens them is wrapped by key_id.
CREATE TABLE blobs (
    digest       TEXT PRIMARY KEY NOT NULL,
    size         INTEGER NOT NULL,
    location     TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Which repositories hold which blobs (by upload, mount or as manifest content).
CREATE TABLE repository_blobs (
    repository_id  INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest         TEXT NOT NULL REFERENCES blobs(digest),
    linked_at      INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    repository_id   INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest          TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    artifact_type   TEXT,
    size            INTEGER NOT NULL,
    subject_digest  TEXT,
    sealed_annotations BLOB NOT NULL,
    pushed_at       INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repository_id, subject_digest);

-- What a manifest references: blobs (config, layers) and child manifests (of an index).
CREATE TABLE manifest_references (
    repository_id    INTEGER NOT NULL,
    manifest_digest  TEXT NOT NULL,
    child_digest     TEXT NOT NULL,
    child_is_manifest INTEGER NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, child_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);

CREATE TABLE tags (
    repository_id    INTEGER NOT NULL,
    name             TEXT NOT NULL,
    manifest_digest  TEXT NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_by_manifest ON tags(repository_id, manifest_digest);

CREATE TABLE uploads (
    id             TEXT PRIMARY KEY NOT NULL,
    repository_id  INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    length         INTEGER NOT NULL,
    key_id         TEXT NOT NULL,
    wrapped_key    BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
