"""Pure parsers for kernel logs (Xid extraction), InfiniBand port state, mounts and small /proc files.

Kernel log forms handled (all seen in ../shared/fixtures/real): `dmesg` raw (`[  201.650687] msg`, `<6>[...]`),
`dmesg --time-format iso` (`2024-11-15T12:02:03,470068+00:00 msg`), `dmesg --decode` (`kern  :warn  : ISO msg`),
`journalctl -k -o short-iso` (`2025-01-02T15:20:12+0800 host kernel: msg`), syslog (`Aug 17 00:00:24 host
kernel: msg`) and /dev/kmsg records (`6,3973,227996636,-;msg`).
"""

from __future__ import annotations

import re
from datetime import datetime

from dccli.health.model import IbPort, Mount, XidEvent

_XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9A-Fa-f:.]+)\):\s*(\d+),?\s*(.*)$")
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[,.](\d+))?([+-]\d{2}:?\d{2}|Z)?")
_KMSG = re.compile(r"^(\d+),(\d+),(\d+),[^;]*;")
_MONO = re.compile(r"^\s*(?:<\d+>)?\[\s*(\d+\.\d+)\]")


def _iso_epoch(m: re.Match[str]) -> float | None:
    base, frac, tz = m.group(1), m.group(2), m.group(3)
    tz = "+00:00" if tz in (None, "Z") else (tz if ":" in tz else tz[:3] + ":" + tz[3:])
    try:
        stamp = datetime.fromisoformat(base + tz).timestamp()
    except ValueError:
        return None
    return stamp + (float("0." + frac) if frac else 0.0)


def line_time(line: str, boot_time: float | None = None) -> float | None:
    """Absolute time of a kernel log line, when the line or the boot time tells it."""
    m = _ISO.search(line[:64])
    if m:
        return _iso_epoch(m)
    k = _KMSG.match(line)
    if k and boot_time is not None:
        return boot_time + int(k.group(3)) / 1e6  # kmsg's third field: microseconds since boot
    mono = _MONO.match(line)
    if mono and boot_time is not None:
        return boot_time + float(mono.group(1))
    return None


def parse_xids(text: str, boot_time: float | None = None) -> list[XidEvent]:
    """Every `NVRM: Xid (PCI:...): CODE, ...` line, in log order."""
    out = []
    for line in text.splitlines():
        m = _XID.search(line)
        if m:
            out.append(
                XidEvent(
                    int(m.group(2)),
                    m.group(1).lower(),
                    m.group(3).strip(),
                    line_time(line, boot_time),
                    line.rstrip(),
                )
            )
    return out


def looks_like_kernel_log(text: str) -> bool:
    """True for dmesg/journalctl/kmsg/syslog text (used by `health analyze` to pick a parser)."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return False
    hits = sum(
        1
        for ln in lines
        if _ISO.match(ln)
        or _KMSG.match(ln)
        or _MONO.match(ln)
        or re.match(r"^\w+\s*:\w+\s*: ", ln)
        or re.match(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ", ln)
    )
    return hits >= max(1, len(lines) // 2)


# ---- InfiniBand -----------------------------------------------------------------------------------------

_STATE_WORDS = {
    "ACTIVE": "Active",
    "DOWN": "Down",
    "INIT": "Initializing",
    "INITIALIZE": "Initializing",
    "INITIALIZING": "Initializing",
    "ARMED": "Armed",
}


def _norm_state(raw: str) -> str:
    """'4: ACTIVE' (sysfs, ibstatus) and 'Active' (ibstat) -> 'Active'."""
    word = raw.split(":", 1)[1].strip() if ":" in raw else raw.strip()
    return _STATE_WORDS.get(word.upper(), word)


def _rate(raw: str) -> float | None:
    m = re.match(r"\s*(\d+(?:\.\d+)?)", raw or "")
    return float(m.group(1)) if m else None


def parse_ibstat(text: str) -> list[IbPort]:
    """`ibstat` (CA 'mlx5_0' / Port 1: / State: Active) or `ibstatus` (Infiniband device 'x' port 1 status:)."""
    ports: list[IbPort] = []
    ca: str | None = None
    cur: dict[str, str] | None = None

    def flush() -> None:
        if cur is not None and ca is not None and "state" in cur:
            ports.append(
                IbPort(
                    ca,
                    int(cur["port"]),
                    _norm_state(cur["state"]),
                    _norm_state(cur.get("phys", "")),
                    _rate(cur.get("rate", "")),
                    cur.get("layer", ""),
                )
            )

    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"^CA '([^']+)'", line)
        if m:
            flush()
            ca, cur = m.group(1), None
            continue
        m = re.match(r"^Infiniband device '([^']+)' port (\d+) status:", line)
        if m:
            flush()
            ca, cur = m.group(1), {"port": m.group(2)}
            continue
        m = re.match(r"^Port (\d+):$", line)
        if m and ca is not None:
            flush()
            cur = {"port": m.group(1)}
            continue
        if cur is None or ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "state":
            cur["state"] = value.strip()
        elif key in ("physical state", "phys state"):
            cur["phys"] = value.strip()
        elif key == "rate":
            cur["rate"] = value.strip()
        elif key in ("link layer", "link_layer"):
            cur["layer"] = value.strip()
    flush()
    return ports


def ib_from_sysfs(entries: dict[str, dict[str, str]]) -> list[IbPort]:
    """The probe's /sys/class/infiniband/<dev>/ports/<n>/{state,phys_state,rate,link_layer} readings."""
    out = []
    for key, v in sorted(entries.items()):
        dev, _, port = key.partition("/")
        out.append(
            IbPort(
                dev,
                int(port or 0),
                _norm_state(v.get("state", "")),
                _norm_state(v.get("phys_state", "")),
                _rate(v.get("rate", "")),
                v.get("link_layer", ""),
            )
        )
    return out


