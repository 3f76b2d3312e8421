"""Backup results in the state DB: runs, each host's result, and verify's rotating subset."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any


def start_run(
    conn: sqlite3.Connection, run_id: str, cluster: str, profiles: Iterable[str], scheduled: bool
) -> None:
    conn.execute(
        "INSERT INTO backup_runs(id, cluster, profiles, scheduled, started_at) VALUES (?,?,?,?,?)",
        (run_id, cluster, ",".join(profiles), int(scheduled), time.time()),
    )


def finish_run(conn: sqlite3.Connection, run_id: str, exit_code: int) -> None:
    conn.execute(
        "UPDATE backup_runs SET finished_at = ?, exit_code = ? WHERE id = ?", (time.time(), exit_code, run_id)
    )


def record_host(conn: sqlite3.Connection, run_id: str, cluster: str, result: Any) -> None:
    """`result` is a run.HostBackup."""
    conn.execute(
        "INSERT OR REPLACE INTO backup_hosts(run_id, cluster, host, profile, repository, status, snapshot_id, files,"
        " bytes_added, bytes_processed, duration_s, skipped, error, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            run_id,
            cluster,
            result.host,
            result.profile,
            result.repository,
            result.status,
            result.snapshot_id,
            result.files,
            result.bytes_added,
            result.bytes_processed,
            result.duration_s,
            json.dumps(list(result.incomplete)),
            result.error,
            time.time(),
        ),
    )


def host_results(conn: sqlite3.Connection, run_id: str) -> list[sqlite3.Row]:
    return list(conn.execute("SELECT * FROM backup_hosts WHERE run_id = ? ORDER BY rowid", (run_id,)))


def last_success(conn: sqlite3.Connection, cluster: str) -> dict[str, sqlite3.Row]:
    """Each host's latest successful backup (any profile)."""
    rows = conn.execute(
        "SELECT host, profile, snapshot_id, MAX(finished_at) AS finished_at FROM backup_hosts"
        " WHERE cluster = ? AND status = 'ok' GROUP BY host",
        (cluster,),
    )
    return {r["host"]: r for r in rows}


def last_subset(conn: sqlite3.Connection, cluster: str, repository: str) -> int | None:
    row = conn.execute(
        "SELECT last_subset FROM backup_verify WHERE cluster = ? AND repository = ?", (cluster, repository)
    ).fetchone()
    return None if row is None else row["last_subset"]


def record_verify(
    conn: sqlite3.Connection, cluster: str, repository: str, subset: int | None, subsets: int, status: str
) -> None:
    # A failed check does not advance the rotation: the same subset is read again next time.
    if status != "ok":
        subset = last_subset(conn, cluster, repository)
    conn.execute(
        "INSERT INTO backup_verify(cluster, repository, last_subset, subsets, last_at, last_status)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT(cluster, repository) DO UPDATE SET last_subset = excluded.last_subset,"
        " subsets = excluded.subsets, last_at = excluded.last_at, last_status = excluded.last_status",
        (cluster, repository, subset, subsets, time.time(), status),
    )
