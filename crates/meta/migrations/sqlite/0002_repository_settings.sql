-- ECR repository settings and resource tags.
ALTER TABLE repositories ADD COLUMN tag_mutability TEXT NOT NULL DEFAULT 'MUTABLE';
-- Exclusion filters joined by ',' (a filter cannot contain one).
ALTER TABLE repositories ADD COLUMN mutability_exclusions TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN scan_on_push INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN encryption_type TEXT NOT NULL DEFAULT 'AES256';
ALTER TABLE repositories ADD COLUMN kms_key TEXT;

CREATE TABLE repository_tags (
    repository_id  INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (repository_id, key)
);
