"""SIMULATION: kernel-log records of a lab host: the simulated NVRM/Xid lines (kept in /dev/kmsg record format
in /var/lib/dccli-gpusim/kmsg) merged with the real kernel's records since the host's boot, rendered the
way `dmesg` and `journalctl -k` print them (formats from gpud_dmesg_* and gpud_kmsg* captures). Pure except
`read_*` helpers.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections import namedtuple

TYPE_CHECKING = False  # not `import typing` at run time: every dmesg call would pay for it
if TYPE_CHECKING:
    from typing import Any


LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
)
# Wording of common Xids as real drivers print them (48, 63, 94 from gpud_dmesg captures; the rest after
# NVIDIA's Xid catalogue). Anything else gets the generic text.
XID_TEXT = {
    13: "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address",
    31: "Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f12_34560000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
    43: "Ch 00000008",
    45: "Ch 00000010",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at physAddr 0x12bac1c3e0 partition 2, subpartition 1.",
    61: "Internal micro-controller breakpoint/warning",
    62: "Internal micro-controller halt",
    63: "Row Remapper: New row (0x00000012bac1c3e0) marked for remapping, reset gpu to activate.",
    64: "Row Remapper: Failed to remap row (0x00000012bac1c3e0)",
    74: "NVLink: fatal error detected on link 5(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)",
    79: "GPU has fallen off the bus.",
    92: "High single-bit ECC error rate",
    94: "Contained: SM (0x1). RST: No, D-RST: No",
    95: "Uncontained: FBHUB. RST: Yes, D-RST: No",
    119: "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20802a02 0x8).",
    120: "GSP task exception: pc=0x1c3f4, badAddr=0x0",
}


# priority: facility * 8 + level, as in /dev/kmsg and `dmesg --raw`; usec: microseconds since the host's boot.
Record = namedtuple("Record", "priority usec message")


PAGE_RETIRED_TEXT = "Dynamic Page Retirement: New page retired, reboot to activate (0x0000000012bac1c3)."


def xid_message(bus_id: str, code: int, text: str | None = None) -> str:
    """`NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.`"""
    pci = bus_id[4:].rsplit(".", 1)[0].lower()  # 00000000:18:00.0 -> 0000:18:00
    text = text or XID_TEXT.get(code, f"Xid {code} reported by the GPU (simulated)")
    return f"NVRM: Xid (PCI:{pci}): {code}, pid='<unknown>', name=<unknown>, {text}"


def driver_load_messages(driver: str) -> list[tuple[int, str]]:
    """(level, message) a booting host's kernel prints when the NVIDIA module loads."""
    return [
        (4, "nvidia: loading out-of-tree module taints kernel."),
        (6, "nvidia-nvlink: Nvlink Core is being initialized, major device number 234"),
        (4, f"NVRM: loading NVIDIA UNIX x86_64 Kernel Module  {driver}  Thu Jun 13 20:52:38 UTC 2024"),
    ]


def format_kmsg(seq: int, record: Record) -> str:
    return f"{record.priority},{seq},{record.usec},-;{record.message}\n"


def parse_kmsg(text: str) -> list[Record]:
    out = []
    for line in text.splitlines():
        head, sep, message = line.partition(";")
        fields = head.split(",")
        if not sep or len(fields) < 3 or not fields[0].isdigit() or not fields[2].isdigit():
            continue  # a torn or foreign line: skip it rather than fail the whole log
        out.append(Record(int(fields[0]), int(fields[2]), message))
    return out


_RAW = re.compile(r"^<(\d+)>\[\s*(\d+)\.(\d+)\] ?(.*)$")


def parse_raw(text: str, boot_monotonic: float) -> list[Record]:
    """`dmesg --raw` of the real kernel -> records since the host's boot, re-based on it."""
    offset = int(boot_monotonic * 1_000_000)
    out = []
    for line in text.splitlines():
        m = _RAW.match(line)
        if not m:
            continue
        usec = int(m.group(2)) * 1_000_000 + int(m.group(3).ljust(6, "0")[:6]) - offset
        if usec >= 0:
            out.append(Record(int(m.group(1)), usec, m.group(4)))
    return out


def merged(real: list[Record], simulated: list[Record]) -> list[Record]:
    return sorted(real + simulated, key=lambda r: r.usec)


def _wall(boot_time: float, usec: int, tz: _dt.tzinfo | None) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(boot_time + usec / 1_000_000, tz)


def _decode(priority: int) -> str:
    facility, level = priority >> 3, priority & 7
    name = FACILITIES[facility] if facility < len(FACILITIES) else f"{facility}"
    return f"{name:<6}:{LEVELS[level]:<6}: "


def render_dmesg(
    records: list[Record], boot_time: float, fmt: str, decode: bool, tz: _dt.tzinfo | None = None
) -> str:
    """fmt: default | ctime | iso | raw | notime."""
    tz = tz or _dt.datetime.now().astimezone().tzinfo
    out = []
    for r in records:
        sec, usec = divmod(r.usec, 1_000_000)
        if fmt == "raw":
            out.append(f"<{r.priority}>[{sec:5d}.{usec:06d}] {r.message}")
            continue
        if fmt == "iso":
            stamp = _wall(boot_time, r.usec, tz).strftime("%Y-%m-%dT%H:%M:%S,%f%z")
            stamp = stamp[:-2] + ":" + stamp[-2:] + " "
        elif fmt == "ctime":
            stamp = "[" + _wall(boot_time, r.usec, tz).strftime("%a %b %e %H:%M:%S %Y") + "] "
        elif fmt == "notime":
            stamp = ""
        else:
            stamp = f"[{sec:5d}.{usec:06d}] "
        out.append((_decode(r.priority) if decode else "") + stamp + r.message)
    return "".join(line + "\n" for line in out)


def render_journal(
    records: list[Record], boot_time: float, hostname: str, fmt: str, tz: _dt.tzinfo | None = None
) -> str:
    """journalctl -k output: fmt short | short-iso | short-precise | short-iso-precise | cat."""
    tz = tz or _dt.datetime.now().astimezone().tzinfo
    if not records:
        return "-- No entries --\n"
    out = []
    for r in records:
        when = _wall(boot_time, r.usec, tz)
        if fmt == "cat":
            out.append(r.message)
            continue
        if fmt == "short-iso":
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S%z")
        elif fmt == "short-iso-precise":
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
        elif fmt == "short-precise":
            stamp = when.strftime("%b %d %H:%M:%S.%f")
        else:
            stamp = when.strftime("%b %d %H:%M:%S")
        out.append(f"{stamp} {hostname} kernel: {r.message}")
    return "".join(line + "\n" for line in out)


def read_boot(path: str) -> dict[str, Any]:
    """The host's boot record; a host started before GPU simulation existed counts as booted at 0."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return {
            "boot_time": float(data["boot_time"]),
            "boot_monotonic": float(data["boot_monotonic"]),
            "boot_id": str(data.get("boot_id", "")),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {"boot_time": 0.0, "boot_monotonic": 0.0, "boot_id": ""}
