-- keys: every rotation step that changed (or tried to change) what a host accepts; never edited, only appended.
CREATE TABLE IF NOT EXISTS key_rotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    cluster TEXT NOT NULL,
    host TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    kind TEXT NOT NULL,
    old_fingerprint TEXT,
    new_fingerprint TEXT,
    outcome TEXT NOT NULL,
    step TEXT,
    error TEXT,
    duration_s REAL
);
CREATE INDEX IF NOT EXISTS key_rotations_host ON key_rotations (cluster, host, at);
CREATE TABLE IF NOT EXISTS key_certs (
    serial INTEGER PRIMARY KEY,
    key_fingerprint TEXT NOT NULL,
    key_id TEXT NOT NULL,
    principals TEXT NOT NULL,
    valid_after REAL,
    valid_before REAL,
    issued_at REAL NOT NULL,
    revoked_at REAL
);
