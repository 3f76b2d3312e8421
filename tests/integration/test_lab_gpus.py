"""SIMULATED GPUs in a real lab: every nvidia-smi form over real SSH (`dccli run`), each fault kind, reboot, clear.

One 2-host lab with 8 H100s per host for the module; faults go to node01 (GPU and disk) and node02
(sshd, freeze) and are undone by `lab reboot` / `lab fault --clear`, so the tests run in file order.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from labcli import dccli

pytestmark = pytest.mark.lab

FORMS = {
    "list": "nvidia-smi -L",
    "table": "nvidia-smi",
    "query": "nvidia-smi -q",
    "xml": "nvidia-smi -q -x",
    "display": "nvidia-smi -q -d ECC,PAGE_RETIREMENT,ROW_REMAPPER,TEMPERATURE,PERFORMANCE",
    "csv": "nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,memory.total,temperature.gpu,"
    "ecc.errors.uncorrected.volatile.total,ecc.errors.uncorrected.aggregate.total,retired_pages.double_bit.count,"
    "retired_pages.pending,remapped_rows.uncorrectable,remapped_rows.pending,clocks_event_reasons.hw_thermal_slowdown"
    " --format=csv,noheader,nounits",
    "topo": "nvidia-smi topo -m",
    "version": "nvidia-smi --version",
    "one": "nvidia-smi -i 3 -L",
    "bad_index": "nvidia-smi -i 9",
    "bad_field": "nvidia-smi --query-gpu=nope --format=csv",
    "dmesg": "dmesg --time-format iso",
    "journal": "journalctl -k -o short-iso --no-pager",
    "df": "df -P /data | tail -1",
    "boot_id": "cat /proc/sys/kernel/random/boot_id",
}



@pytest.fixture(scope="module")
def gpulab(lab_home: Path) -> Iterator:
    from dccli.lab.manager import lab_down, lab_up

    name = f"g{os.getpid()}"
    info = lab_up(name, 2, gpus=8, gpu_model="H100-SXM5-80GB")
    try:
        yield info
    finally:
        lab_down(name)


def forms(lab, host: str, names: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Run the named forms on one host in ONE `dccli run`; {form: (exit code, stdout)}."""
    script = "; ".join(f"echo '@@{n}'; {FORMS[n]}; echo \"@@rc $?\"" for n in (names or list(FORMS)))
    proc = dccli("run", "-i", str(lab.inventory_path), "-l", host, "--json", script)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["results"][0]["stdout"]
    result: dict[str, tuple[int, str]] = {}
    last = ""
    for chunk in out.split("@@")[1:]:
        if chunk.startswith("rc "):
            result[last] = (int(chunk.split()[1]), result[last][1])
        else:
            last, _, body = chunk.partition("\n")
            result[last] = (-1, body)
    return result


def csv_rows(text: str) -> list[list[str]]:
    return [line.split(", ") for line in text.strip().splitlines()]


def fault(lab, host: str, *args: str) -> str:
    proc = dccli("lab", "fault", host, *args, "--name", lab.name)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_inventory_records_the_gpus(gpulab) -> None:
    text = gpulab.inventory_path.read_text()
    assert 'gpus: 8, gpu_model: "H100-SXM5-80GB"' in text


def test_every_form_over_ssh(gpulab) -> None:
    from dccli.health import parse_logs, parse_smi

    boot_ids = set()
    for host in ("node01", "node02"):
        out = forms(gpulab, host)
        assert {n: code for n, (code, _) in out.items() if code != 0} == {"bad_index": 6, "bad_field": 2}
        assert len(out["list"][1].splitlines()) == 8
        assert out["one"][1].startswith("GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-")
        root = ET.fromstring(out["xml"][1].encode())
        assert len(root.findall("gpu")) == 8 and root.findtext("driver_version") == "535.183.01"
        for name in ("xml", "query"):
            report = parse_smi.parse_any(out[name][1])
            assert len(report.gpus) == 8 and report.gpus[0].name == "NVIDIA H100 80GB HBM3", name
        rows = csv_rows(out["csv"][1])
        assert len(rows) == 8 and all(len(r) == 13 and r[1] == "NVIDIA H100 80GB HBM3" for r in rows)
        assert out["display"][1].count("    Remapped Rows\n") == 8
        assert out["table"][1].count("NVIDIA H100 80GB HBM3") == 8
        assert out["topo"][1].splitlines()[1].startswith("GPU0\t X \tNV18")
        assert "Simulated" in out["version"][1]
        assert "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  535.183.01" in out["dmesg"][1]
        assert f" {host} kernel: NVRM: loading" in out["journal"][1]
        assert parse_logs.parse_xids(out["dmesg"][1]) == []
        boot_ids.add(out["boot_id"][1].strip())
    assert len(boot_ids) == 2  # each host its own boot id, not the kernel's


