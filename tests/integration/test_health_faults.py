"""One simulated fault of each kind, each on its own lab host: `dccli health` flags exactly those hosts with
the right check and verdict; `dccli status` shows them; after `lab fault --clear` and a reboot, all is OK.

The faults come from the lab's GPU simulator (`dccli lab fault`, docs/lab.md "GPU simulation").
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pytest
from labcli import dccli as run_dccli

pytestmark = pytest.mark.lab

# host -> (fault flags, check, verdict)
FAULTS = {
    "node01": (["--xid", "13", "--gpu", "2"], "gpu.xid", "WARN"),
    "node02": (["--ecc-dbe", "2", "--gpu", "1"], "gpu.ecc", "CRIT"),
    "node03": (["--row-remap-pending"], "gpu.row_remap", "WARN"),
    "node04": (["--retired-pages", "64", "--gpu", "5"], "gpu.retired_pages", "CRIT"),
    "node05": (["--temp", "95", "--gpu", "3"], "gpu.temperature", "CRIT"),
    "node06": (["--fell-off-bus", "--gpu", "7"], "gpu.count", "CRIT"),
    "node07": (["--disk-full", "/data"], "host.disk", "CRIT"),
    "node08": (["--sshd-stop"], "host.reachable", "UNKNOWN"),
    "node09": (["--freeze"], "host.reachable", "UNKNOWN"),
}
HEALTHY = "node10"
QUIET = "health: {load_per_cpu_warn: 100000, mem_available_warn_pct: 0, mem_available_crit_pct: 0}\n"


dccli = partial(run_dccli, timeout=240)


@pytest.fixture(scope="module")
def gpu_lab(lab_home, tmp_path_factory):
    name = f"hf{os.getpid()}"
    up = dccli("lab", "up", "--hosts", "10", "--gpus", "8", "--gpu-model", "H100-SXM5-80GB", "--name", name)
    if up.returncode != 0:
        dccli("lab", "down", "--name", name)
        pytest.fail(f"lab up --gpus failed: {up.stderr[-2000:]}")
    inv = tmp_path_factory.mktemp("faults") / "inventory.yml"
    inv.write_text(QUIET + Path(up.stdout.strip()).read_text())
    try:
        yield name, inv
    finally:
        dccli("lab", "down", "--name", name)


def _health(inv: Path, *extra: str) -> tuple[int, dict]:
    proc = dccli("health", "-i", str(inv), "--json", "--timeout", "3", *extra)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_each_fault_is_found_on_its_host_only_and_clears(gpu_lab) -> None:
    name, inv = gpu_lab
    code, doc = _health(inv)
    assert code == 0, [r for r in doc["results"] if r["verdict"] != "OK"]  # a clean start

    for host, (flags, _, _) in FAULTS.items():
        proc = dccli("lab", "fault", host, *flags, "--name", name)
        assert proc.returncode == 0, proc.stderr

    code, doc = _health(inv)
    assert code == 3  # two hosts unreachable: the most serious fate decides
    verdicts = {h["host"]: h["verdict"] for h in doc["hosts"]}
    flagged = {h for h, v in verdicts.items() if v != "OK"}
    assert flagged == set(FAULTS), verdicts
    assert verdicts[HEALTHY] == "OK"
    for host, (_, check, verdict) in FAULTS.items():
        mine = [r for r in doc["results"] if r["host"] == host and r["verdict"] != "OK"]
        assert any(r["check"] == check and r["verdict"] == verdict for r in mine), (host, mine)
        assert verdicts[host] == verdict or (verdict == "WARN" and verdicts[host] in ("WARN", "CRIT")), (
            host,
            mine,
        )
        for r in mine:
            assert r["threshold"] and r["action"] and r["source"], r
    by = {(r["host"], r["check"]): r for r in doc["results"]}
    assert "Xid 13" in by[("node01", "gpu.xid")]["value"] and "GPU2" not in by[("node01", "gpu.xid")]["value"]
    assert by[("node02", "gpu.ecc")]["value"].startswith("GPU1:")
    assert by[("node04", "gpu.retired_pages")]["value"].startswith("GPU5: 64 retired")
    assert by[("node05", "gpu.temperature")]["value"] == "GPU3: 95 C"
    assert (
        "GPU is lost" in by[("node06", "gpu.count")]["value"]
        or "7 GPUs" in by[("node06", "gpu.count")]["value"]
    )
    assert by[("node07", "host.disk")]["subject"] == "/data"

    # Xids count once: the next check has moved past them (the GPU state still shows the other faults).
    _, again = _health(inv, "-l", "node01")
    assert {h["host"]: h["verdict"] for h in again["hosts"]} == {"node01": "OK"}

    status = dccli("status", "-i", str(inv), "--json", "--timeout", "3")
    assert status.returncode == 3, status.stderr
    rows = {h["host"]: h for rack in json.loads(status.stdout)["status"]["racks"] for h in rack["hosts"]}
    assert rows["node08"]["reachable"] == "unreachable" and rows["node09"]["reachable"] == "unreachable"
    assert rows["node05"]["temp_c"] == 95 and rows["node05"]["health"] == "CRIT"
    assert rows[HEALTHY]["gpus"] == 8 and rows[HEALTHY]["health"] == "OK"
    assert rows["node06"]["health"] == "CRIT" and rows["node06"]["gpus"] in (0, 7)

    for host in FAULTS:
        proc = dccli("lab", "fault", host, "--clear", "--name", name)
        assert proc.returncode == 0, proc.stderr
    for host in ("node03", "node04", "node06"):  # pending remaps/retirements and a lost GPU need a reboot
        proc = dccli("lab", "reboot", host, "--name", name)
        assert proc.returncode == 0, proc.stderr
    code, doc = _health(inv)
    assert code == 0, [r for r in doc["results"] if r["verdict"] != "OK"]
    assert {h["verdict"] for h in doc["hosts"]} == {"OK"}


FOREIGN = r"""
set -e
nohup sleep 300 >/dev/null 2>&1 &
A=$!
DCCLI_RUN_ID=run-42 nohup sleep 300 >/dev/null 2>&1 &
B=$!
python3 - "$A" "$B" <<'PY'
import json, os, sys
a, b = int(sys.argv[1]), int(sys.argv[2])
path = "/var/lib/dccli-gpusim/state.json"  # the simulator's documented state file (docs/lab.md)
state = json.load(open(path))
state["gpus"][0]["processes"] = [{"pid": a, "name": "python3", "used_memory_mib": 2048},
                                 {"pid": b, "name": "torchrun", "used_memory_mib": 4096}]
