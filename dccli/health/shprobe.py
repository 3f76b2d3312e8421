"""The health probe's wire side: the command that runs probe.sh on a host, and the pure parse of what it
prints into the raw dict probe.facts_from_raw reads (the same keys the Python helper's step once sent).

Why a shell script and not the Python helper: a host pays ~6 ms of CPU just to start python3 and ~5 ms
more to load the helper; probe.sh does the whole probe in ~12.5 ms (docs/ARCHITECTURE.md). Output: a
clock line at once, then a gzip stream of sections, each after a line "@@NONCE KIND NAME..." with a
nonce fresh per probe, so no output of a probed tool can fake a marker.
"""

from __future__ import annotations

import re
import secrets
import shlex
import zlib
from functools import lru_cache
from importlib import resources
from typing import Any

from dccli.errors import DccliError
from dccli.inventory.fields import service_name_problem

# df itself leaves out the pseudo file systems (proc, sysfs, cgroup...: no blocks) and repeats of a device. Of
# what it shows, these are no disk to fill: devtmpfs holds device nodes; squashfs and iso9660 are read-only
# images, always 100% used (snaps, live media). df -P (the fallback) names no type, so it keeps them.
NOT_A_DISK = frozenset({"devtmpfs", "squashfs", "iso9660", "efivarfs"})
TIMEOUT_RC = (124, 143)  # timeout(1) ended nvidia-smi after SMI_TIMEOUT_S: coreutils 124, busybox 143 (TERM)
SMI_TIMEOUT_S = 60  # a wedged GPU can hang nvidia-smi for minutes; a healthy 8-GPU -q -x takes a few seconds


class ProbeError(DccliError):
    """The probe's output is not what probe.sh prints (cut short, no shell, noise only)."""


@lru_cache(maxsize=1)
def script() -> str:
    return resources.files("dccli.health").joinpath("probe.sh").read_text()


def command(
    services: list[str],
    *,
    gpu: bool = True,
    nvlink: bool = False,
    kernel_log: bool = True,
    smi_timeout_s: int = SMI_TIMEOUT_S,
    nonce: str | None = None,
) -> tuple[str, str]:
    """(the remote command line, its nonce). Services are checked again here: they become argv words."""
    for name in services:
        problem = service_name_problem(name)
        if problem:
            raise DccliError(f"health service name {name!r} {problem}")
    nonce = nonce or secrets.token_hex(8)
    words = [
        nonce,
        "1" if gpu else "0",
        "1" if nvlink else "0",
        "1" if kernel_log else "0",
        str(int(smi_timeout_s)),
        *services,
    ]
    return f"sh -c {shlex.quote(script())} dccli-health {' '.join(shlex.quote(w) for w in words)}", nonce


def clock_line(nonce: str) -> bytes:
    return b"@@" + nonce.encode() + b" clock "


def split(stdout: bytes, nonce: str) -> tuple[float | None, float, list[tuple[str, str]]]:
    """(the host's clock, its resolution in seconds, [(marker, body)...]) from the probe's whole stdout;
    ProbeError if it is not whole. Lines before the clock line are a login script's noise and are skipped.
    """
    tag = clock_line(nonce)
    start = stdout.find(tag)
    if start < 0:
        raise ProbeError("no probe output (is /bin/sh there?)")
    line_end = stdout.find(b"\n", start)
    mode_end = stdout.find(b"\n", line_end + 1) if line_end >= 0 else -1
    if mode_end < 0:
        raise ProbeError("probe output ended after its first line")
    clock, resolution = _clock(stdout[start + len(tag) : line_end].decode("ascii", "replace"))
    mode = stdout[line_end + 1 : mode_end].decode("ascii", "replace")
    body = stdout[mode_end + 1 :]
    if mode == f"@@{nonce} gz":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body)
        except zlib.error as exc:
            raise ProbeError(f"probe output damaged: {exc}") from None
        if not inflater.eof:
            raise ProbeError("probe output cut short (the host or its session went away)")
    elif mode != f"@@{nonce} plain":
        raise ProbeError(f"probe output: unexpected line {mode[:80]!r}")
    text = body.decode("utf-8", "replace")
    parts = re.split(r"\n@@" + re.escape(nonce) + r" ([^\n]*)\n", text)
    sections = list(zip(parts[1::2], parts[2::2], strict=True))
    if not sections or sections[-1][0] != "end":
        raise ProbeError("probe output ended early (the host or its session went away)")
    return clock, resolution, sections


