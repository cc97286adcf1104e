-- The latest scan of each image: IN_PROGRESS until a worker has read its layers, then its
-- package inventory (kept, so that a new vulnerability database re-matches without reading
-- layers again) and the findings of the last match, both as the registry's JSON.
CREATE TABLE image_scans (
    repository_id  INTEGER NOT NULL,
    digest         TEXT NOT NULL,
    status         TEXT NOT NULL,
    description    TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    completed_at   INTEGER,
    inventory      TEXT,
    findings       TEXT,
    matched_at     INTEGER,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);

-- Advisories in the OSV format, by id; `source` names the import they came from.
CREATE TABLE vulnerability_records (
    id           TEXT PRIMARY KEY NOT NULL,
    source       TEXT NOT NULL,
    record       BLOB NOT NULL,
    imported_at  INTEGER NOT NULL
);
