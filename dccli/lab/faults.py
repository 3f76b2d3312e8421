"""`dccli lab fault`: inject (and clear) faults into one running lab host. SIMULATION (docs/lab.md).

GPU faults rewrite the host's simulator state (/var/lib/dccli-gpusim/state.json) and append real-format
kernel lines (Xid) to its simulated kernel log; host faults act on the host itself: a full filesystem
(a small tmpfs filled up), a stopped sshd, every process stopped (SIGSTOP). Host-level faults are recorded
in /run/dccli-lab/faults.json inside the host (a tmpfs: a reboot forgets them as it ends them).
Changes go through host_exec (nsenter), never into the upper dir of a running host.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dccli.errors import LabError, UsageError
from dccli.lab import host as hostmod
from dccli.lab import procs
from dccli.lab.gpusim import klog
from dccli.lab.gpusim import model as gpumodel
from dccli.lab.model import LabInfo

GPU_KINDS = ("xid", "ecc_dbe", "row_remap_pending", "retired_pages", "temp", "fell_off_bus")
HOST_KINDS = ("disk_full", "sshd_stop", "freeze")
FAULTS_RECORD = "/run/dccli-lab/faults.json"
DISK_FULL_SIZE = "16m"
_REFUSED_PATHS = ("/", "/proc", "/sys", "/dev", "/run", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64")


@dataclass(frozen=True)
class Fault:
    kind: str  # one of GPU_KINDS, HOST_KINDS or "clear"
    gpu: int | None = None  # None: GPU 0 for GPU faults; every GPU for clear
    value: int | str | None = None  # Xid code, DBE count, page count, temperature, or a path


def _xid_for(kind: str, value: Any) -> int | None:
    return {
        "xid": value,
        "ecc_dbe": 48,
        "row_remap_pending": 63,
        "retired_pages": 63,
        "fell_off_bus": 79,
    }.get(kind)


def _read_state(lab: LabInfo, host_name: str) -> dict[str, Any]:
    proc = hostmod.host_exec(lab, host_name, ["cat", gpumodel.STATE_PATH])
    if proc.returncode != 0:
        raise LabError(f"host {host_name} has no simulated GPUs (start the lab with --gpus N)")
    try:
        return gpumodel.loads(proc.stdout, f"{host_name}:{gpumodel.STATE_PATH}")
    except gpumodel.StateError as exc:
        raise LabError(str(exc)) from None


def _boot_monotonic(lab: LabInfo, host_name: str) -> float:
    # boot.json is written before the host starts and never changed by it: reading its upper copy is safe.
    boot = klog.read_boot(str(lab.host(host_name).upper_dir) + gpumodel.BOOT_PATH)
    return boot["boot_monotonic"]


def _write_state(lab: LabInfo, host_name: str, state: dict[str, Any], kmsg_lines: list[str]) -> None:
    d = gpumodel.STATE_DIR
    script = f"umask 022 && cat > {d}/.state.tmp && mv -f {d}/.state.tmp {d}/state.json"
    for line in kmsg_lines:
        script += f" && printf '%s' {shlex.quote(line)} >> {d}/kmsg"
    proc = hostmod.host_exec(lab, host_name, ["sh", "-c", script], input=gpumodel.dumps(state))
    if proc.returncode != 0:
        raise LabError(f"host {host_name}: writing the GPU state failed: {proc.stderr.strip()}")


def _kmsg_count(lab: LabInfo, host_name: str) -> int:
    proc = hostmod.host_exec(lab, host_name, ["sh", "-c", f"cat {gpumodel.KMSG_PATH} 2>/dev/null | wc -l"])
    return int(proc.stdout.strip() or 0)


def edit_state(lab: LabInfo, host_name: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Change a running host's GPU state in place with `edit(state)` (for tests and demos that need a
    condition no fault flag makes: a degraded PCIe link, a stray process, persistence mode off...).
    The result is validated before it is written; returns it."""
    state = _read_state(lab, host_name)
    edit(state)
    try:
        gpumodel.validate(state, f"{host_name}:{gpumodel.STATE_PATH}")
    except gpumodel.StateError as exc:
        raise LabError(str(exc)) from None
    _write_state(lab, host_name, state, [])
    return state


