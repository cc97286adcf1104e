-- The outbox of image events: written in the transaction of the change it records (a push, a
-- deletion, a scan's end, a move between storage classes), read in order by each webhook's
-- deliveries, kept for the retention period. `detail`: the action's own fields, as JSON.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    account_id  TEXT NOT NULL,
    repository  TEXT NOT NULL,
    action      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    tag         TEXT,
    detail      TEXT
);
CREATE INDEX events_by_time ON events(at);

-- How far each webhook has been delivered: the id of its last delivered (or skipped) event.
CREATE TABLE event_cursors (
    endpoint    TEXT PRIMARY KEY NOT NULL,
    delivered   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
