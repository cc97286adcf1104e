-- Lifecycle policies, as given, with when the policy last ran over the repository.
CREATE TABLE lifecycle_policies (
    repository_id      INTEGER PRIMARY KEY NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    policy             TEXT NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_evaluated_at  INTEGER
);

-- The latest preview of a policy per repository: IN_PROGRESS until a worker has evaluated it,
-- then COMPLETE with its results (the registry's JSON) or FAILED.
CREATE TABLE lifecycle_previews (
    repository_id  INTEGER PRIMARY KEY NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    policy         TEXT NOT NULL,
    status         TEXT NOT NULL,
    results        TEXT,
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER
);

-- Archived images stay listed; they cannot be pulled until restored.
ALTER TABLE manifests ADD COLUMN storage_class TEXT NOT NULL DEFAULT 'STANDARD';
ALTER TABLE manifests ADD COLUMN last_archived_at INTEGER;
ALTER TABLE manifests ADD COLUMN last_activated_at INTEGER;

-- Background work: one row per job, claimed by a worker for a lease. A job whose worker died is
-- claimed again when its lease runs out; (kind, subject) is unique, so scheduling a job twice
-- runs it once.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    run_after    INTEGER NOT NULL,
    claimed_by   TEXT,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    UNIQUE (kind, subject)
);
CREATE INDEX jobs_by_time ON jobs(run_after);

-- When a repository last took a blob (upload, mount, manifest) decides the garbage collector's
-- grace; it is refreshed on every link.
CREATE INDEX repository_blobs_by_time ON repository_blobs(linked_at);
