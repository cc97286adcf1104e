-- An account's registry scanning configuration (PutRegistryScanningConfiguration), as the
-- registry's JSON; an account without one scans only repositories that ask (scanOnPush).
CREATE TABLE registry_scanning (
    account_id     TEXT PRIMARY KEY NOT NULL REFERENCES accounts(id),
    configuration  TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
);
