"""Control-node state of the keys capability: key pairs (real ssh-keygen), identity map, audit (real SQLite)."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import closing

import pytest

from dccli.errors import LockedError
from dccli.keys import audit
from dccli.keys.rotate import choose_target
from dccli.keys.store import KeyStore
from dccli.transport.identities import IdentityMap, endpoint_id
from dccli.transport.options import Endpoint

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")


def ep(address: str) -> Endpoint:
    return Endpoint("n", address, 22, "root", ("/inventory/key",), None)


def test_identity_map_puts_the_rotated_key_first_and_keeps_the_inventory_key(tmp_path):
    path = tmp_path / "identities.json"
    assert IdentityMap(path).apply(ep("10.0.0.1")) == ep("10.0.0.1")  # no file: nothing changes
    m = IdentityMap(path)
    m.set(endpoint_id("root", "10.0.0.1", 22), "/new/key", complete=True)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = IdentityMap(path)  # persisted at once
    assert again.apply(ep("10.0.0.1")).identity_files == ("/new/key", "/inventory/key")
    assert again.apply(ep("10.0.0.2")).identity_files == ("/inventory/key",)
    path.write_text("{not json")
    assert IdentityMap(path).entries() == {}  # damaged: the inventory's keys still apply


def test_generate_archive_and_current(tmp_path):
    store = KeyStore(tmp_path)
    assert store.current() is None
    first = store.generate("ed25519")
    assert oct(first.path.stat().st_mode & 0o777) == "0o600" and first.key_type == "ssh-ed25519"
    assert first.fingerprint.startswith("SHA256:") and first.public_line().endswith(first.name.encode())
    second = store.generate("ecdsa")
    assert store.current() == second and [p.name for p in store.pairs()] == [first.name, second.name]
    archived = store.archive(first)
    assert archived.archived and archived.path.is_file() and not first.path.exists()
    assert [p.name for p in store.pairs(include_archived=True)] == [second.name, first.name]


def test_a_rerun_continues_an_unfinished_rotation_then_rotates_anew(tmp_path):
    store = KeyStore(tmp_path)
    m = IdentityMap(tmp_path / "identities.json")
    eps = [ep("10.0.0.1"), ep("10.0.0.2")]
    target, generated = choose_target(store, m, eps, "ed25519", new_key=False)
    assert generated
    m.set(endpoint_id("root", "10.0.0.1", 22), str(target.path), complete=True)
    again, generated = choose_target(store, m, eps, "ed25519", new_key=False)
    assert (again, generated) == (target, False)  # 10.0.0.2 has not finished: same key
    m.set(endpoint_id("root", "10.0.0.2", 22), str(target.path), complete=True)
    fresh, generated = choose_target(store, m, eps, "ed25519", new_key=False)
    assert generated and fresh != target  # everyone done: rotating means a new key
    other, generated = choose_target(store, m, eps, "ecdsa", new_key=False)
    assert generated and other.key_type == "ecdsa-sha2-nistp256"


def test_only_one_keys_command_at_a_time(tmp_path):
    store = KeyStore(tmp_path)
    with store.lock(), pytest.raises(LockedError), store.lock():
        pass
    with store.lock():
        pass  # released


def test_audit_rows_and_last_rotation(tmp_path):
    rows = [
        audit.AuditRow(
            "node01",
            "root@a:22",
            "rotate",
            "failed",
            "SHA256:old",
            "SHA256:new",
            "add",
            "node01: read-only",
            0.1,
            at=100.0,
        ),
        audit.AuditRow(
            "node01", "root@a:22", "rotate", "ok", "SHA256:old", "SHA256:new", "done", None, 0.1, at=200.0
        ),
    ]
    audit.record(tmp_path, "c1", rows)
    audit.record(tmp_path, "c1", [audit.AuditRow("node01", "root@a:22", "rotate", "unreachable", at=300.0)])
    with closing(audit.open_db(tmp_path)) as db:
        last = audit.last_rotations(db, "c1")["node01"]
        assert (last["outcome"], last["last_ok_at"]) == ("unreachable", 200.0)
        assert [r["outcome"] for r in audit.history(db, "c1", "node01")] == ["unreachable", "ok", "failed"]
        assert audit.history(db, "other") == []
    assert json.dumps(rows[0].__dict__)  # plain values only
    assert os.path.isfile(tmp_path / "state.db")
