"""The health probe script (dccli/health/probe.sh) run for real on this machine, with real captures behind
stand-in GPU tools where this machine has none, and its parser (dccli/health/shprobe.py)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dccli.errors import DccliError
from dccli.health import shprobe
from dccli.health.probe import Raw, facts_from_raw

TOOLS = ("sh", "date", "tail", "df", "gzip", "sed", "grep", "timeout", "sleep", "cat")


def probe(services: list[str] | None = None, *, path: str | None = None, **kw) -> tuple[dict, bytes]:
    """Run probe.sh as dccli sends it (sh -c SCRIPT ARGS) and parse it; returns (raw dict, stdout)."""
    command, nonce = shprobe.command(list(services or []), **kw)
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    done = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    clock, _, sections = shprobe.split(done.stdout, nonce)
    return shprobe.to_raw(clock, sections, list(services or [])), done.stdout


def tool_dir(tmp_path: Path, *, leave_out: tuple[str, ...] = ()) -> Path:
    """A PATH of only the tools the probe may use (symlinks to this machine's), less `leave_out`."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name in TOOLS:
        found = shutil.which(name)
        if name not in leave_out and found:
            (d / name).symlink_to(found)
    return d


def fake(d: Path, name: str, body: str) -> None:
    p = d / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)


def test_probe_reads_this_machine() -> None:
    before = time.time()
    data, out = probe()
    assert out.splitlines()[1].endswith(b" gz")  # gzip is on this machine
    assert before - 5 < data["time"] < time.time() + 5
    assert data["cpus"] == os.cpu_count()
    assert data["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert "MemTotal:" in data["meminfo"] and len(data["loadavg"].split()) == 5
    assert data["stat_btime"] and data["stat_btime"] < before
    st = os.statvfs("/")
    root = data["mounts"]["/"]
    assert root["size"] == st.f_blocks * st.f_frsize and root["inodes"] == st.f_files
    assert not any(m["fstype"] in shprobe.NOT_A_DISK | {"proc", "sysfs"} for m in data["mounts"].values())
    assert data["smi"] is None and data["kernel_log"] is None  # no nvidia-smi here: no GPU sections
    assert isinstance(data["defunct"], int)
    facts = facts_from_raw(Raw("here", data, data["time"], before, time.time()))
    assert facts.cpus == os.cpu_count() and facts.mem_total and facts.boot_id == data["boot_id"]


def test_services_without_systemd_come_from_process_names(tmp_path: Path) -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.fail("this test needs a machine without systemd (CI and the lab hosts have none)")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        data, _ = probe(["sleep", "no-such-daemon"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert data["services"] == {"sleep": True, "no-such-daemon": False}


def test_gpu_sections_from_stand_in_tools(tmp_path: Path, real_fixtures: Path) -> None:
    """nvidia-smi -q -x, nvlink -s and dmesg answer with real captures; the GPU processes are live processes
    of this test, one started by a dccli run (DCCLI_RUN_ID) and one not."""
    ours = subprocess.Popen(["sleep", "60"], env=dict(os.environ, DCCLI_RUN_ID="run-7"))
    foreign = subprocess.Popen(
        ["sleep", "60"], env={k: v for k, v in os.environ.items() if k != "DCCLI_RUN_ID"}
    )
    try:
        xml = (real_fixtures / "telegraf_nvsmi_q_x_tesla-t4.xml").read_text()
        xml = xml.replace("<pid>675</pid>", f"<pid>{ours.pid}</pid>")
        xml = xml.replace("<pid>5762</pid>", f"<pid>{foreign.pid}</pid>")
        (tmp_path / "smi.xml").write_text(xml)
        d = tool_dir(tmp_path)
        nvlink = real_fixtures / "gpud_nvidia-smi.nvlink.status.a100.txt"
        fake(
            d,
            "nvidia-smi",
            f'case "$*" in "-q -x") cat {tmp_path}/smi.xml ;; "nvlink -s") cat {nvlink} ;;'
            " *) exit 2 ;; esac\n",
        )
        klog = real_fixtures / "gpud_dmesg_dmesg-time-format-iso.log"
        fake(d, "dmesg", f'[ "$1" = --time-format ] || exit 1\ncat {klog}\n')
        data, _ = probe(path=str(d), nvlink=True)
    finally:
        for p in (ours, foreign):
            p.kill()
            p.wait()
    assert data["smi"]["rc"] == 0 and data["smi"]["stdout"].strip() == xml.strip()
    assert data["run_ids"] == {str(ours.pid): "run-7", str(foreign.pid): None}
    assert data["nvlink"]["rc"] == 0 and data["nvlink"]["stdout"].strip() == nvlink.read_text().strip()
    assert data["kernel_log"]["rc"] == 0 and data["kernel_log"]["stdout"].strip() == klog.read_text().strip()
    facts = facts_from_raw(Raw("here", data, data["time"], time.time(), time.time()))
    assert facts.smi is not None and len(facts.smi.gpus) == 1 and facts.smi.gpus[0].name == "Tesla T4"
    assert facts.foreign_pids == (foreign.pid,)
    assert {x.xid for x in facts.xids} >= {48, 63}
    assert facts.nvlinks


def test_a_hung_nvidia_smi_is_cut_off_and_reported(tmp_path: Path) -> None:
    d = tool_dir(tmp_path)
    fake(d, "nvidia-smi", "exec sleep 30\n")
    fake(d, "dmesg", "exit 0\n")
    data, _ = probe(path=str(d), smi_timeout_s=1)
    assert data["smi"]["rc"] is None and data["smi"]["stderr"] == "timed out after 1s"
    facts = facts_from_raw(Raw("here", data, data["time"], time.time(), time.time()))
    assert facts.smi is None and "timed out" in (facts.smi_error or "")


def test_failing_nvidia_smi_keeps_its_message(tmp_path: Path) -> None:
    d = tool_dir(tmp_path)
    fake(
        d,
        "nvidia-smi",
        "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit 9\n",
    )
    fake(d, "dmesg", "exit 0\n")
    data, _ = probe(path=str(d))
    assert data["smi"]["rc"] == 9
    facts = facts_from_raw(Raw("here", data, data["time"], time.time(), time.time()))
    assert (
        facts.smi_error == "nvidia-smi rc 9: NVIDIA-SMI has failed because it could not communicate with the "
        "NVIDIA driver."
    )


def test_without_gzip_and_without_df_output(tmp_path: Path) -> None:
    """busybox-like hosts: no gzip (plain output) and a df that knows only -P (no inode counts)."""
    d = tool_dir(tmp_path, leave_out=("gzip", "df"))
    real_df = shutil.which("df")
    fake(
        d,
        "df",
        f'case "$*" in *--output*) echo "df: unrecognized option" >&2; exit 1 ;; esac\nexec {real_df} "$@"\n',
    )
    data, out = probe(path=str(d))
    assert out.splitlines()[1].endswith(b" plain")
    st = os.statvfs("/")
    root = data["mounts"]["/"]
    assert root["size"] == st.f_blocks * st.f_frsize and root["inodes"] == 0
    assert data["meminfo"] and data["cpus"] == os.cpu_count()


def test_probe_on_a_busybox_userland(tmp_path: Path) -> None:
    """busybox's sh, date (no %N), tail, df (no --output), gzip, grep, sed and timeout (143, not 124, when it
    ends a hung nvidia-smi): every section still comes back, the clock at whole seconds."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox missing: `make setup` installs it (Makefile APT_PACKAGES)")
    d = tmp_path / "bin"
    d.mkdir()
    for name in TOOLS:
        (d / name).symlink_to(busybox)
    fake(d, "nvidia-smi", "exec sleep 30\n")
    fake(d, "dmesg", "exit 0\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        command, nonce = shprobe.command(["sleep"], smi_timeout_s=1)
        env = dict(os.environ, PATH=str(d))
        done = subprocess.run([str(d / "sh"), "-c", command], env=env, capture_output=True, timeout=60)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert done.returncode == 0, done.stderr
    clock, resolution, sections = shprobe.split(done.stdout, nonce)
    assert resolution == 1.0 and clock is not None and abs(clock - time.time()) < 5
    data = shprobe.to_raw(clock, sections, ["sleep"])
    assert data["cpus"] == os.cpu_count() and "MemTotal:" in data["meminfo"]
    st = os.statvfs("/")
    assert data["mounts"]["/"]["size"] == st.f_blocks * st.f_frsize
    assert data["services"] == {"sleep": True}
    assert data["smi"]["rc"] is None and data["smi"]["stderr"] == "timed out after 1s"


def test_ibstat_when_sysfs_has_no_infiniband(tmp_path: Path, real_fixtures: Path) -> None:
    if Path("/sys/class/infiniband").is_dir():
        pytest.fail("this machine has InfiniBand sysfs: the ibstat fallback cannot be exercised here")
    d = tool_dir(tmp_path)
    capture = real_fixtures / "gpud_ibstat.47.0.h100.some.down.0.txt"
    fake(d, "ibstat", f"cat {capture}\n")
    data, _ = probe(path=str(d))
    assert data["infiniband"] == {} and data["ibstat"]["rc"] == 0
    facts = facts_from_raw(Raw("here", data, data["time"], time.time(), time.time()))
    assert facts.ib_ports and any(p.state != "Active" for p in facts.ib_ports)


def test_service_names_are_checked_before_they_reach_a_command() -> None:
    with pytest.raises(DccliError, match="may only hold"):
        shprobe.command(["sshd; rm -rf /"])


# ---- the parser alone --------------------------------------------------------------------------------------

NONCE = "0123abcd0123abcd"


def wire(body: str, *, noise: bytes = b"", compress: bool = True) -> bytes:
    head = (
        noise + f"@@{NONCE} clock 1700000000.250000000\n@@{NONCE} {'gz' if compress else 'plain'}\n".encode()
    )
    return head + (gzip.compress(body.encode()) if compress else body.encode())


def test_split_skips_login_noise_and_wants_the_end_marker() -> None:
    body = f"\n@@{NONCE} out files\n==> /proc/loadavg <==\n0.1 0.2 0.3 1/2 3\n\n@@{NONCE} rc files 0\n\n@@{NONCE} end\n"
    clock, resolution, sections = shprobe.split(wire(body, noise=b"Welcome to node01\n"), NONCE)
    assert (clock, resolution) == (1700000000.25, 0.0)
    assert sections[0] == ("out files", "==> /proc/loadavg <==\n0.1 0.2 0.3 1/2 3\n")
    cut = wire(body)[:-8]  # the gzip stream cut short: the host went away mid-probe
    with pytest.raises(shprobe.ProbeError):
        shprobe.split(cut, NONCE)
    with pytest.raises(shprobe.ProbeError, match="ended early"):
        shprobe.split(wire(body.replace(f"@@{NONCE} end\n", "")), NONCE)
    with pytest.raises(shprobe.ProbeError, match="no probe output"):
        shprobe.split(b"sh: 1: dccli: not found\n", NONCE)


def test_a_forged_marker_without_the_nonce_is_only_text() -> None:
    body = (
        f"\n@@{NONCE} out log\nkernel: @@deadbeef end\n@@ out smi 0\n\n@@{NONCE} rc log 0\n\n@@{NONCE} end\n"
    )
    _, _, sections = shprobe.split(wire(body, compress=False), NONCE)
    raw = shprobe.to_raw(None, sections, [])
    assert raw["kernel_log"] == {"rc": 0, "stdout": "kernel: @@deadbeef end\n@@ out smi 0\n", "stderr": ""}
    assert raw["smi"] is None


def test_to_raw_flags_pids_ib_and_busybox_date() -> None:
    sections = [
        ("flag reboot", ""),
        ("pids", "41\n42 ?\n"),
        ("out env", "/proc/41/environ:DCCLI_RUN_ID=r1\0"),
        ("rc env", ""),
        (
            "out ib",
            "/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE\n"
            "/sys/class/infiniband/mlx5_0/ports/1/rate:400 Gb/sec (4X NDR)\n",
        ),
        ("rc ib 0", ""),
        ("end", ""),
    ]
    raw = shprobe.to_raw(None, sections, [])
    assert raw["reboot_required"] is True
    assert raw["run_ids"] == {"41": "r1", "42": "?"}
    assert raw["infiniband"] == {"mlx5_0/1": {"state": "4: ACTIVE", "rate": "400 Gb/sec (4X NDR)"}}


def test_a_whole_second_clock_widens_the_skew_bracket() -> None:
    """busybox's date has no %N: the host's time is floored to the second, so the skew is measured from the
    middle of that second, with half a second more uncertainty (not a false 0.5 s skew WARN)."""
    from dccli.health.probe import skew

    stdout = wire(f"\n@@{NONCE} end\n").replace(b"1700000000.250000000", b"1700000000.%N")
    clock, resolution, _ = shprobe.split(stdout, NONCE)
    assert (clock, resolution) == (1700000000.0, 1.0)
    measured, uncertainty = skew(Raw("h", {}, clock, 1700000000.70, 1700000000.72, resolution))
    assert abs(measured - -0.21) < 1e-6 and abs(uncertainty - 0.51) < 1e-6
    measured, uncertainty = skew(Raw("h", {}, 1700000000.71, 1700000000.70, 1700000000.72))
    assert abs(measured) < 1e-6 and abs(uncertainty - 0.01) < 1e-6


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
