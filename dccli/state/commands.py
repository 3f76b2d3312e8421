"""Which hosts failed last time, so `--limit @failed` re-targets exactly them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from dccli.state.db import transaction


def record(conn: sqlite3.Connection, *, cluster: str, kind: str, command: str, started_at: float,
           outcomes: Iterable, exit_code: int) -> int:
    """Store one fan-out's per-host fates in a single transaction."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO commands(cluster, kind, command, started_at, finished_at, exit_code) VALUES (?,?,?,?,?,?)",
            (cluster, kind, command, started_at, time.time(), exit_code),
        )
        cid = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO command_hosts(command_id, host, status, exit_code, error, duration_s) VALUES (?,?,?,?,?,?)",
            [(cid, o.host, o.status, getattr(o.value, "exit_code", None), o.error, o.duration_s) for o in outcomes],
        )
    return cid


def last_failed(conn: sqlite3.Connection, cluster: str) -> list[str]:
    """Hosts that did not end ok in the latest recorded fan-out on this cluster."""
    row = conn.execute("SELECT id FROM commands WHERE cluster = ? ORDER BY id DESC LIMIT 1", (cluster,)).fetchone()
    if row is None:
        return []
    return [r["host"] for r in conn.execute(
        "SELECT host FROM command_hosts WHERE command_id = ? AND status != 'ok' ORDER BY rowid", (row["id"],))]
