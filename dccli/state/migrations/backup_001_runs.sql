-- dccli backup: one row per run, one per host and profile in it, and verify's rotation state.
CREATE TABLE backup_runs (
    id TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    profiles TEXT NOT NULL,
    scheduled INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL,
    exit_code INTEGER
);
CREATE TABLE backup_hosts (
    run_id TEXT NOT NULL REFERENCES backup_runs(id) ON DELETE CASCADE,
    cluster TEXT NOT NULL,
    host TEXT NOT NULL,
    profile TEXT NOT NULL,
    repository TEXT NOT NULL,
    status TEXT NOT NULL,
    snapshot_id TEXT,
    files INTEGER,
    bytes_added INTEGER,
    bytes_processed INTEGER,
    duration_s REAL,
    skipped TEXT,
    error TEXT,
    finished_at REAL NOT NULL,
    PRIMARY KEY (run_id, host, profile)
);
CREATE INDEX backup_hosts_last ON backup_hosts(cluster, host, status, finished_at);
CREATE TABLE backup_verify (
    cluster TEXT NOT NULL,
    repository TEXT NOT NULL,
    last_subset INTEGER,
    subsets INTEGER NOT NULL,
    last_at REAL,
    last_status TEXT,
    PRIMARY KEY (cluster, repository)
);
