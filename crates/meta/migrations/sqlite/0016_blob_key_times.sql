-- When each wrap was made (or last found needed by a repository taking the blob), so that
-- garbage collection drops a key's wrap once no repository under that key holds the blob,
-- but never one a push is about to use. Existing wraps count as old.
ALTER TABLE blob_keys ADD COLUMN wrapped_at INTEGER NOT NULL DEFAULT 0;