def _clock(text: str) -> tuple[float | None, float]:
    """`date +%s.%N` -> (seconds, 0.0); busybox's date knows no %N: (whole seconds, 1.0), the time floored."""
    try:
        return float(text.strip()), 0.0
    except ValueError:
        head = text.strip().split(".")[0]
        return (float(head), 1.0) if head.isdigit() else (None, 0.0)


def to_raw(clock: float | None, sections: list[tuple[str, str]], services: list[str]) -> dict[str, Any]:
    """The raw dict facts_from_raw reads, from split()'s sections (pure)."""
    runs: dict[str, dict[str, Any]] = {}
    flags: set[str] = set()
    pids: list[tuple[int, bool]] = []
    cut_off: dict[str, str] = {}  # name -> "timed out after Ns": timeout(1) ended it, its stderr says nothing
    for marker, body in sections:
        kind, _, rest = marker.partition(" ")
        words = rest.split()
        command = words and kind in ("out", "rc", "err")
        entry = runs.setdefault(words[0], {"rc": None, "stdout": "", "stderr": ""}) if command else {}
        if kind == "out" and command:
            entry["stdout"] = body
            if len(words) > 1:  # "out smi RC [timeout N]": the rc came with the output
                entry["rc"] = _rc(words[1])
                if entry["rc"] in TIMEOUT_RC and len(words) == 4 and words[2] == "timeout":
                    entry["rc"], cut_off[words[0]] = None, f"timed out after {words[3]}s"
        elif kind == "rc" and command and len(words) == 2:
            entry["rc"], entry["stderr"] = _rc(words[1]), body
        elif kind == "err" and command:
            entry["stderr"] = body
        elif kind == "flag" and words:
            flags.add(words[0])
        elif kind == "pids":
            for line in body.splitlines():
                pid, _, unreadable = line.partition(" ")
                if pid.isdigit():
                    pids.append((int(pid), unreadable == "?"))
    for name, why in cut_off.items():
        runs[name]["stderr"] = why
    files = _tail_files(runs.get("files", {}).get("stdout", ""))
    stat = files.get("/proc/stat", "")
    btime = next((float(line.split()[1]) for line in stat.splitlines() if line.startswith("btime ")), None)
    cpus = sum(1 for line in stat.splitlines() if re.match(r"cpu\d+ ", line)) or None
    zombies, names = _processes(files)
    data: dict[str, Any] = {
        "time": clock,
        "boot_id": files.get("/proc/sys/kernel/random/boot_id", "").strip(),
        "meminfo": files.get("/proc/meminfo"),
        "loadavg": files.get("/proc/loadavg"),
        "stat_btime": btime,
        "cpus": cpus,
        "mounts": _df_posix(runs["dfk"]["stdout"])
        if "dfk" in runs
        else _df(runs.get("df", {}).get("stdout", "")),
        "reboot_required": "reboot" in flags,
        "smi": runs.get("smi"),
        "nvlink": runs.get("nvlink"),
        "kernel_log": runs.get("log"),
        "run_ids": _run_ids(pids, runs.get("env", {}).get("stdout", "")),
        "chrony": runs.get("chrony"),
        "timedatectl": runs.get("timedatectl"),
        "services": {},
        "infiniband": _ib(runs["ib"]["stdout"]) if "ib" in runs else {},
        "ibstat": runs.get("ibstat"),
        "defunct": zombies,
    }
    if services:
        if "services" in runs:  # systemctl is-active: one state per unit, in order
            states = runs["services"]["stdout"].split()
            data["services"] = {n: i < len(states) and states[i] == "active" for i, n in enumerate(services)}
        else:  # no systemd: a running process of that name
            data["services"] = {n: n in names or n.rsplit(".service", 1)[0] in names for n in services}
    return data


