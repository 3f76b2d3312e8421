"""Health history in the state DB: every run's results, the Xid cursor per host, and what changed since T."""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dccli.health.verdicts import OK
from dccli.state.db import transaction

if TYPE_CHECKING:
    from dccli.health.model import CheckResult

# History kept per cluster (each host's latest probe is kept whatever its age: it is the Xid cursor and what
# `dccli status` shows). Pruned a day at a time, so a run every few minutes does not pay for it every time.
KEEP_S = 30 * 86400
PRUNE_SLACK_S = 86400

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'24h' -> 86400.0; '30m', '7d', '90s', '2w'. ValueError otherwise."""
    m = _DURATION.match(text or "")
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h, 7d")
    return float(m.group(1)) * _UNIT[m.group(2)]


@dataclass(frozen=True)
class HostRecord:
    host: str
    status: str
    worst: str
    host_time: float | None = None
    boot_id: str | None = None


def store(
    conn: sqlite3.Connection,
    cluster: str,
    started_at: float,
    hosts: list[HostRecord],
    results: list[CheckResult],
    worst: str,
) -> int:
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO health_runs(cluster, started_at, finished_at, worst) VALUES (?,?,?,?)",
            (cluster, started_at, time.time(), worst),
        )
        run_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO health_hosts(run_id, host, status, worst, host_time, boot_id) VALUES (?,?,?,?,?,?)",
            [(run_id, h.host, h.status, h.worst, h.host_time, h.boot_id) for h in hosts],
        )
        conn.executemany(
            "INSERT INTO health_results(run_id, host, check_name, subject, verdict, value, threshold, action, source)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (run_id, r.host, r.check, r.subject, r.verdict, r.value, r.threshold, r.action, r.source)
                for r in results
            ],
        )
        prune(conn, cluster, started_at - KEEP_S)
    return run_id


def prune(conn: sqlite3.Connection, cluster: str, before: float) -> int:
    """Delete the cluster's runs that started before `before` (results and hosts go with them: ON DELETE
    CASCADE), except a run holding some host's latest probe. Only once the oldest run is a day past the cut:
    one batch a day. Returns the number of runs deleted."""
    oldest = conn.execute("SELECT MIN(started_at) FROM health_runs WHERE cluster = ?", (cluster,)).fetchone()[0]
    if oldest is None or oldest >= before - PRUNE_SLACK_S:
        return 0
    cur = conn.execute(
        "DELETE FROM health_runs WHERE cluster = ? AND started_at < ? AND id NOT IN ("
        " SELECT MAX(hh.run_id) FROM health_hosts hh JOIN health_runs r ON r.id = hh.run_id"
        " WHERE r.cluster = ? GROUP BY hh.host)",
        (cluster, before, cluster),
    )
    return cur.rowcount


def xid_cursors(conn: sqlite3.Connection, cluster: str) -> dict[str, tuple[float, str | None]]:
    """host -> (host clock at its last successful probe, boot id): Xids after it are new."""
    rows = conn.execute(
        "SELECT hh.host, hh.host_time, hh.boot_id FROM health_hosts hh JOIN health_runs r ON r.id = hh.run_id "
        "WHERE r.cluster = ? AND hh.host_time IS NOT NULL AND hh.run_id = ("
        " SELECT MAX(h2.run_id) FROM health_hosts h2 JOIN health_runs r2 ON r2.id = h2.run_id"
        " WHERE r2.cluster = r.cluster AND h2.host = hh.host AND h2.host_time IS NOT NULL)",
        (cluster,),
    )
    return {r["host"]: (r["host_time"], r["boot_id"]) for r in rows}


def _results(conn: sqlite3.Connection, run_id: int, host: str) -> list[CheckResult]:
    from dccli.health.model import CheckResult

    return [
        CheckResult(
            r["host"],
            r["check_name"],
            r["verdict"],
            r["value"],
            r["threshold"],
            r["action"],
            r["source"],
            r["subject"],
        )
        for r in conn.execute("SELECT * FROM health_results WHERE run_id = ? AND host = ?", (run_id, host))
    ]


def latest(conn: sqlite3.Connection, cluster: str) -> dict[str, dict[str, Any]]:
    """host -> {worst, status, checked_at, run_id, failing} from each host's newest run (for `dccli status`)."""
    rows = conn.execute(
        "SELECT hh.*, r.started_at FROM health_hosts hh JOIN health_runs r ON r.id = hh.run_id WHERE r.cluster = ?"
        " AND hh.run_id = (SELECT MAX(h2.run_id) FROM health_hosts h2 JOIN health_runs r2 ON r2.id = h2.run_id"
        " WHERE r2.cluster = r.cluster AND h2.host = hh.host)",
        (cluster,),
    )
    out = {
        r["host"]: {
            "worst": r["worst"],
            "status": r["status"],
            "checked_at": r["started_at"],
            "run_id": r["run_id"],
        }
        for r in rows
    }
    for host, info in out.items():
        failing = conn.execute(
            "SELECT DISTINCT check_name FROM health_results WHERE run_id = ? AND host = ? AND verdict != 'OK'",
            (info["run_id"], host),
        )
        info["failing"] = sorted(r[0] for r in failing)
    return out


@dataclass(frozen=True)
class Change:
    host: str
    check: str
    subject: str
    was: str  # verdict then ("" when the check did not exist then)
    now: str  # verdict now ("" when it is gone)
    value: str
    since: float | None  # when the baseline was taken

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def changes(
    conn: sqlite3.Connection, cluster: str, run_id: int, window_s: float, now: float | None = None
) -> list[Change]:
    """Per host: results of run `run_id` against the host's last run at or before now - window
    (else its oldest run inside the window). Only differences are returned."""
    now = time.time() if now is None else now
    cutoff = now - window_s
    out: list[Change] = []
    hosts = [r["host"] for r in conn.execute("SELECT host FROM health_hosts WHERE run_id = ?", (run_id,))]
    for host in hosts:
        base = conn.execute(
            "SELECT r.id, r.started_at FROM health_runs r JOIN health_hosts hh ON hh.run_id = r.id WHERE r.cluster = ?"
            " AND hh.host = ? AND r.id < ? AND r.started_at <= ? ORDER BY r.id DESC LIMIT 1",
            (cluster, host, run_id, cutoff),
        ).fetchone()
        if base is None:
            base = conn.execute(
                "SELECT r.id, r.started_at FROM health_runs r JOIN health_hosts hh ON hh.run_id = r.id"
                " WHERE r.cluster = ? AND hh.host = ? AND r.id < ? ORDER BY r.id ASC LIMIT 1",
                (cluster, host, run_id),
            ).fetchone()
        before = {(r.check, r.subject): r for r in _results(conn, base["id"], host)} if base else {}
        after = {(r.check, r.subject): r for r in _results(conn, run_id, host)}
        since = base["started_at"] if base else None
        for key in sorted(set(before) | set(after)):
            b, a = before.get(key), after.get(key)
            was, cur = (b.verdict if b else ""), (a.verdict if a else "")
            if was == cur or (not b and cur == OK) or (not a and was == OK):
                continue
            out.append(Change(host, key[0], key[1], was, cur, (a or b).value, since))  # type: ignore[union-attr]
    return out