def gpu_fault(lab: LabInfo, host_name: str, fault: Fault) -> str:
    state = _read_state(lab, host_name)
    index = 0 if fault.gpu is None else fault.gpu
    value = int(fault.value) if fault.value is not None else 0
    kind = "xid79" if fault.kind == "xid" and value == 79 else fault.kind
    if not any(g["index"] == index for g in state["gpus"]):
        raise UsageError(
            f"host {host_name}: no GPU {index} (it has {len(state['gpus'])}: 0-{len(state['gpus']) - 1})"
        )
    # A plain Xid only adds a log line; Xid 79 also takes the GPU off the bus.
    new = (
        state if fault.kind == "xid" and kind != "xid79" else gpumodel.apply_fault(state, kind, index, value)
    )
    gpu = next(g for g in new["gpus"] if g["index"] == index)
    lines = []
    code = _xid_for(fault.kind, value)
    if code is not None:
        usec = max(0, int((time.monotonic() - _boot_monotonic(lab, host_name)) * 1_000_000))
        seq = 1000 + _kmsg_count(lab, host_name)
        text = klog.PAGE_RETIRED_TEXT if fault.kind == "retired_pages" else None
        message = klog.xid_message(gpu["pci_bus_id"], code, text)
        lines.append(klog.format_kmsg(seq, klog.Record(4, usec, message)))
    _write_state(lab, host_name, new, lines)
    what = {
        "xid": f"Xid {value}",
        "ecc_dbe": f"{value} double-bit ECC error(s)",
        "row_remap_pending": "a pending row remap",
        "retired_pages": f"{value} retired page(s), pending",
        "temp": f"temperature {value} C",
        "fell_off_bus": "fallen off the bus (Xid 79)",
    }[fault.kind]
    return f"{host_name} GPU {index} ({gpu['pci_bus_id']}): {what}"


# ---------------------------------------------------------------- host faults


def _read_record(lab: LabInfo, host_name: str) -> dict[str, Any]:
    proc = hostmod.host_exec(lab, host_name, ["cat", FAULTS_RECORD])
    try:
        return json.loads(proc.stdout) if proc.returncode == 0 else {}
    except ValueError:
        return {}


def _write_record(lab: LabInfo, host_name: str, record: dict[str, Any]) -> None:
    script = f"mkdir -p {os.path.dirname(FAULTS_RECORD)} && cat > {FAULTS_RECORD}"
    hostmod.host_exec(lab, host_name, ["sh", "-c", script], input=json.dumps(record) + "\n")


def host_pids(lab: LabInfo, host_name: str) -> list[int]:
    """Every process in the host's PID namespace, seen from the control node (its init included)."""
    pids = procs.namespace_members(lab.host(host_name).init_pid)
    if not pids:
        raise LabError(f"lab {lab.name!r}: host {host_name} is not running")
    return pids


def _signal_all(lab: LabInfo, host_name: str, sig: int) -> int:
    done: set[int] = set()
    for _ in range(3):  # again: a process may have forked while we went through the list
        todo = [pid for pid in host_pids(lab, host_name) if pid not in done]
        if not todo:
            break
        for pid in todo:
            try:
                os.kill(pid, sig)
                done.add(pid)
            except ProcessLookupError:
                pass
    return len(done)


def _check_path(path: str) -> str:
    norm = os.path.normpath(path)
    if not path.startswith("/") or norm in _REFUSED_PATHS or norm.startswith(("/proc/", "/sys/", "/dev/")):
        raise UsageError(f"--disk-full {path!r}: give an absolute path other than / and the system dirs")
    return norm


