"""Training runs in the real state DB (SQLite, WAL, migrations): conditional state moves, lookups."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pytest

from dccli.errors import UsageError
from dccli.train import store
from dccli.train.model import AttemptRecord, Failure, NodeRecord, RunSpec


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("DCCLI_HOME", str(tmp_path))
    with store.opened() as conn:
        yield conn


def attempt(number=0, port=29600):
    return AttemptRecord(
        number,
        f"tr-1-a{number}",
        "n1",
        f"127.0.0.1:{port}",
        "STARTING",
        1.0,
        (
            NodeRecord("n1", "127.0.0.1", 0, f"/d/attempt-{number}"),
            NodeRecord("n2", "127.0.0.2", 1, f"/d/attempt-{number}"),
        ),
    )


def test_states_only_move_forward(db):
    spec = RunSpec("t.py", (), ("n1", "n2"), 2, env_keys=("TOKEN",))
    store.create(db, run_id="tr-00000001", name="bert", cluster="c", state="PENDING", spec=spec)
    store.put_attempt(db, "tr-00000001", attempt())
    assert store.set_state(db, "tr-00000001", "RUNNING", only_from=("PENDING",))
    assert store.active_ports(db) == [29600]
    fail = Failure("n2", 5.0, "frozen", "NODE_FAIL")
    assert store.set_state(db, "tr-00000001", "NODE_FAIL", attempt_change=lambda a: replace(a, failure=fail))
    # a late writer (stop, or a second watcher) cannot turn a finished run into another state
    assert not store.set_state(db, "tr-00000001", "CANCELLED", only_from=("STOPPING",))
    assert not store.set_state(db, "tr-00000001", "SUCCEEDED")
    run = store.resolve(db, "bert")
    assert run.state == "NODE_FAIL" and run.latest.failure == fail and run.latest.ended_at
    assert store.active_ports(db) == []
    # JSON, not pickle: the attempt row is readable by anyone with sqlite3
    raw = db.execute("SELECT data FROM train_attempts").fetchone()[0]
    assert json.loads(raw)["nodes"][1]["host"] == "n2"
    assert isinstance(db, sqlite3.Connection)


def test_update_attempt_and_lookup_by_prefix(db):
    spec = RunSpec("t.py", (), ("n1", "n2"), 1)
    for rid in ("tr-aaaa0001", "tr-aaaa0002", "tr-bbbb0001"):
        store.create(db, run_id=rid, name=None, cluster="c", state="PENDING", spec=spec)
    store.put_attempt(db, "tr-bbbb0001", attempt())
    store.update_attempt(db, "tr-bbbb0001", 0, lambda a: a.with_node(replace(a.node("n2"), exit_code=7)))
    assert store.resolve(db, "tr-bbbb").latest.node("n2").exit_code == 7
    with pytest.raises(UsageError, match="ambiguous"):
        store.resolve(db, "tr-aaaa")
    with pytest.raises(UsageError, match="no training run"):
        store.resolve(db, "nope")
    assert len(store.listing(db, "c")) == 3 and store.listing(db, "other") == []


def test_status_columns_show_active_runs_per_host(db, tmp_path):
    from dccli.inventory.loader import load
    from dccli.train.status import status_columns

    inv_path = tmp_path / "inv.yml"
    inv_path.write_text('cluster: c\nhosts:\n  n[1-3]: {address: "10.0.0.[1-3]"}\n')
    inv = load(inv_path)
    store.create(
        db,
        run_id="tr-00000009",
        name="gpt",
        cluster="c",
        state="RUNNING",
        spec=RunSpec("t.py", (), ("n1", "n2"), 8),
    )
    store.create(
        db,
        run_id="tr-00000010",
        name=None,
        cluster="c",
        state="SUCCEEDED",
        spec=RunSpec("t.py", (), ("n3",), 8),
    )
    cols = status_columns(db, inv)
    assert cols["n1"]["runs"] == "gpt RUNNING (node 0/2)"
    assert cols["n2"]["runs"] == "gpt RUNNING (node 1/2)"
    assert cols["n3"]["runs"] == "-"  # finished runs are not shown
