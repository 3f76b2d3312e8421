-- Training runs (dccli train): one row per run, one per attempt; details as JSON (never pickle).
CREATE TABLE train_runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    cluster TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    spec TEXT NOT NULL,
    watcher_pid INTEGER
);
CREATE INDEX train_runs_by_name ON train_runs(cluster, name, created_at);
CREATE TABLE train_attempts (
    run_id TEXT NOT NULL REFERENCES train_runs(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, number)
);
CREATE TABLE train_events (
    run_id TEXT NOT NULL REFERENCES train_runs(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX train_events_by_run ON train_events(run_id, at);
