"""Training runs in the state DB (SQLite, WAL): runs, attempts (JSON), and a short event log per run.

Several processes write a run: `train launch`, its watcher, `train stop`. State changes are conditional
UPDATEs inside BEGIN IMMEDIATE, so a late writer never turns a finished run back into a running one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dccli.errors import UsageError
from dccli.state.db import transaction
from dccli.train.model import ACTIVE, TERMINAL, AttemptRecord, RunRecord, RunSpec


@contextmanager
def opened() -> Iterator[sqlite3.Connection]:
    from dccli.state import db

    conn = db.connect()
    try:
        yield conn
    finally:
        conn.close()


def create(
    conn: sqlite3.Connection,
    *,
    run_id: str,
    name: str | None,
    cluster: str,
    state: str,
    spec: RunSpec,
    now: float | None = None,
) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO train_runs(id, name, cluster, state, created_at, spec) VALUES (?,?,?,?,?,?)",
            (run_id, name, cluster, state, now or time.time(), json.dumps(spec.to_dict())),
        )


def put_attempt(conn: sqlite3.Connection, run_id: str, attempt: AttemptRecord) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO train_attempts(run_id, number, state, data) VALUES (?,?,?,?)",
            (run_id, attempt.number, attempt.state, json.dumps(attempt.to_dict())),
        )


def update_attempt(
    conn: sqlite3.Connection, run_id: str, number: int, change: Callable[[AttemptRecord], AttemptRecord]
) -> AttemptRecord:
    """Read-modify-write of one attempt in one transaction (the watcher and `stop` both write nodes)."""
    with transaction(conn):
        row = conn.execute(
            "SELECT data FROM train_attempts WHERE run_id=? AND number=?", (run_id, number)
        ).fetchone()
        new = change(AttemptRecord.from_dict(json.loads(row["data"])))
        conn.execute(
            "UPDATE train_attempts SET state=?, data=? WHERE run_id=? AND number=?",
            (new.state, json.dumps(new.to_dict()), run_id, number),
        )
    return new


def set_state(
    conn: sqlite3.Connection,
    run_id: str,
    state: str,
    *,
    only_from: tuple[str, ...] = ACTIVE,
    attempt_change: Callable[[AttemptRecord], AttemptRecord] | None = None,
    touch_attempt: bool = True,
) -> bool:
    """Move the run (and its latest attempt) to `state` if it is currently in `only_from`; True if it moved.

    touch_attempt=False moves the run only: a run about to start its next attempt must not rewrite
    how the previous attempt ended."""
    with transaction(conn):
        row = conn.execute("SELECT state FROM train_runs WHERE id=?", (run_id,)).fetchone()
        if row is None or row["state"] not in only_from:
            return False
        ended = time.time() if state in TERMINAL else None
        conn.execute("UPDATE train_runs SET state=?, ended_at=? WHERE id=?", (state, ended, run_id))
        arow = conn.execute(
            "SELECT number, data FROM train_attempts WHERE run_id=? ORDER BY number DESC LIMIT 1", (run_id,)
        ).fetchone()
        if arow is not None and touch_attempt:
            from dataclasses import replace

            att = AttemptRecord.from_dict(json.loads(arow["data"]))
            att = replace(att, state=state, ended_at=ended or att.ended_at)
            if attempt_change is not None:
                att = attempt_change(att)
            conn.execute(
                "UPDATE train_attempts SET state=?, data=? WHERE run_id=? AND number=?",
                (att.state, json.dumps(att.to_dict()), run_id, arow["number"]),
            )
    return True


def reopen(conn: sqlite3.Connection, run_id: str, state: str) -> None:
    """A resumed run is active again (its earlier attempts stay as they were)."""
    with transaction(conn):
        conn.execute("UPDATE train_runs SET state=?, ended_at=NULL WHERE id=?", (state, run_id))


def set_watcher(conn: sqlite3.Connection, run_id: str, pid: int | None) -> None:
    conn.execute("UPDATE train_runs SET watcher_pid=? WHERE id=?", (pid, run_id))


def event(conn: sqlite3.Connection, run_id: str, message: str) -> None:
    conn.execute(
        "INSERT INTO train_events(run_id, at, message) VALUES (?,?,?)", (run_id, time.time(), message)
    )


def state_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT state FROM train_runs WHERE id=?", (run_id,)).fetchone()
    return None if row is None else row["state"]


def latest_attempt(conn: sqlite3.Connection, run_id: str) -> int | None:
    """The number of the run's newest attempt (a restart adds one while the run goes on)."""
    row = conn.execute("SELECT MAX(number) AS n FROM train_attempts WHERE run_id=?", (run_id,)).fetchone()
    return None if row is None else row["n"]


def _record(conn: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
    attempts = tuple(
        AttemptRecord.from_dict(json.loads(r["data"]))
        for r in conn.execute("SELECT data FROM train_attempts WHERE run_id=? ORDER BY number", (row["id"],))
    )
    events = tuple(
        f"{r['at']:.3f} {r['message']}"
        for r in conn.execute("SELECT at, message FROM train_events WHERE run_id=? ORDER BY at", (row["id"],))
    )
    return RunRecord(
        row["id"],
        row["name"],
        row["cluster"],
        row["state"],
        row["created_at"],
        RunSpec.from_dict(json.loads(row["spec"])),
        attempts,
        row["ended_at"],
        row["watcher_pid"],
        events,
    )


def get(conn: sqlite3.Connection, run_id: str) -> RunRecord:
    row = conn.execute("SELECT * FROM train_runs WHERE id=?", (run_id,)).fetchone()
    if row is None:
        raise UsageError(f"no training run {run_id!r}")
    return _record(conn, row)


def resolve(conn: sqlite3.Connection, ref: str) -> RunRecord:
    """A run by id, unique id prefix, or name (the newest run of that name)."""
    row = conn.execute("SELECT * FROM train_runs WHERE id=?", (ref,)).fetchone()
    if row is None:
        rows = conn.execute(
            "SELECT * FROM train_runs WHERE name=? ORDER BY created_at DESC LIMIT 1", (ref,)
        ).fetchall()
        if not rows:
            rows = conn.execute(
                "SELECT * FROM train_runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC",
                (ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            ).fetchall()
            if len(rows) > 1:
                raise UsageError(f"run {ref!r} is ambiguous: " + ", ".join(r["id"] for r in rows[:5]))
        if not rows:
            raise UsageError(f"no training run {ref!r} (see: dccli train ls)")
        row = rows[0]
    return _record(conn, row)


def listing(conn: sqlite3.Connection, cluster: str | None = None, limit: int = 50) -> list[RunRecord]:
    if cluster:
        rows = conn.execute(
            "SELECT * FROM train_runs WHERE cluster=? ORDER BY created_at DESC LIMIT ?", (cluster, limit)
        )
    else:
        rows = conn.execute("SELECT * FROM train_runs ORDER BY created_at DESC LIMIT ?", (limit,))
    return [_record(conn, r) for r in rows.fetchall()]


def active_ports(conn: sqlite3.Connection) -> list[int]:
    """Rendezvous ports recorded by runs that are still active (not to be handed out again)."""
    ports = []
    for r in conn.execute(
        "SELECT a.data FROM train_attempts a JOIN train_runs r ON r.id=a.run_id WHERE r.state IN (?,?,?,?)",
        ACTIVE,
    ):
        endpoint = json.loads(r["data"]).get("rdzv_endpoint", "")
        if endpoint.rpartition(":")[2].isdigit():
            ports.append(int(endpoint.rpartition(":")[2]))
    return ports
