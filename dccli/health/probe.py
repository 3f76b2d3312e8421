"""The health probe: run probe.sh on a host (ONE session; dccli/health/shprobe.py) and the pure step from
its raw answer to HostFacts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dccli.health.model import HostFacts


@dataclass(frozen=True)
class Raw:
    """A host's raw answer plus the control node's clock bracket around the probe's clock line."""

    host: str
    data: dict[str, Any]
    clock: float | None  # the host's clock when the probe started
    sent: float  # control node time before the session started
    received: float  # control node time when the clock line arrived
    clock_resolution: float = 0.0  # 1.0 where the host's date gives whole seconds (busybox)


def collect(
    conn, services: list[str], *, gpu: bool = True, nvlink: bool = False, timeout: float = 120
) -> Raw:
    """Run the probe (probe.sh) on one host in one session."""
    from dccli.errors import DccliError
    from dccli.health import shprobe

    command, nonce = shprobe.command(list(services), gpu=gpu, nvlink=nvlink)
    tag = shprobe.clock_line(nonce)
    seen = bytearray()
    received: list[float] = []

    def on_stdout(chunk: bytes) -> None:
        if not received:  # the clock line's arrival closes the skew bracket
            seen.extend(chunk)
            start = seen.find(tag)
            if start >= 0 and seen.find(b"\n", start) >= 0:
                received.append(time.time())

    sent = time.time()
    outcome = conn.exec(command, on_stdout=on_stdout, timeout=timeout)
    if outcome.timed_out:
        raise DccliError(f"{conn.name}: health probe timed out after {timeout:g}s")
    try:
        clock, resolution, sections = shprobe.split(outcome.stdout, nonce)
    except shprobe.ProbeError as exc:
        err = outcome.stderr.decode("utf-8", "replace").strip().splitlines()
        how = f"exit {outcome.exit_code}" if outcome.exit_code is not None else "no exit status"
        raise DccliError(
            f"{conn.name}: health probe failed: {exc} ({how}" + (f": {err[-1][:300]})" if err else ")")
        ) from None
    data = shprobe.to_raw(clock, sections, list(services))
    return Raw(conn.name, data, clock, sent, received[0] if received else time.time(), resolution)


def skew(raw: Raw) -> tuple[float | None, float]:
    """(host clock - control midpoint, uncertainty): the answer was produced between sent and received."""
    if raw.clock is None:
        return None, 0.0
    mid = (raw.sent + raw.received) / 2
    half = raw.clock_resolution / 2  # a floored whole second: the time lies within [clock, clock + 1)
    return raw.clock + half - mid, (raw.received - raw.sent) / 2 + half


def facts_from_raw(raw: Raw) -> HostFacts:
    # Imported here, not at the top: the first probe to finish pays for them while the other hosts still
    # answer, instead of dccli paying before it connects to anyone.
    from dccli.facts.parse import parse_meminfo
    from dccli.health import parse_logs, parse_smi
    from dccli.health.model import HostFacts, NvLink

    d = raw.data
    smi = smi_error = None
    res = d.get("smi")
    if res is not None:
        if res.get("rc") == 0:
            try:
                smi = parse_smi.parse_xml(
                    parse_smi.strip_elements(res.get("stdout") or "", parse_smi.XML_UNREAD)
                )
            except parse_smi.SmiParseError as exc:
                smi_error = f"nvidia-smi -q -x unreadable: {exc}"
        else:
            err = (res.get("stderr") or res.get("stdout") or "").strip().splitlines()
            smi_error = f"nvidia-smi rc {res.get('rc')}: {err[-1] if err else 'no output'}"
    btime = d.get("stat_btime")
    klog = d.get("kernel_log") or {}
    xids = tuple(parse_logs.parse_xids(klog.get("stdout") or "", btime)) if klog.get("rc") == 0 else ()
    foreign = tuple(int(pid) for pid, run_id in (d.get("run_ids") or {}).items() if not run_id)
    nvl = d.get("nvlink")
    nvlinks = None
    if nvl is not None and nvl.get("rc") == 0:
        nvlinks = tuple(
            NvLink(g, ln, up, sp) for g, ln, up, sp in parse_smi.parse_nvlink_status(nvl.get("stdout", ""))
        )
    meminfo = parse_meminfo(d.get("meminfo"))
    ib = None
    if d.get("infiniband"):
        ib = tuple(parse_logs.ib_from_sysfs(d["infiniband"]))
    elif d.get("ibstat") and d["ibstat"].get("rc") == 0:
        ib = tuple(parse_logs.parse_ibstat(d["ibstat"]["stdout"]))
    offset = None
    if d.get("chrony") and d["chrony"].get("rc") == 0:
        offset = parse_logs.parse_chrony_tracking(d["chrony"]["stdout"])
    synced = None
    if d.get("timedatectl") and d["timedatectl"].get("rc") == 0:
        synced = parse_logs.parse_timedatectl(d["timedatectl"]["stdout"])
    measured, uncertainty = skew(raw)
    effective = None
    if measured is not None:
        # Only what lies beyond the measurement's own uncertainty counts as skew.
        effective = (
            0.0 if abs(measured) <= uncertainty else measured - uncertainty * (1 if measured > 0 else -1)
        )
    return HostFacts(
        host=raw.host,
        smi=smi,
        smi_error=smi_error,
        xids=xids,
        ib_ports=ib,
        mounts=tuple(parse_logs.mounts_from_probe(d.get("mounts") or {})),
        mem_total=meminfo.get("MemTotal"),
        mem_available=meminfo.get("MemAvailable"),
        load1=parse_logs.parse_loadavg(d.get("loadavg")),
        cpus=d.get("cpus"),
        clock_offset_s=offset,
        clock_skew_s=effective,
        ntp_synchronized=synced,
        services=dict(d.get("services") or {}),
        defunct=d.get("defunct"),
        reboot_required=d.get("reboot_required"),
        foreign_pids=foreign,
        nvlinks=nvlinks,
        host_time=d.get("time"),
        boot_id=d.get("boot_id") or None,
    )
