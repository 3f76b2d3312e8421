"""Open the state database, applying additive migrations once.

Migrations are SQL files in dccli/state/migrations/, named <capability>_<NNN>_<what>.sql and applied in
name order; each is recorded by name in schema_migrations, so capabilities add their own files without
touching a shared list, and a shipped file is never edited, only followed by a new one (SkyPilot's
lesson: state must survive upgrades).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path

from dccli.errors import StateError


@lru_cache(maxsize=1)
def migrations() -> tuple[tuple[str, str], ...]:
    folder = resources.files("dccli.state").joinpath("migrations")
    found = [(f.name.removesuffix(".sql"), f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql")]
    return tuple(sorted(found))


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


# Databases from before named migrations counted them in user_version: these are what it counted.
_NUMBERED = ("core_001_commands", "core_002_facts")


def _applied(conn: sqlite3.Connection) -> set[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    names = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    if not names:
        numbered = conn.execute("PRAGMA user_version").fetchone()[0]
        names = set(_NUMBERED[:numbered])
        conn.executemany("INSERT OR IGNORE INTO schema_migrations(name, applied_at) VALUES (?, 0)",
                         [(n,) for n in names])
    return names


def _migrate(conn: sqlite3.Connection) -> None:
    pending = [m for m in migrations() if m[0] not in _applied(conn)]
    if not pending:
        return
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; others wait on the busy timeout
    try:
        done = _applied(conn)
        for name, script in pending:
            if name in done:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)", (name, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows about quotes and triggers)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if not current and line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock up front: no upgrade deadlock between writers), COMMIT, or ROLLBACK on
    any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
