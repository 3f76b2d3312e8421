"""`lab up --share`: a control-node directory the hosts' overlay cannot show, bound read-only into each host."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.lab


def test_shared_directory_is_visible_read_only(make_lab, tmp_path):
    shared = tmp_path / "checkout"  # under /tmp: each host mounts a fresh /tmp, so it is unseen there
    shared.mkdir()
    (shared / "train.py").write_text("print('hello')\n")
    from dccli.lab.host import host_exec
    from dccli.lab.manager import unseen_by_hosts

    assert unseen_by_hosts([str(shared)]) == (str(shared.resolve()),)
    lab = make_lab(hosts=1, shares=(str(shared),))
    seen = host_exec(lab, "node01", ["cat", str(shared / "train.py")])
    assert seen.returncode == 0 and seen.stdout == "print('hello')\n"
    write = host_exec(lab, "node01", ["sh", "-c", f"echo x > {shared}/new 2>&1; echo rc=$?"])
    assert "Read-only file system" in write.stdout + write.stderr and "rc=2" in write.stdout
    assert not (shared / "new").exists()
    # A reboot keeps the share (it is part of the lab, not of one start).
    from dccli.lab.reboot import reboot
    from dccli.lab.registry import load

    reboot(lab.name, "node01")
    again = host_exec(load(lab.name), "node01", ["cat", str(shared / "train.py")])
    assert again.returncode == 0 and again.stdout == "print('hello')\n"


def test_share_is_validated(tmp_path):
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "dccli", "lab", "up", "--hosts", "1", "--name", "badshare",
                           "--share", str(tmp_path / "missing")], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_nested_shares_are_bound_once(make_lab, tmp_path):
    (tmp_path / "repo" / ".venv").mkdir(parents=True)
    lab = make_lab(hosts=1, shares=(str(tmp_path / "repo"), str(tmp_path / "repo" / ".venv")))
    assert lab.shares == (str((tmp_path / "repo").resolve()),)
