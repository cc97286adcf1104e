-- Repository creation templates: settings applied to repositories created on push.
CREATE TABLE creation_templates (
    account_id             TEXT NOT NULL REFERENCES accounts(id),
    prefix                 TEXT NOT NULL,
    description            TEXT,
    tag_mutability         TEXT NOT NULL,
    mutability_exclusions  TEXT NOT NULL,
    encryption_type        TEXT NOT NULL,
    kms_key                TEXT,
    repository_policy      TEXT,
    lifecycle_policy       TEXT,
    applied_for            TEXT NOT NULL,
    custom_role_arn        TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (account_id, prefix)
);

CREATE TABLE creation_template_tags (
    account_id  TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (account_id, prefix, key),
    FOREIGN KEY (account_id, prefix) REFERENCES creation_templates(account_id, prefix) ON DELETE CASCADE
);
