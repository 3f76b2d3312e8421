"""`dccli status` columns from the state DB (real SQLite, migrations applied)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from dccli.backup import records
from dccli.backup.run import HostBackup
from dccli.backup.status import age, status_columns
from dccli.inventory.loader import loads

INV = "cluster: c1\nhosts:\n  n[1-3]: {address: '10.0.0.[1-3]'}\n"


def test_last_successful_backup_and_its_age(tmp_path: Path) -> None:
    from dccli.state import db

    inv = loads(INV)
    with closing(db.connect(tmp_path / "state.db")) as conn:
        records.start_run(conn, "r1", "c1", ["ckpt"], scheduled=True)
        records.record_host(conn, "r1", "c1", HostBackup("n1", "ckpt", "main", "ok", "1a2b3c4d5e"))
        records.record_host(conn, "r1", "c1", HostBackup("n2", "ckpt", "main", "failed", errors=("boom",)))
        records.finish_run(conn, "r1", 1)
        finished = conn.execute("SELECT finished_at FROM backup_hosts WHERE host = 'n1'").fetchone()[0]
        cols = status_columns(conn, inv, now=finished + 7300)
    assert cols == {
        "n1": {"last backup": "2h ago (ckpt 1a2b3c4d)"},
        "n2": {"last backup": "never"},
        "n3": {"last backup": "never"},
    }


def test_age() -> None:
    assert [age(s) for s in (5, 65, 3700, 90000, -3)] == ["5s", "1m", "1h", "1d", "0s"]