# ---- host -----------------------------------------------------------------------------------------------


def parse_loadavg(text: str | None) -> float | None:
    try:
        return float((text or "").split()[0])
    except (IndexError, ValueError):
        return None


def mounts_from_probe(disks: dict[str, dict]) -> list[Mount]:
    return [
        Mount(
            path,
            d.get("fstype", ""),
            int(d.get("size") or 0),
            int(d.get("free") or 0),
            int(d.get("inodes") or 0),
            int(d.get("inodes_free") or 0),
            int(d["used"]) if d.get("used") is not None else None,
        )
        for path, d in sorted(disks.items())
    ]


def _unescape(path: str) -> str:
    """mountinfo/mounts escape space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text: str) -> list[tuple[str, str, str]]:
    """/proc/<pid>/mountinfo -> (mount point, fstype, source) per line, in order.

    Fields: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS.
    """
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        out.append((_unescape(fields[4]), tail[0], _unescape(tail[1]) if len(tail) > 1 else ""))
    return out


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)i?B?\s*$", re.I)


def human_bytes(text: str) -> int | None:
    """findmnt/df -h sizes: '1.7T' -> bytes (powers of 1024, as those tools print)."""
    m = _SIZE.match(text or "")
    if not m:
        return None
    return int(float(m.group(1)) * 1024 ** "BKMGTPE".index((m.group(2) or "B").upper()))


def parse_findmnt_json(text: str) -> list[Mount]:
    """`findmnt --json -o SOURCE,FSTYPE,SIZE,USED,AVAIL,USE%,TARGET` (also --df), nested children included."""
    import json

    out: list[Mount] = []

    def walk(items: list[dict]) -> None:
        for fs in items:
            size, avail = human_bytes(str(fs.get("size", ""))), human_bytes(str(fs.get("avail", "")))
            pct = re.match(r"\s*(\d+(?:\.\d+)?)%", str(fs.get("use%", "")))
            if fs.get("target") and size is not None and avail is not None:
                used = human_bytes(str(fs.get("used", "")))
                reported = float(pct.group(1)) if pct else None
                out.append(Mount(fs["target"], fs.get("fstype", ""), size, avail, 0, 0, used, reported))
            walk(fs.get("children") or [])

    walk(json.loads(text).get("filesystems") or [])
    return out


def count_defunct(stats: list[str]) -> int:
    """Zombies among /proc/<pid>/stat lines: the state field after the `(comm)` is Z."""
    n = 0
    for line in stats:
        close = line.rfind(")")
        if close > 0 and line[close + 2 : close + 3] == "Z":
            n += 1
    return n


def parse_chrony_tracking(text: str | None) -> float | None:
    """`chronyc tracking`: 'System time : 0.000012 seconds fast of NTP time' -> +1.2e-05 (slow: negative)."""
    m = re.search(r"System time\s*:\s*([0-9.]+) seconds (fast|slow)", text or "")
    if not m:
        return None
    return float(m.group(1)) * (1 if m.group(2) == "fast" else -1)


def parse_timedatectl(text: str | None) -> bool | None:
    """`timedatectl show`: NTPSynchronized=yes|no (no offset is given, only whether it is synced)."""
    m = re.search(r"NTPSynchronized=(yes|no)", text or "")
    return None if not m else m.group(1) == "yes"