def test_gpu_and_disk_faults_show_up(gpulab) -> None:
    from dccli.health import parse_logs

    fault(gpulab, "node01", "--gpu", "1", "--ecc-dbe", "2")
    fault(gpulab, "node01", "--gpu", "2", "--retired-pages", "3")
    fault(gpulab, "node01", "--gpu", "3", "--row-remap-pending")
    fault(gpulab, "node01", "--gpu", "4", "--temp", "95")
    fault(gpulab, "node01", "--gpu", "5", "--fell-off-bus")
    fault(gpulab, "node01", "--gpu", "6", "--xid", "13")
    fault(gpulab, "node01", "--disk-full", "/data")
    out = forms(gpulab, "node01", ["csv", "list", "table", "dmesg", "journal", "df"])
    rows = csv_rows(out["csv"][1])
    assert out["csv"][0] == out["list"][0] == out["table"][0] == 15  # a GPU is off the bus
    assert rows[1][6:8] == ["2", "2"]  # volatile + aggregate DBE
    assert rows[2][8:10] == ["3", "Yes"]  # retired pages, pending
    assert rows[3][10:12] == ["1", "Yes"]  # row remap pending
    assert rows[4][5] == "95" and rows[4][12] == "Active"  # hot and throttling
    assert rows[5] == [
        "Unable to determine the device handle for GPU 0000:AB:00.0: GPU is lost.  Reboot the system to recover this GPU"
    ]
    assert rows[0][6:] == ["0", "0", "0", "No", "0", "No", "Not Active"]
    xids = [(x.xid, x.pci) for x in parse_logs.parse_xids(out["dmesg"][1])]
    assert xids == [
        (48, "0000:2a:00"),
        (63, "0000:3a:00"),
        (63, "0000:5d:00"),
        (79, "0000:ab:00"),
        (13, "0000:ba:00"),
    ]
    assert [(x.xid, x.pci) for x in parse_logs.parse_xids(out["journal"][1])] == xids
    assert out["df"][1].split()[4] == "100%"
    # node02 is untouched
    assert forms(gpulab, "node02", ["csv"])["csv"][0] == 0


def test_sshd_stop_and_freeze_then_clear(gpulab) -> None:
    inv = str(gpulab.inventory_path)
    fault(gpulab, "node02", "--sshd-stop")
    assert dccli("run", "-i", inv, "-l", "node02", "--timeout", "3", "true").returncode == 3
    fault(gpulab, "node02", "--clear")
    assert dccli("run", "-i", inv, "-l", "node02", "true").returncode == 0
    fault(gpulab, "node02", "--freeze")
    assert dccli("run", "-i", inv, "-l", "node02", "--timeout", "2", "true").returncode == 3
    proc = dccli("lab", "reboot", "node02", "--name", gpulab.name)  # a reboot thaws a frozen host
    assert proc.returncode == 0, proc.stderr
    assert dccli("run", "-i", inv, "-l", "node02", "true").returncode == 0


def test_reboot_keeps_what_hardware_keeps(gpulab) -> None:
    before = forms(gpulab, "node01", ["boot_id"])["boot_id"][1]
    proc = dccli("lab", "reboot", "node01", "--name", gpulab.name)
    assert proc.returncode == 0, proc.stderr
    out = forms(gpulab, "node01", ["csv", "dmesg", "df", "boot_id"])
    assert out["csv"][0] == 0  # the GPU that fell off the bus is back
    rows = csv_rows(out["csv"][1])
    assert rows[1][6:8] == ["0", "2"]  # volatile DBE reset, aggregate kept
    assert rows[2][8:10] == ["3", "No"]  # retired pages kept, no longer pending
    assert rows[3][10:12] == ["1", "No"]  # remap applied
    assert rows[4][5] != "95" and rows[4][12] == "Not Active"
    assert "NVRM: Xid" not in out["dmesg"][1]  # the ring buffer did not survive
    assert out["df"][1].split()[4] != "100%"
    assert out["boot_id"][1] != before


def test_clear_resets_the_gpus(gpulab) -> None:
    fault(gpulab, "node01", "--gpu", "7", "--xid", "79")
    fault(gpulab, "node01", "--gpu", "1", "--clear")
    out = forms(gpulab, "node01", ["csv", "dmesg"])
    assert out["csv"][0] == 15 and csv_rows(out["csv"][1])[1][7] == "0"
    fault(gpulab, "node01", "--clear")
    out = forms(gpulab, "node01", ["csv", "dmesg"])
    assert out["csv"][0] == 0
    assert all(row[6:] == ["0", "0", "0", "No", "0", "No", "Not Active"] for row in csv_rows(out["csv"][1]))
    assert "NVRM: Xid" not in out["dmesg"][1]


def test_fault_usage_errors(gpulab) -> None:
    for args in (
        ["--xid", "13", "--temp", "90"],
        [],
        ["--gpu", "9", "--temp", "90"],
        ["--gpu", "1", "--freeze"],
    ):
        proc = dccli("lab", "fault", "node01", *args, "--name", gpulab.name)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("gpu_model", ["A100-SXM4-80GB", "H200"])
