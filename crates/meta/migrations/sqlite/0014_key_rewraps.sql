-- A re-wrap after a key's rotation: every data key wrapped under the key is wrapped again with
-- its newest version, in digest order, by the REWRAP_JOB. Its progress, for `berth admin kms status`.
CREATE TABLE key_rewraps (
    key_id        TEXT PRIMARY KEY NOT NULL,
    requested_at  INTEGER NOT NULL,
    after_digest  TEXT,
    rewrapped     INTEGER NOT NULL DEFAULT 0,
    finished_at   INTEGER
);

CREATE INDEX blob_keys_by_key ON blob_keys(key_id, digest);
