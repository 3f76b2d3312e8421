"""The audit trail of key changes in the state DB (table key_rotations, keys_001_rotations.sql)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from dccli.state.db import transaction


@dataclass(frozen=True)
class AuditRow:
    host: str
    endpoint: str
    kind: str  # rotate | ca | host-rotate | revoke
    outcome: str  # ok | failed | unreachable | auth
    old_fingerprint: str | None = None
    new_fingerprint: str | None = None
    step: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    at: float | None = None


def open_db(home: Path | None) -> sqlite3.Connection:
    from dccli.state import db

    if home is None:
        return db.connect()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return db.connect(home / "state.db")


def record(home: Path | None, cluster: str, rows: Iterable[AuditRow]) -> None:
    now = time.time()
    with closing(open_db(home)) as conn, transaction(conn):
        conn.executemany(
            "INSERT INTO key_rotations (at, cluster, host, endpoint, kind, old_fingerprint, new_fingerprint,"
            " outcome, step, error, duration_s) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    r.at or now,
                    cluster,
                    r.host,
                    r.endpoint,
                    r.kind,
                    r.old_fingerprint,
                    r.new_fingerprint,
                    r.outcome,
                    r.step,
                    r.error,
                    r.duration_s,
                )
                for r in rows
            ],
        )


def history(conn: sqlite3.Connection, cluster: str, host: str | None = None, limit: int = 100) -> list[dict]:
    sql = "SELECT * FROM key_rotations WHERE cluster = ?"
    args: list = [cluster]
    if host is not None:
        sql += " AND host = ?"
        args.append(host)
    sql += " ORDER BY at DESC, id DESC LIMIT ?"
    args.append(limit)
    return [dict(r) for r in conn.execute(sql, args)]


def last_rotations(conn: sqlite3.Connection, cluster: str) -> dict[str, dict]:
    """The latest row per host of a cluster, and the latest successful one as 'last_ok_at'."""
    out: dict[str, dict] = {}
    for r in conn.execute("SELECT * FROM key_rotations WHERE cluster = ? ORDER BY at, id", (cluster,)):
        row = dict(r)
        prev = out.get(row["host"], {})
        row["last_ok_at"] = row["at"] if row["outcome"] == "ok" else prev.get("last_ok_at")
        out[row["host"]] = row
    return out
