"""State DB (real SQLite, WAL, migrations) and endpoint resolution with a real ssh_config file."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from dccli.executor import HostOutcome
from dccli.state import commands, db
from dccli.transport.options import load_ssh_config, parse_jump_spec, resolve_endpoint


def test_wal_and_migrations_are_idempotent(tmp_path):
    path = tmp_path / "state.db"
    conn = db.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [name for name, _ in db.migrations()] and "core_001_commands" in names
    conn.close()
    again = db.connect(path)  # a second open applies nothing twice
    assert again.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(names)


def test_last_failed_is_per_cluster_and_latest(tmp_path):
    conn = db.connect(tmp_path / "s.db")
    first = [HostOutcome("a", "ok"), HostOutcome("b", "unreachable", error="down"), HostOutcome("c", "failed")]
    commands.record(conn, cluster="x", kind="run", command="true", started_at=1.0, outcomes=first, exit_code=3)
    commands.record(conn, cluster="y", kind="run", command="true", started_at=2.0,
                    outcomes=[HostOutcome("z", "failed")], exit_code=1)
    assert commands.last_failed(conn, "x") == ["b", "c"]
    commands.record(conn, cluster="x", kind="run", command="true", started_at=3.0,
                    outcomes=[HostOutcome("b", "ok"), HostOutcome("c", "ok")], exit_code=0)
    assert commands.last_failed(conn, "x") == []
    assert commands.last_failed(conn, "nope") == []


def test_concurrent_writers_wait_instead_of_failing(tmp_path):
    path = tmp_path / "s.db"
    a, b = db.connect(path), db.connect(path)
    a.execute("BEGIN IMMEDIATE")
    b.execute("PRAGMA busy_timeout = 100")
    try:
        b.execute("BEGIN IMMEDIATE")
        raise AssertionError("second writer should have waited and timed out")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
    a.execute("COMMIT")


def host(**kw):
    base = dict(name="gpu01", address="gpu01", port=22, user="root", identity_file=None, jump=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_ssh_config_fills_what_the_inventory_left_open(tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text(
        "Host gpu01\n  HostName 10.9.0.1\n  Port 2200\n  User ops\n  IdentityFile ~/.ssh/ops_key\n  ProxyJump bastion\n"
        "Host gpu02\n  HostName 10.9.0.2\n  User ops\n"
    )
    conf = load_ssh_config(cfg)
    ep = resolve_endpoint(host(), conf)
    assert (ep.address, ep.port, ep.user, ep.jump) == ("10.9.0.1", 2200, "ops", "bastion")
    assert ep.identity_files[0].endswith("/.ssh/ops_key")
    # The inventory's explicit address, user and jump win over ssh_config.
    ep2 = resolve_endpoint(host(name="gpu02", address="10.1.0.2", identity_file="/k", jump="b2"), conf)
    assert (ep2.address, ep2.user, ep2.jump, ep2.identity_files) == ("10.1.0.2", "root", "b2", ("/k",))
    assert ep2.known_hosts_names == ["10.1.0.2"]  # by address only, like OpenSSH after HostName


def test_jump_spec():
    assert parse_jump_spec("ops@bastion:2222", "root") == ("ops", "bastion", 2222)
    assert parse_jump_spec("bastion", "root") == ("root", "bastion", 22)
    assert parse_jump_spec("[::1]:2200", "root") == ("root", "::1", 2200)


def test_database_from_numbered_migrations_is_adopted(tmp_path):
    """A state.db made when migrations were counted in user_version keeps its data and migrates on."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    for name, script in db.migrations():
        if name in db._NUMBERED:  # what user_version = 2 used to mean
            old.executescript(script)
    old.execute("INSERT INTO facts(cluster, host, gathered_at, data) VALUES ('c', 'h', 1.0, '{}')")
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM facts").fetchone()[0] == 1
    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    assert applied == {name for name, _ in db.migrations()}
