"""`train launch --sync DIR`: the scan-and-push behind it, against real lab hosts over SFTP."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.lab


def test_sync_pushes_only_changed_files(make_lab, tmp_path):
    from dccli.inventory.loader import load
    from dccli.lab.host import host_exec
    from dccli.remote.session import Step, run_steps
    from dccli.train import sync
    from dccli.transport.options import ConnectOptions
    from dccli.transport.pool import ConnectionPool

    lab = make_lab(hosts=2)
    src = tmp_path / "code"  # under /tmp: the hosts do not see it until it is pushed
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('v1')\n")
    (src / "pkg" / "model.py").write_text("W = 1\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"skip me")
    inv = load(lab.inventory_path)

    def push_all() -> list[sync.SyncResult]:
        out = []
        with ConnectionPool(inv, ConnectOptions(ssh_config_path=None)) as pool:
            for host in inv.hosts:
                conn = pool.get(host)
                (scan,) = run_steps(conn, [Step("scan", "train_scan", {"root": str(src)})])
                assert scan.ok, scan.error
                out.append(sync.push(conn, src, (scan.data or {}).get("files") or {}))
        return out

    first = push_all()
    assert [(r.pushed, r.unchanged) for r in first] == [(2, 0), (2, 0)]
    for host in inv.hosts:
        got = host_exec(lab, host.name, ["cat", str(src / "train.py"), str(src / "pkg" / "model.py")])
        assert got.stdout == "print('v1')\nW = 1\n"
        assert host_exec(lab, host.name, ["test", "-e", str(src / "__pycache__" / "x.pyc")]).returncode != 0
    assert [(r.pushed, r.unchanged) for r in push_all()] == [(0, 2), (0, 2)]  # nothing changed: nothing sent
    (src / "train.py").write_text("print('version 2')\n")
    os.utime(src / "train.py", (1_700_000_000, 1_700_000_000))
    again = push_all()
    assert [(r.pushed, r.unchanged) for r in again] == [(1, 1), (1, 1)]
    for host in inv.hosts:
        assert host_exec(lab, host.name, ["cat", str(src / "train.py")]).stdout == "print('version 2')\n"