def host_fault(lab: LabInfo, host_name: str, fault: Fault) -> str:
    record = _read_record(lab, host_name)
    if fault.kind == "disk_full":
        path = _check_path(str(fault.value))
        q = shlex.quote(path)
        script = (
            f"mkdir -p {q} && (mountpoint -q {q} || mount -t tmpfs -o size={DISK_FULL_SIZE} dccli-disk-full {q})"
            f" && (dd if=/dev/zero of={q}/.dccli-disk-full bs=1M 2>/dev/null; true) && df -P {q} | tail -1"
        )
        proc = hostmod.host_exec(lab, host_name, ["sh", "-c", script])
        if proc.returncode != 0:
            raise LabError(f"host {host_name}: filling {path} failed: {proc.stderr.strip()}")
        record["disk_full"] = sorted(set(record.get("disk_full", [])) | {path})
        _write_record(lab, host_name, record)
        return f"{host_name}: {path} is full ({proc.stdout.split()[4] if proc.stdout.split() else '?'} used)"
    if fault.kind == "sshd_stop":
        record["sshd_stopped"] = True
        _write_record(lab, host_name, record)
        hostmod.sshd_stop(lab, host_name)
        return f"{host_name}: sshd stopped"
    if fault.kind == "freeze":
        record["frozen"] = True
        _write_record(lab, host_name, record)
        count = _signal_all(lab, host_name, signal.SIGSTOP)
        return f"{host_name}: frozen ({count} processes stopped)"
    raise UsageError(f"unknown fault {fault.kind!r}")


def clear(lab: LabInfo, host_name: str, gpu: int | None = None) -> str:
    """Thaw, restart sshd, unmount disk-full tmpfs, and reset GPU state (all GPUs, or one)."""
    done = []
    if gpu is None:
        thawed = _signal_all(lab, host_name, signal.SIGCONT)  # first: nothing below works on a frozen host
        record = _read_record(lab, host_name)
        if record.get("frozen"):
            done.append(f"thawed {thawed} processes")
        for path in record.get("disk_full", []):
            hostmod.host_exec(lab, host_name, ["umount", "-l", path])
            done.append(f"unmounted {path}")
        host = lab.host(host_name)
        if record.get("sshd_stopped") or not hostmod.ssh_banner(host.address, host.port, timeout=2.0):
            hostmod.sshd_start(lab, host_name)
            done.append("sshd started")
        hostmod.host_exec(lab, host_name, ["rm", "-f", FAULTS_RECORD])
    check = hostmod.host_exec(lab, host_name, ["test", "-f", gpumodel.STATE_PATH])
    if check.returncode == 0:
        state = _read_state(lab, host_name)
        try:
            new = gpumodel.clear(state, gpu)
        except gpumodel.StateError as exc:
            raise UsageError(f"host {host_name}: {exc}") from None
        _write_state(lab, host_name, new, [])
        _drop_xids(lab, host_name, None if gpu is None else new["gpus"][gpu]["pci_bus_id"])
        done.append("GPU state reset" if gpu is None else f"GPU {gpu} state reset")
    elif gpu is not None:
        raise LabError(f"host {host_name} has no simulated GPUs")
    return f"{host_name}: " + (", ".join(done) or "nothing to clear")


def _drop_xids(lab: LabInfo, host_name: str, bus_id: str | None) -> None:
    """Remove simulated Xid lines (of one GPU, or all) from the host's simulated kernel log."""
    pattern = "NVRM: Xid (PCI:" + (bus_id[4:].rsplit(".", 1)[0].lower() if bus_id else "")
    k = gpumodel.KMSG_PATH
    script = f"grep -vF {shlex.quote(pattern)} {k} > {k}.tmp; mv -f {k}.tmp {k}"
    hostmod.host_exec(lab, host_name, ["sh", "-c", script])


def inject(lab: LabInfo, host_name: str, fault: Fault) -> str:
    lab.host(host_name)  # unknown host: LabError naming it
    if fault.kind == "clear":
        return clear(lab, host_name, fault.gpu)
    if fault.kind in GPU_KINDS:
        return gpu_fault(lab, host_name, fault)
    return host_fault(lab, host_name, fault)
