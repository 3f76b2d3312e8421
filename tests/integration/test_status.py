"""`dccli status` on the plain lab: racks as panels, one live probe per host, capability columns, --json."""

from __future__ import annotations

import json
from functools import partial

import pytest
from labcli import dccli as run_dccli

pytestmark = pytest.mark.lab


dccli = partial(run_dccli, timeout=180)


def test_status_json_and_plain_table(lab) -> None:
    inv = str(lab.inventory_path)
    health = dccli("health", "-i", inv, "--json")  # status shows each host's latest health verdict
    verdicts = {h["host"]: h["verdict"] for h in json.loads(health.stdout)["hosts"]}
    proc = dccli("status", "-i", inv, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    racks = doc["status"]["racks"]
    assert [r["rack"] for r in racks] == ["rack01"]
    rows = racks[0]["hosts"]
    assert [r["host"] for r in rows] == [h.name for h in lab.hosts]
    for r in rows:
        assert r["reachable"] == "up" and r["gpus_expected"] == 0 and r["gpus"] is None
        assert r["health"] == verdicts[r["host"]]
        assert r["columns"]["health checked"].endswith("s ago")
    # Columns of the other capabilities, when their modules exist (train, backup, keys).
    for module, column in (("dccli.backup.status", "last backup"), ("dccli.train.status", "runs")):
        try:
            __import__(module)
        except ModuleNotFoundError:
            continue
        assert column in doc["status"]["columns"] and all(column in r["columns"] for r in rows)

    table = dccli("status", "-i", inv, "-l", "node0[1-2]")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:7] == ["rack", "host", "reach", "gpus", "util", "temp", "health"]
    assert [ln.split()[1] for ln in lines[1:]] == ["node01", "node02"]
    assert "\x1b[" not in table.stdout  # not a TTY: no colour, no panels


def test_status_names_unreachable_hosts(make_lab) -> None:
    from dccli.lab.host import sshd_stop

    small = make_lab(hosts=2)
    sshd_stop(small, "node02")
    proc = dccli("status", "-i", str(small.inventory_path), "--json", "--timeout", "3")
    assert proc.returncode == 3
    rows = {r["host"]: r for r in json.loads(proc.stdout)["status"]["racks"][0]["hosts"]}
    assert rows["node01"]["reachable"] == "up" and rows["node02"]["reachable"] == "unreachable"
    assert rows["node02"]["health"] == "UNKNOWN" and rows["node02"]["failing"] == ["host.reachable"]
    assert rows["node01"]["columns"]["health checked"] == "never"
    assert "1 of 2 hosts not reachable: node02" in proc.stderr
