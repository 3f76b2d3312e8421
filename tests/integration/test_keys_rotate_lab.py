"""`dccli keys rotate` against real sshd hosts; OpenSSH's own `ssh` is the judge of who gets in."""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path

import psutil
import pytest
from labcli import dccli
from labssh import ssh_ok

pytestmark = pytest.mark.lab



def current_key(home: Path) -> Path:
    keys = sorted(p for p in (home / "keys").glob("dccli-*") if p.suffix != ".pub" and "-cert" not in p.name)
    return keys[-1]


def authorized_keys(lab, host_name: str) -> bytes:
    return lab.host(host_name).upper_dir.joinpath("root/.ssh/authorized_keys").read_bytes()


def test_rotate_eight_hosts_new_key_in_old_key_out(make_lab, tmp_path):
    lab = make_lab(hosts=8)
    home = tmp_path / "home"
    proc = dccli("keys", "rotate", "-i", str(lab.inventory_path), "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["rotation"]
    assert doc["generated"] and [h["outcome"] for h in doc["hosts"]] == ["rotated"] * 8
    new = current_key(home)
    assert oct(new.stat().st_mode & 0o777) == "0o600"
    for h in lab.hosts:
        assert ssh_ok(lab, h.name, new), h.name
        assert not ssh_ok(lab, h.name, lab.key_path), h.name
    # dccli itself now logs in with the new key (the identity map), through the unchanged inventory
    run = dccli("run", "-i", str(lab.inventory_path), "hostname", home=home)
    assert run.returncode == 0, run.stderr
    # every rotation is audited: host, old and new fingerprints, outcome
    import sqlite3

    rows = (
        sqlite3.connect(home / "state.db")
        .execute("SELECT host, old_fingerprint, new_fingerprint, outcome FROM key_rotations")
        .fetchall()
    )
    assert sorted(r[0] for r in rows) == [h.name for h in lab.hosts]
    assert all(r[3] == "ok" and r[1] and r[2] == doc["key"]["fingerprint"] for r in rows)
    # a second rotation moves on to a newer key and archives the first (kept, not deleted)
    again = dccli("keys", "rotate", "-i", str(lab.inventory_path), "-l", "node[01-08]", home=home)
    assert again.returncode == 0, again.stderr
    newer = current_key(home)
    assert newer != new and (home / "keys" / "archive" / new.name).is_file()
    assert ssh_ok(lab, "node05", newer) and not ssh_ok(lab, "node05", home / "keys" / "archive" / new.name)


ODD = (
    b"# a comment someone wrote\r\n"
    b'command="/usr/bin/backup --from \\"a b\\"",no-pty,from="10.0.0.0/8" ssh-ed25519 '
    b"AAAAC3NzaC1lZDI1NTE5AAAAIGbYtvpm8C3DShwbJMfBQXAvkRUOJ9V8Ajw1O/gJ0vjD backup@tool\n"
    b"\n"
    b"   \t\n"
    b'cert-authority,principals="ops" ssh-ed25519 '
    b"AAAAC3NzaC1lZDI1NTE5AAAAIDmX66lplvqP1vzsoRSQMrTzxM8ZFFi6v2MLGAhCAa2d corp-ca\r\n"
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIDEZNSo4ZhJmn3aMxCgU8yS0dPmL9/UlZDzW34yNJRO alice@laptop\r\n"
)


def test_other_keys_survive_byte_for_byte(make_lab, tmp_path):
    from dccli.lab.host import host_exec

    lab = make_lab(hosts=2)
    home = tmp_path / "home"
    lab_line = lab.key_path.with_name(lab.key_path.name + ".pub").read_bytes().strip()
    # our key in the middle, other tools' lines around it, and an unterminated last line
    before = (
        ODD
        + lab_line
        + b"\n"
        + b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKr1+nPXy8h2f5f0oNDPGTi7Qt1Q0bmCNZ5BW8x1mDsZ bob"
    )
    script = "cat > /root/.ssh/authorized_keys && chmod 640 /root/.ssh/authorized_keys && chgrp 4 /root/.ssh/authorized_keys"
    assert host_exec(lab, "node01", ["sh", "-c", script], input=before, text=False).returncode == 0
    proc = dccli("keys", "rotate", "-i", str(lab.inventory_path), home=home)
    assert proc.returncode == 0, proc.stderr
    new = current_key(home)
    after = authorized_keys(lab, "node01")
    new_line = new.with_name(new.name + ".pub").read_bytes().strip()
    assert after == new_line + b"\n" + before.replace(lab_line + b"\n", b"")
    st = lab.host("node01").upper_dir.joinpath("root/.ssh/authorized_keys").stat()
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o640", 0, 4)
    assert ssh_ok(lab, "node01", new) and not ssh_ok(lab, "node01", lab.key_path)


def sshd_listener(lab, host_name: str) -> psutil.Process:
    init = psutil.Process(lab.host(host_name).init_pid)
    return next(p for p in init.children(recursive=True) if p.name() == "sshd" and p.ppid() == init.pid)


def test_faults_mid_rotation_never_lock_out_and_a_rerun_finishes(make_lab, tmp_path, monkeypatch):
    """node01: sshd stopped after the new key is added; node02: authorized_keys read-only; node03: sshd
    frozen after the add; node04: dccli dies right after switching to the new key; node05: clean;
    node06: the whole host (every process, open sessions too) frozen once connected."""
    from dccli.inventory.loader import load
    from dccli.keys import authfile
    from dccli.keys.rotate import rotate
    from dccli.lab.host import host_exec, sshd_start, sshd_stop
    from dccli.transport.identities import IdentityMap
    from dccli.transport.options import ConnectOptions
    from dccli.transport.pool import ConnectionPool

    monkeypatch.setattr(authfile, "SFTP_TIMEOUT_S", 2.0)
    lab = make_lab(hosts=6)
    home = tmp_path / "home"
    ro = "mount --bind /root/.ssh /root/.ssh && mount -o remount,bind,ro /root/.ssh"
    assert host_exec(lab, "node02", ["sh", "-c", ro]).returncode == 0  # root ignores modes: a read-only mount
    frozen: list[psutil.Process] = []

    def fault(host: str, step: str) -> None:
        if (host, step) == ("node01", "add"):
            sshd_stop(lab, "node01")  # open sessions survive, as on a real host; new logins are refused
        elif (host, step) == ("node03", "add"):
            frozen.append(sshd_listener(lab, "node03"))
            frozen[-1].send_signal(signal.SIGSTOP)
        elif (host, step) == ("node04", "switch"):
            raise RuntimeError("simulated crash between switch and remove")
        elif (host, step) == ("node06", "connect"):
            for p in psutil.Process(lab.host("node06").init_pid).children(recursive=True):
                try:  # a short-lived session process may be gone between listing and signalling
                    p.send_signal(signal.SIGSTOP)
                except (psutil.NoSuchProcess, ProcessLookupError):
                    continue
                frozen.append(p)

    inv = load(lab.inventory_path)
    identities = IdentityMap(home / "identities.json")
    try:
        with ConnectionPool(inv, ConnectOptions(connect_timeout=2), identities=identities) as pool:
            report, group = rotate(inv, inv.hosts, pool, home=home, on_step=fault)
    finally:
        for p in frozen:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                p.send_signal(signal.SIGCONT)
    outcome = {h.host: (h.outcome, h.step) for h in report.hosts}
    assert outcome == {
        "node01": ("failed", "login"),
        "node02": ("failed", "add"),
        "node03": ("failed", "login"),
        "node04": ("failed", "switch"),
        "node05": ("rotated", "done"),
        "node06": ("failed", "read"),
    }, report
    assert int(group.exit_code()) != 0
    sshd_start(lab, "node01")
    assert host_exec(lab, "node02", ["umount", "/root/.ssh"]).returncode == 0
    new = Path(report.key["path"])
    # The lockout rule: each host accepts the key dccli will use for it (the map's, else the inventory's).
    mapped = IdentityMap(home / "identities.json")
    for h in lab.hosts:
        key = mapped.get(f"root@{h.address}:22") or str(lab.key_path)
        assert ssh_ok(lab, h.name, Path(key)), (h.name, key)
    assert ssh_ok(lab, "node04", new) and ssh_ok(lab, "node04", lab.key_path)  # both until a re-run removes
    assert not ssh_ok(lab, "node02", new)  # never added: the file stayed as it was
    rerun = dccli("keys", "rotate", "-i", str(lab.inventory_path), "--json", home=home)
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)["rotation"]
    assert not doc["generated"] and doc["key"]["path"] == str(new)
    for h in lab.hosts:
        assert ssh_ok(lab, h.name, new), h.name
        assert not ssh_ok(lab, h.name, lab.key_path), h.name


def test_an_unreachable_host_is_reported_and_keeps_its_key(make_lab, tmp_path):
    from dccli.lab.host import sshd_stop

    lab = make_lab(hosts=2)
    home = tmp_path / "home"
    sshd_stop(lab, "node02")
    proc = dccli("keys", "rotate", "-i", str(lab.inventory_path), "--timeout", "2", home=home)
    assert proc.returncode == 3, proc.stderr
    assert "node01  rotated" in proc.stdout and "node02  FAILED at connect" in proc.stdout
    assert "still accepts its current key" in proc.stdout
    assert not (home / "keys" / "archive").exists()  # nothing archived while a host may still need it
