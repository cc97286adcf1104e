-- IAM users of an account and the identity policies attached to them.
CREATE TABLE users (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    path        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE user_policies (
    account_id   TEXT NOT NULL,
    user_name    TEXT NOT NULL,
    policy_name  TEXT NOT NULL,
    policy       TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, policy_name),
    FOREIGN KEY (account_id, user_name) REFERENCES users(account_id, name) ON DELETE CASCADE
);
