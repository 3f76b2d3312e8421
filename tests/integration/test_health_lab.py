"""`dccli health` host checks, formats and history on the plain lab (real sshd hosts, real SQLite)."""

from __future__ import annotations

import json
import os
import re
from functools import partial
from pathlib import Path

import pytest
from labcli import dccli as run_dccli

pytestmark = pytest.mark.lab

# The lab's hosts share this machine's kernel: its load and memory are everyone's, so they are not judged here.
QUIET = "health: {load_per_cpu_warn: 100000, mem_available_warn_pct: 0, mem_available_crit_pct: 0}\n"


dccli = partial(run_dccli, timeout=180)


@pytest.fixture(scope="module")
def inv(lab, tmp_path_factory) -> Path:
    """The lab's inventory plus thresholds: sshd and a missing daemon required on node07-08 (a group)."""
    text = Path(lab.inventory_path).read_text()
    assert 'gpu: "node[01-08]"' in text
    text = text.replace(
        'gpu: "node[01-08]"',
        'gpu: "node[01-08]"\n  svc:\n    hosts: "node[07-08]"\n'
        "    health: {required_services: [sshd, no-such-daemon]}",
    )
    # A cluster name of its own: the health history these tests compare (--since) is theirs alone.
    text = re.sub(r'(?m)^cluster: "[^"]*"$', 'cluster: "healthlab"', text)
    path = tmp_path_factory.mktemp("health-inv") / "inventory.yml"
    path.write_text(QUIET + text)
    return path


def test_health_json_flags_exactly_the_group_with_the_missing_service(inv: Path) -> None:
    proc = dccli("health", "-i", str(inv), "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    verdicts = {h["host"]: h["verdict"] for h in doc["hosts"]}
    assert verdicts == {f"node0{i}": ("CRIT" if i >= 7 else "OK") for i in range(1, 9)}
    bad = {
        (r["host"], r["check"], r["subject"], r["verdict"]) for r in doc["results"] if r["verdict"] != "OK"
    }
    assert bad == {
        ("node07", "host.service", "no-such-daemon", "CRIT"),
        ("node08", "host.service", "no-such-daemon", "CRIT"),
    }
    checks = {r["check"] for r in doc["results"] if r["host"] == "node01"}
    assert {
        "host.disk",
        "host.inodes",
        "host.memory",
        "host.load",
        "host.clock_skew",
        "host.defunct",
        "host.reboot_required",
    } <= checks
    sshd = [r for r in doc["results"] if r["host"] == "node07" and r["subject"] == "sshd"]
    assert sshd[0]["verdict"] == "OK"
    skew = next(r for r in doc["results"] if r["host"] == "node01" and r["check"] == "host.clock_skew")
    assert skew["verdict"] == "OK"  # one kernel clock: the measured skew is within its own uncertainty


def test_table_nagios_prometheus_and_since(inv: Path, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    table = dccli("health", "-i", str(inv), "-l", "node[06-08]")
    assert table.returncode == 1
    assert "rack01: 1 OK, 2 CRIT" in table.stdout and "no-such-daemon NOT active" in table.stdout
    assert "node06" in table.stdout and "health: 3 hosts: 1 OK, 2 CRIT" in table.stderr

    nagios = dccli("health", "-i", str(inv), "--format", "nagios")
    assert nagios.returncode == 2
    assert nagios.stdout.count("\n") == 1
    assert nagios.stdout.startswith("DCCLI HEALTH CRITICAL - 2 CRIT, 0 WARN, 0 UNKNOWN of 8 hosts: ")
    ok = dccli("health", "-i", str(inv), "-l", "node[01-02]", "--format", "nagios")
    assert (ok.returncode, ok.stdout) == (
        0,
        "DCCLI HEALTH OK - 2 hosts OK | crit=0 warn=0 unknown=0 hosts=2\n",
    )

    tf = tmp_path / "textfile"
    prom = dccli("health", "-i", str(inv), "--format", "prometheus", "--textfile-dir", str(tf))
    assert prom.returncode == 1, prom.stderr
    files = sorted(p.name for p in tf.iterdir())
    assert files == ["dccli_health_healthlab.prom"]
    fams = {f.name: f for f in text_string_to_metric_families((tf / files[0]).read_text())}
    hosts = {s.labels["host"]: s.value for s in fams["dccli_health_host"].samples}
    assert hosts == {f"node0{i}": (2.0 if i >= 7 else 0.0) for i in range(1, 9)}

    since = dccli("health", "-i", str(inv), "--json", "--since", "24h")
    assert since.returncode == 1
    doc = json.loads(since.stdout)
    assert doc["since"] == "24h" and doc["changes"] == []  # the same state as every run before it
    assert dccli("health", "-i", str(inv), "--since", "yesterday").returncode == 2
    bad = dccli("health", "-i", str(inv), "--format", "xml")
    assert bad.returncode == 2 and "expected one of table, json, prometheus, nagios" in bad.stderr


def test_results_are_stored_in_the_state_db(inv: Path) -> None:
    import sqlite3

    proc = dccli("health", "-i", str(inv), "-l", "node01", "--json")
    assert proc.returncode == 0, proc.stderr
    db = Path(os.environ["DCCLI_HOME"]) / "state.db"
    conn = sqlite3.connect(db)
    run_id, worst = conn.execute("SELECT id, worst FROM health_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert worst == "OK"
    rows = conn.execute(
        "SELECT host, check_name, verdict FROM health_results WHERE run_id = ?", (run_id,)
    ).fetchall()
    assert {r[0] for r in rows} == {"node01"} and ("node01", "host.disk", "OK") in rows
    (host_time,) = conn.execute("SELECT host_time FROM health_hosts WHERE run_id = ?", (run_id,)).fetchone()
    assert host_time > 1.7e9


def test_health_needs_no_python3_on_the_host(make_lab, tmp_path: Path) -> None:
    """The probe is sh and the host's own tools: a host without python3 (where the helper, and so `dccli
    facts`, cannot run) still gets every host check."""
    info = make_lab(hosts=1)
    inv = tmp_path / "inventory.yml"
    inv.write_text(QUIET + Path(info.inventory_path).read_text())
    gone = dccli("run", "-i", str(inv), "rm -f /usr/bin/python3 /usr/bin/python3.* && ! command -v python3")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    facts = dccli("facts", "-i", str(inv))
    assert facts.returncode != 0 and "needs python3" in facts.stdout + facts.stderr
    proc = dccli("health", "-i", str(inv), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert [(h["host"], h["verdict"]) for h in doc["hosts"]] == [("node01", "OK")]
    checks = {r["check"] for r in doc["results"]}
    assert {"host.disk", "host.inodes", "host.memory", "host.clock_skew", "host.defunct"} <= checks, checks