def _rc(word: str) -> int | None:
    return int(word) if word.lstrip("-").isdigit() else None


def _tail_files(text: str) -> dict[str, str]:
    """`tail -n +1 FILE...` output -> {path: content}; each file after a "==> PATH <==" line."""
    parts = re.split(r"(?:^|\n)==> (/[^\n]*) <==\n", text)
    return {path: body.rstrip("\n") + "\n" for path, body in zip(parts[1::2], parts[2::2], strict=True)}


def _processes(files: dict[str, str]) -> tuple[int, set[str]]:
    """(zombie count, process names) from every /proc/PID/stat; comm may hold spaces and parentheses."""
    zombies, names = 0, set()
    for path, stat in files.items():
        if not (path.startswith("/proc/") and path.endswith("/stat")) or path.count("/") != 3:
            continue
        close = stat.rfind(")")
        if close < 0:
            continue
        names.add(stat[stat.find("(") + 1 : close])
        if stat[close + 2 : close + 3] == "Z":
            zombies += 1
    return zombies, names


def _df(text: str) -> dict[str, dict[str, Any]]:
    """`df -B1 --output=fstype,size,used,avail,itotal,iavail,target` -> {mount: figures}."""
    out: dict[str, dict[str, Any]] = {}
    for line in text.splitlines()[1:]:
        fields = line.split(None, 6)
        if len(fields) < 7 or fields[0] in NOT_A_DISK or not fields[1].isdigit() or int(fields[1]) == 0:
            continue
        fstype, size, used, avail, inodes, ifree, path = fields
        out.setdefault(
            path,
            {
                "fstype": fstype,
                "size": int(size),
                "used": _int(used),
                "free": _int(avail),
                "inodes": _int(inodes),
                "inodes_free": _int(ifree),
            },
        )
    return out


def _df_posix(text: str) -> dict[str, dict[str, Any]]:
    """`df -P -k` (busybox, old coreutils): no type and no inodes."""
    out: dict[str, dict[str, Any]] = {}
    for line in text.splitlines()[1:]:
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[1].isdigit() or int(fields[1]) == 0:
            continue
        out.setdefault(
            fields[5],
            {
                "fstype": "",
                "size": int(fields[1]) * 1024,
                "used": _int(fields[2]) * 1024,
                "free": _int(fields[3]) * 1024,
                "inodes": 0,
                "inodes_free": 0,
            },
        )
    return out


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _run_ids(pids: list[tuple[int, bool]], env: str) -> dict[str, str | None]:
    """pid -> DCCLI_RUN_ID (None: the process belongs to no dccli run; "?": its environ was unreadable).

    env: `grep -a -z -H ^DCCLI_RUN_ID= /proc/PID/environ...`, NUL-terminated "PATH:DCCLI_RUN_ID=VALUE".
    """
    found: dict[int, str] = {}
    for item in env.split("\0"):
        m = re.match(r"/proc/(\d+)/environ:DCCLI_RUN_ID=(.*)", item.strip("\n"), re.S)
        if m:
            found[int(m.group(1))] = m.group(2)
    return {str(pid): ("?" if unreadable else found.get(pid)) for pid, unreadable in pids}


def _ib(text: str) -> dict[str, dict[str, str]]:
    """`grep -H '' /sys/class/infiniband/DEV/ports/N/ATTR...` -> {"DEV/N": {attr: value}}."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        m = re.fullmatch(r"/sys/class/infiniband/([^/]+)/ports/([^/]+)/(\w+)", path)
        if sep and m:
            out.setdefault(f"{m.group(1)}/{m.group(2)}", {})[m.group(3)] = value.strip()
    return dict(sorted(out.items()))
