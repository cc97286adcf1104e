-- Resource policies: one per repository, one per registry (account).
CREATE TABLE repository_policies (
    repository_id  INTEGER PRIMARY KEY NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    policy         TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE registry_policies (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts(id),
    policy      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
