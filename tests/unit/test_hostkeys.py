"""Host-key store: fingerprints as OpenSSH prints them; unknown and changed keys refused."""

from __future__ import annotations

import subprocess

import pytest

from dccli.errors import ExitCode, HostKeyError
from dccli.transport.hostkeys import HostKeyStore, OfferedKey, Verdict, fingerprint, known_hosts_name


def _keypair(tmp_path, name: str, kind: str = "ed25519") -> OfferedKey:
    import base64

    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    ktype, blob = (path.with_suffix(".pub")).read_text().split()[:2]
    return OfferedKey(ktype, base64.b64decode(blob)), path


def test_fingerprint_matches_ssh_keygen(tmp_path):
    for kind in ("ed25519", "rsa", "ecdsa"):
        key, path = _keypair(tmp_path, f"k_{kind}", kind)
        out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{path}.pub"],
                             check=True, capture_output=True, text=True).stdout
        assert out.split()[1] == fingerprint(key.blob) == key.fingerprint


def test_known_hosts_name():
    assert known_hosts_name("10.0.0.1", 22) == "10.0.0.1"
    assert known_hosts_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"


def test_unknown_then_recorded_then_changed(tmp_path):
    store = HostKeyStore(tmp_path / "kh")
    key, _ = _keypair(tmp_path, "a")
    other, _ = _keypair(tmp_path, "b")
    names = ["127.9.0.1", "node01"]
    assert store.check(names, key) is Verdict.UNKNOWN
    with pytest.raises(HostKeyError) as err:
        store.verify("node01", names, key)
    assert err.value.exit_code == ExitCode.AUTH and "dccli hosts trust" in str(err.value)
    store.record(names, key)
    assert (tmp_path / "kh").stat().st_mode & 0o777 == 0o600
    store.verify("node01", names, key)
    # A fresh store reads the file back: OpenSSH's format.
    fresh = HostKeyStore(tmp_path / "kh")
    assert fresh.check(names, key) is Verdict.KNOWN
    assert fresh.check(names, other) is Verdict.CHANGED
    with pytest.raises(HostKeyError, match="CHANGED"):
        fresh.verify("node01", names, other)
    fresh.forget(names)
    assert HostKeyStore(tmp_path / "kh").check(names, key) is Verdict.UNKNOWN


def test_ssh_keygen_reads_our_known_hosts(tmp_path):
    """OpenSSH itself finds the entries we write (ssh-keygen -F)."""
    store = HostKeyStore(tmp_path / "kh")
    key, _ = _keypair(tmp_path, "a")
    store.record(["[127.9.0.1]:2222"], key)
    out = subprocess.run(["ssh-keygen", "-F", "[127.9.0.1]:2222", "-f", str(tmp_path / "kh")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and key.key_type in out.stdout


def test_extra_files_are_consulted_but_never_written(tmp_path):
    key, _ = _keypair(tmp_path, "a")
    extra = tmp_path / "lab_known_hosts"
    extra.write_text(key.line_for(["127.9.0.2"]) + "\n")
    store = HostKeyStore(tmp_path / "kh", [extra, tmp_path / "missing"])
    assert store.check(["127.9.0.2"], key) is Verdict.KNOWN
    assert store.known_types(["127.9.0.2"]) == [key.key_type]
    assert not (tmp_path / "kh").exists()
