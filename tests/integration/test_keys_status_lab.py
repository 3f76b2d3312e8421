"""`dccli keys status`, status_columns and `dccli keys host-rotate` against real sshd hosts."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from labcli import dccli
from labssh import ssh_ok

pytestmark = pytest.mark.lab



def openssh_fingerprint(known_hosts: Path, address: str) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-F", address, "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split()[2] for line in out.splitlines() if "ED25519" in line)


def test_status_before_and_after_rotation(make_lab, tmp_path):
    from dccli.inventory.loader import load
    from dccli.keys.status import status_columns

    lab = make_lab(hosts=2)
    home = tmp_path / "home"
    inv = str(lab.inventory_path)
    before = dccli("keys", "status", "-i", inv, "--json", home=home)
    assert before.returncode == 0, before.stderr
    hosts = json.loads(before.stdout)["hosts"]
    for h in hosts:
        assert [(k["name"], k["current"]) for k in h["authorized"]] == [("inventory:id_ed25519", True)]
        assert h["host_key"]["known"] and h["ca_trusted"] is None and h["last_rotation"] is None
        address = lab.host(h["host"]).address
        assert h["host_key"]["fingerprint"] == openssh_fingerprint(lab.known_hosts_path, address)
    assert dccli("keys", "rotate", "-i", inv, home=home).returncode == 0
    after = json.loads(dccli("keys", "status", "-i", inv, "--json", home=home).stdout)["hosts"]
    for h in after:
        assert len(h["authorized"]) == 1 and h["authorized"][0]["name"].startswith("dccli-")
        assert h["authorized"][0]["current"] and h["last_rotation"]["outcome"] == "ok"
        assert 0 <= h["key_age_s"] < 600
    text = dccli("keys", "status", "-i", inv, home=home).stdout
    assert text.splitlines()[0].split()[0] == "HOST" and "node02" in text
    with sqlite3.connect(home / "state.db") as db:
        db.row_factory = sqlite3.Row
        cols = status_columns(db, load(lab.inventory_path), home=home)
    assert cols["node01"]["key age"] == "0m" and cols["node01"]["key rotated"] != "never"
    # a host whose key changed behind dccli's back: reported, exit 4, the others still listed
    from dccli.lab.host import regenerate_host_keys

    regenerate_host_keys(lab, "node02")
    changed = dccli("keys", "status", "-i", inv, "--json", home=home)
    assert changed.returncode == 4, changed.stderr
    by_host = {h["host"]: h for h in json.loads(changed.stdout)["hosts"]}
    assert (
        by_host["node02"]["host_key"] == {"known": False} and "HOST KEY CHANGED" in by_host["node02"]["error"]
    )
    assert by_host["node01"]["host_key"]["known"]


def test_host_rotate_records_the_new_host_key_in_the_same_step(make_lab, tmp_path):
    lab = make_lab(hosts=2)
    home = tmp_path / "home"
    inv = str(lab.inventory_path)
    old_known = tmp_path / "known_hosts.before"
    shutil.copy(lab.known_hosts_path, old_known)
    address = lab.host("node01").address
    old_fp = openssh_fingerprint(lab.known_hosts_path, address)
    proc = dccli("keys", "host-rotate", "node01", "-i", inv, "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["host_rotation"]
    assert doc["old"]["fingerprint"] == old_fp and doc["new"]["fingerprint"] != old_fp
    served = lab.host("node01").upper_dir.joinpath("etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[1]
    import base64

    from dccli.transport.hostkeys import fingerprint

    assert fingerprint(base64.b64decode(served)) == doc["new"]["fingerprint"]
    # OpenSSH agrees: dccli's known_hosts and the inventory's hold the new key, the old copy is refused
    assert openssh_fingerprint(home / "known_hosts", address) == doc["new"]["fingerprint"]
    assert ssh_ok(lab, "node01", lab.key_path, known_hosts=lab.known_hosts_path)
    assert not ssh_ok(lab, "node01", lab.key_path, known_hosts=old_known)
    assert ssh_ok(lab, "node02", lab.key_path, known_hosts=old_known)  # the other host is untouched
    run = dccli("run", "-i", inv, "hostname", home=home)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(home / "state.db") as db:
        row = db.execute("SELECT host, kind, old_fingerprint, outcome FROM key_rotations").fetchone()
    assert row == ("node01", "host-rotate", old_fp, "ok")
    assert dccli("keys", "host-rotate", "nosuch", "-i", inv, home=home).returncode == 2
