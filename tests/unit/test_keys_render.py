"""What `dccli keys` prints: each host's fate and which key it still accepts; bad usage exits 2, one line."""

from __future__ import annotations

import os
import subprocess
import sys

from dccli.keys.model import HostRotation, KeyStatus, RotationReport
from dccli.output.keys import age, rotation_lines, status_lines

KEY = {
    "name": "dccli-20261129T140203.000001Z-662844",
    "path": "/k",
    "type": "ssh-ed25519",
    "fingerprint": "SHA256:e2ueIfZPIyE1KTj6FGaTEBNt7usS120Pj/pTEMlwlbQ",
    "created_at": 0.0,
    "archived": False,
}


def test_rotation_lines_name_every_host_and_the_key_it_keeps():
    hosts = (
        HostRotation(
            "node01",
            "rotated",
            "done",
            KEY["fingerprint"],
            ("SHA256:oldoldoldoldoldold1",),
            KEY["fingerprint"],
            duration_s=0.12,
        ),
        HostRotation(
            "node02",
            "failed",
            "add",
            KEY["fingerprint"],
            error="node02: cannot replace ~/.ssh/authorized_keys",
        ),
        HostRotation(
            "node03", "failed", "remove", KEY["fingerprint"], uses=KEY["fingerprint"], error="node03: gone"
        ),
    )
    lines = rotation_lines(RotationReport(KEY, True, hosts, ("dccli-old",)))
    assert lines[0].startswith("# new key dccli-20261129T140203.000001Z-662844 (ssh-ed25519 SHA256:e2ue")
    assert lines[1] == "node01  rotated, removed SHA256:oldoldoldold… (0.12s)"
    assert (
        lines[2]
        == "node02  FAILED at add: cannot replace ~/.ssh/authorized_keys; still accepts its current key"
    )
    assert lines[3] == "node03  FAILED at remove: gone; still accepts the new key (already switched)"
    assert lines[4] == "# archived (no host uses them): dccli-old"
    assert RotationReport(KEY, False, ()).to_dict()["generated"] is False


def test_status_lines_are_a_table():
    rows = [
        KeyStatus(
            "node01",
            ({"name": "dccli-a", "fingerprint": "SHA256:x", "current": True},),
            "/k",
            7200.0,
            {"at": 1.0, "outcome": "ok"},
            {"type": "ssh-ed25519", "fingerprint": "SHA256:abc", "known": True},
        ),
        KeyStatus("node02", (), None, None, None, error="node02: HOST KEY CHANGED"),
    ]
    lines = status_lines(rows)
    assert lines[0].split() == [
        "HOST",
        "DCCLI",
        "KEYS",
        "AUTHORIZED",
        "LOGIN",
        "KEY",
        "AGE",
        "LAST",
        "ROTATION",
        "HOST",
        "KEY",
        "CA",
    ]
    assert "dccli-a*" in lines[1] and "2h" in lines[1] and "known" in lines[1]
    assert "error: HOST KEY CHANGED" in lines[2]
    assert [age(s) for s in (None, 59, 3600, 86400 * 3)] == ["-", "0m", "1h", "3d"]


def test_bad_key_type_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, DCCLI_HOME=str(tmp_path), NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "dccli", "keys", "rotate", "--type", "dsa"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and "--type dsa: expected one of ed25519, ecdsa, rsa" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "keys").exists()
