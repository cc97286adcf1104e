-- A blob's data key, wrapped once per key-encryption key that guards a repository holding the
-- blob (the registry's own key, or a customer's KMS key): the bytes are stored once however
-- many accounts' keys guard them, and removing a key's wrap cuts off only that key's holders.
CREATE TABLE blob_keys (
    digest       TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
    key_id       TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL,
    PRIMARY KEY (digest, key_id)
) WITHOUT ROWID;

INSERT INTO blob_keys (digest, key_id, wrapped_key) SELECT digest, key_id, wrapped_key FROM blobs;

ALTER TABLE blobs DROP COLUMN key_id;
ALTER TABLE blobs DROP COLUMN wrapped_key;