def test_other_models_via_cli(lab_home: Path, gpu_model: str) -> None:
    name = f"m{os.getpid()}-{gpu_model[:4].lower()}"
    proc = dccli(
        "lab", "up", "--hosts", "1", "--gpus", "4", "--gpu-model", gpu_model, "--name", name, "--json"
    )
    try:
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert (doc["gpus_per_host"], doc["gpu_model"]) == (4, gpu_model)
        out = dccli("run", "-i", doc["inventory_path"], "nvidia-smi -L; nvidia-smi -q -x")
        assert out.returncode == 0, out.stderr
        product = {"A100-SXM4-80GB": "NVIDIA A100-SXM4-80GB", "H200": "NVIDIA H200"}[gpu_model]
        assert out.stdout.count(f": {product} (UUID: GPU-") == 4
        assert out.stdout.count(f"<product_name>{product}</product_name>") == 4
    finally:
        dccli("lab", "down", "--name", name)


def test_unknown_model_is_a_usage_error(lab_home: Path) -> None:
    proc = dccli(
        "lab", "up", "--hosts", "1", "--gpus", "2", "--gpu-model", "B200", "--name", f"x{os.getpid()}"
    )
    assert proc.returncode == 2 and "unknown --gpu-model 'B200'" in proc.stderr


def test_edit_state_for_conditions_without_a_flag(gpulab) -> None:
    from dccli.lab.faults import edit_state

    def degrade(state: dict) -> None:
        state["gpus"][2]["pcie"]["width_current"] = 8
        state["gpus"][2]["processes"] = [{"pid": 999, "name": "stray", "used_memory_mib": 2048}]

    from dccli.lab.registry import load

    edit_state(load(gpulab.name), "node02", degrade)  # reloaded: node02 was rebooted (new init pid)
    out = forms(gpulab, "node02", ["xml"])
    gpu = ET.fromstring(out["xml"][1].encode()).findall("gpu")[2]
    assert gpu.findtext("pci/pci_gpu_link_info/link_widths/current_link_width") == "8x"
    assert gpu.findtext("processes/process_info/process_name") == "stray"
    fault(gpulab, "node02", "--clear")
    gpu = ET.fromstring(forms(gpulab, "node02", ["xml"])["xml"][1].encode()).findall("gpu")[2]
    assert gpu.findtext("pci/pci_gpu_link_info/link_widths/current_link_width") == "16x"
    assert gpu.find("processes/process_info") is None


REPLAY_SCRIPT = r"""
nvidia-smi -q -x > /tmp/x1; echo "rc1 $?"
nvidia-smi -i 9 > /tmp/bad1; echo "rcbad1 $?"
sleep 1.2
before=$(date '+%a %b %d %H:%M:%S %Y'); nvidia-smi -q -x > /tmp/x2; echo "rc2 $?"
after=$(date '+%a %b %d %H:%M:%S %Y')
nvidia-smi -i 9 > /tmp/bad2; echo "rcbad2 $?"
echo "stamp2 $(sed -n 's/.*<timestamp>\(.*\)<\/timestamp>.*/\1/p' /tmp/x2)"; echo "before $before"; echo "after $after"
sed '/<timestamp>/d' /tmp/x1 > /tmp/y1; sed '/<timestamp>/d' /tmp/x2 > /tmp/y2; cmp -s /tmp/y1 /tmp/y2; echo "same $?"
cmp -s /tmp/bad1 /tmp/bad2; echo "samebad $?"
ls /run/dccli-gpusim/replay/nvidia-smi/
nvidia-smi --version | grep DRIVER
echo 999.1.2 > /var/lib/dccli-gpusim/driver_version
nvidia-smi --version | grep DRIVER
rm /var/lib/dccli-gpusim/driver_version
nvidia-smi --version | grep DRIVER
"""


def test_replayed_renders_match_and_follow_changes(gpulab) -> None:
    """The launcher replays the simulator's render (docs/lab.md): same output as a fresh render with the
    current time in the timestamp, the same exit code, and a new render after any input changes (here the
    driver packages' version file, written and removed; faults and reboots are covered above)."""
    proc = dccli("run", "-i", str(gpulab.inventory_path), "-l", "node02", "--json", REPLAY_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    lines = json.loads(proc.stdout)["results"][0]["stdout"].splitlines()
    got = dict(line.split(" ", 1) for line in lines if line.split(" ", 1)[0] in
               {"rc1", "rc2", "rcbad1", "rcbad2", "stamp2", "before", "after", "same", "samebad"})
    assert (got["rc1"], got["rc2"], got["rcbad1"], got["rcbad2"]) == ("0", "0", "6", "6")
    assert got["same"] == "0" and got["samebad"] == "0"
    assert got["stamp2"] in (got["before"], got["after"])  # replayed with the time of the call
    assert "2 -q -x" in lines and "2 -i 9" not in lines  # entries: argc + arguments; usage errors not kept
    drivers = [line.split(":")[1].strip() for line in lines if line.startswith("DRIVER version")]
    assert drivers == ["535.183.01", "999.1.2", "535.183.01"]
