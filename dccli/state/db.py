"""Open the state database, applying additive migrations once.

Each capability appends its migrations to MIGRATIONS; a migration is never edited after it ships,
only followed by a new one (SkyPilot's lesson: state must survive upgrades).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dccli.errors import StateError

MIGRATIONS: list[str] = [
    # 1: fan-out commands and each host's fate, for `--limit @failed`
    """
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
    """,
    # 2: facts, latest per host plus history
    """
    CREATE TABLE facts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cluster TEXT NOT NULL,
        host TEXT NOT NULL,
        gathered_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX facts_by_host ON facts(cluster, host, gathered_at);
    """,
]


def connect(path: Path | None = None) -> sqlite3.Connection:
    """A connection with WAL, foreign keys and a busy timeout; migrates the schema forward."""
    from dccli import paths

    if path is None:
        paths.ensure_home()
        path = paths.state_db_path()
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path}: state database unusable: {exc}") from None
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version >= len(MIGRATIONS):
        return
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; others wait on the busy timeout
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
