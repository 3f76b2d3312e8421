"""CA mode against real sshd: hosts trust dccli's user CA; expired and revoked certificates are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from labcli import dccli
from labssh import ssh_ok

pytestmark = pytest.mark.lab



def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def sign(home: Path, key: Path, validity: str, serial: int) -> None:
    ca = home / "keys" / "ca" / "user_ca"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-s",
            str(ca),
            "-I",
            key.name,
            "-n",
            "root",
            "-V",
            validity,
            "-z",
            str(serial),
            f"{key}.pub",
        ],
        check=True,
        capture_output=True,
    )


def test_ca_rotation_expiry_and_revocation(make_lab, tmp_path):
    from dccli.lab.host import host_exec

    lab = make_lab(hosts=2)
    home = tmp_path / "home"
    inv = str(lab.inventory_path)
    assert dccli("keys", "rotate", "--ca", "-i", inv, home=home).returncode == 2  # no CA yet: usage error
    init = dccli("keys", "ca", "init", home=home)
    assert init.returncode == 0, init.stderr
    assert oct((home / "keys" / "ca" / "user_ca").stat().st_mode & 0o777) == "0o600"
    proc = dccli("keys", "rotate", "--ca", "--validity", "+1h", "-i", inv, "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["rotation"]
    new = Path(doc["key"]["path"])
    assert Path(f"{new}-cert.pub").is_file() and doc["key"]["principals"] == ["root"]
    for h in lab.hosts:
        # the KRL exists on the host (sshd refuses everyone if RevokedKeys names a missing file)
        files = host_exec(lab, h.name, ["ls", "/etc/ssh/dccli_revoked_keys", "/etc/ssh/dccli_user_ca.pub"])
        assert files.returncode == 0, files.stderr
        assert ssh_ok(lab, h.name, new), h.name  # the certificate: the key itself is in no authorized_keys
        assert not ssh_ok(lab, h.name, lab.key_path), h.name
        assert b"ssh-" not in h.upper_dir.joinpath("root/.ssh/authorized_keys").read_bytes()
    # An expired certificate is refused; the same key with a current window gets in.
    other = keygen(tmp_path / "other")
    sign(home, other, "20200101:20200102", 9001)
    assert not ssh_ok(lab, "node01", other)
    sign(home, other, "-5m:+1h", 9002)
    assert ssh_ok(lab, "node01", other)
    # A revoked serial is refused everywhere once the KRL is distributed; dccli's own certificate is not.
    revoke = dccli("keys", "ca", "revoke", "--serial", "9002", "-i", inv, home=home)
    assert revoke.returncode == 0, revoke.stderr
    assert not ssh_ok(lab, "node01", other) and not ssh_ok(lab, "node02", other)
    sign(home, other, "-5m:+1h", 9003)  # a fresh certificate (new serial) for the same key logs in
    assert ssh_ok(lab, "node02", other)
    assert all(ssh_ok(lab, h.name, new) for h in lab.hosts)
    own = dccli("keys", "ca", "revoke", "--serial", str(doc["key"]["serial"]), "-i", inv, home=home)
    assert own.returncode == 2 and "own current certificate" in own.stderr  # the lockout rule
    run = dccli("run", "-i", inv, "hostname", home=home)  # dccli logs in with its certificate
    assert run.returncode == 0, run.stderr
    # `keys ca renew` issues a new certificate for the same key; status shows the CA trusted
    renew = dccli("keys", "ca", "renew", "--validity", "+2h", home=home)
    assert renew.returncode == 0 and "serial" in renew.stdout, renew.stderr
    status = dccli("keys", "status", "-i", inv, "--json", home=home)
    assert status.returncode == 0, status.stderr
    assert all(h["ca_trusted"] for h in json.loads(status.stdout)["hosts"])
