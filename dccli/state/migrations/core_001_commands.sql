-- Fan-out commands and each host's fate, for `--limit @failed`.
CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    kind TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    exit_code INTEGER
);
CREATE TABLE command_hosts (
    command_id INTEGER NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    duration_s REAL,
    PRIMARY KEY (command_id, host)
);
CREATE INDEX command_hosts_by_host ON command_hosts(host);