with open(path + ".tmp", "w") as fh:
    json.dump(state, fh)
os.replace(path + ".tmp", path)
print(a, b)
PY
"""


def test_gpu_memory_held_outside_dccli_runs(gpu_lab) -> None:
    """Two real processes on a host hold simulated GPU memory; only the one without DCCLI_RUN_ID is flagged."""
    _, inv = gpu_lab
    proc = dccli("run", "-i", str(inv), "-l", HEALTHY, FOREIGN)
    assert proc.returncode == 0, proc.stderr
    foreign, ours = proc.stdout.split(":", 1)[1].split()
    code, doc = _health(inv, "-l", HEALTHY)
    assert code == 1
    (res,) = [r for r in doc["results"] if r["verdict"] != "OK"]
    assert (res["check"], res["verdict"]) == ("gpu.processes", "WARN")
    assert f"pid {foreign} python3 2048 MiB" in res["value"] and f"pid {ours}" not in res["value"]
    dccli("run", "-i", str(inv), "-l", HEALTHY, f"kill {foreign} {ours}")


CSV_FIELDS = (
    "index,name,pci.bus_id,uuid,driver_version,persistence_mode,temperature.gpu,utilization.gpu,memory.total,"
    "memory.used,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,"
    "ecc.errors.corrected.aggregate.total,ecc.errors.uncorrected.aggregate.total,retired_pages.pending,"
    "remapped_rows.pending,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max"
)


def test_the_three_nvidia_smi_forms_of_a_host_agree(gpu_lab) -> None:
    """`-q -x`, `-q` and `--query-gpu` CSV of one (faulted) host, captured as an operator would and read by
    the same parsers `health analyze` uses, give the same facts."""
    from dccli.health import parse_smi
    from dccli.health.analyze import analyze_text

    name, inv = gpu_lab
    assert dccli("lab", "fault", HEALTHY, "--ecc-dbe", "3", "--gpu", "6", "--name", name).returncode == 0
    try:
        forms = {}
        for key, cmd in (
            ("xml", "nvidia-smi -q -x"),
            ("text", "nvidia-smi -q"),
            ("csv", f"nvidia-smi --query-gpu={CSV_FIELDS} --format=csv"),
        ):
            proc = dccli("run", "-i", str(inv), "-l", HEALTHY, "--json", cmd)
            assert proc.returncode == 0, proc.stderr
            forms[key] = json.loads(proc.stdout)["results"][0]["stdout"]
        reps = {
            "xml": parse_smi.parse_xml(forms["xml"]),
            "text": parse_smi.parse_text(forms["text"]),
            "csv": parse_smi.parse_csv(forms["csv"]),
        }
        for key, rep in reps.items():
            assert len(rep.gpus) == 8, key
            assert rep.driver_version == reps["xml"].driver_version, key
            facts = [
                (g.name, g.temperature_c, g.ecc_volatile_dbe, g.ecc_aggregate_dbe, g.pcie_width_max)
                for g in rep.gpus
            ]
            assert facts == [
                (g.name, g.temperature_c, g.ecc_volatile_dbe, g.ecc_aggregate_dbe, g.pcie_width_max)
                for g in reps["xml"].gpus
            ], key
            assert rep.gpus[6].ecc_volatile_dbe == 3, key
            assert {g.name for g in rep.gpus} == {"NVIDIA H100 80GB HBM3"}
        for key, text in forms.items():  # and analyze judges each capture the same way
            ecc = [r for r in analyze_text(f"{key}-capture", text).results if r.check == "gpu.ecc"]
            assert [(r.verdict, r.value.split(":")[0]) for r in ecc] == [("CRIT", "GPU6")], key
    finally:
        dccli("lab", "fault", HEALTHY, "--clear", "--name", name)
