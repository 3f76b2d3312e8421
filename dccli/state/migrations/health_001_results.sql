-- Health: one row per `dccli health` run, one per host probed, one per check result.
CREATE TABLE health_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    worst TEXT NOT NULL
);
CREATE INDEX health_runs_by_cluster ON health_runs(cluster, started_at);
CREATE TABLE health_hosts (
    run_id INTEGER NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    status TEXT NOT NULL,          -- the fan-out fate: ok | failed | unreachable | auth | interrupted
    worst TEXT NOT NULL,
    host_time REAL,                -- the host's clock when probed: the Xid cursor for the next run
    boot_id TEXT,
    PRIMARY KEY (run_id, host)
);
CREATE INDEX health_hosts_by_host ON health_hosts(host, run_id);
CREATE TABLE health_results (
    run_id INTEGER NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    check_name TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    verdict TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '',
    threshold TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX health_results_by_run ON health_results(run_id, host);
