-- Facts: every gathering kept; the latest per host is the newest row.
CREATE TABLE facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    host TEXT NOT NULL,
    gathered_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX facts_by_host ON facts(cluster, host, gathered_at);
