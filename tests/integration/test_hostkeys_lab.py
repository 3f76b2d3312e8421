"""A changed host key is refused with exit 4 and nothing runs there; trust --replace records the new one."""

from __future__ import annotations

import json

import pytest
from labcli import dccli

pytestmark = pytest.mark.lab



@pytest.fixture
def small_lab(make_lab):
    return make_lab(hosts=2)


def test_changed_host_key_is_refused_and_nothing_runs(small_lab):
    from dccli.lab.host import host_exec, regenerate_host_keys

    inv = str(small_lab.inventory_path)
    regenerate_host_keys(small_lab, "node02")
    proc = dccli("run", "-i", inv, "--json", "touch /tmp/should-not-exist; hostname")
    assert proc.returncode == 4, proc.stderr
    results = {r["host"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["node01"]["stdout"] == "node01\n"
    assert "HOST KEY CHANGED" in results["node02"]["error"]
    assert "node02: auth:" in proc.stderr
    probe = host_exec(small_lab, "node02", ["sh", "-c", "test -e /tmp/should-not-exist && echo yes || echo no"])
    assert probe.stdout.strip() == "no"  # refused before authentication: nothing executed

    # trust without --replace refuses to overwrite; with --replace it records the new key (dccli's file).
    refused = dccli("hosts", "trust", "-i", inv, "-l", "node02")
    assert refused.returncode == 4 and "CHANGED" in refused.stderr
    replaced = dccli("hosts", "trust", "-i", inv, "-l", "node02", "--replace", "--json")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["hosts"][0]["action"] == "replaced"


def test_unknown_host_key_is_refused_until_trusted(small_lab, tmp_path):
    """Without the lab's known_hosts, the key is unknown: refused (exit 4) until `hosts trust` records it."""
    text = small_lab.inventory_path.read_text()
    inv = tmp_path / "inv.yml"
    inv.write_text("\n".join(line for line in text.splitlines() if not line.strip().startswith("known_hosts:")) + "\n")
    assert "known_hosts" not in inv.read_text()
    proc = dccli("run", "-i", str(inv), "-l", "node01", "hostname")
    assert proc.returncode == 4 and "unknown host key" in proc.stderr
    trusted = dccli("hosts", "trust", "-i", str(inv), "-l", "node01")
    assert trusted.returncode == 0, trusted.stderr
    line = trusted.stdout.split()
    assert line[0] == "node01" and line[2].startswith("SHA256:") and line[3] == "added"
    # The fingerprint shown is the one OpenSSH computes for the host's key.
    from dccli.lab.host import host_exec

    pub = host_exec(small_lab, "node01", ["sh", "-c", f"ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_{line[1].split('-')[1]}_key.pub"])
    assert line[2] in pub.stdout
    ok = dccli("run", "-i", str(inv), "-l", "node01", "hostname")
    assert ok.returncode == 0 and ok.stdout.strip() == "node01: node01"
