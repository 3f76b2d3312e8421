"""Host checks (disk, inodes, memory, load, clock, services, InfiniBand, zombies, reboot) and the
cluster-wide checks (driver/CUDA consistency). Pure functions from facts to CheckResults."""

from __future__ import annotations

from collections import Counter

from dccli.health.model import CRIT, OK, WARN, CheckResult, HostFacts, SmiReport, worst
from dccli.health.thresholds import DCGM, Limits


def _level(value: float, warn: float | None, crit: float | None) -> str:
    if crit is not None and value >= crit:
        return CRIT
    if warn is not None and value >= warn:
        return WARN
    return OK


def host_checks(f: HostFacts, lim: Limits) -> list[CheckResult]:
    h = f.host
    out: list[CheckResult] = []
    if f.mounts:
        for check, attr, warn, crit, what in (
            ("host.disk", "used_pct", "disk_warn_pct", "disk_crit_pct", "space"),
            ("host.inodes", "inodes_used_pct", "inodes_warn_pct", "inodes_crit_pct", "inodes"),
        ):
            rows = [
                (m.path, getattr(m, attr)) for m in f.mounts if (m.inodes if what == "inodes" else m.size)
            ]
            if not rows:  # e.g. a findmnt capture: sizes but no inode counts
                continue
            bad = [(_level(v, lim[warn], lim[crit]), f"{p} {v:.0f}%") for p, v in rows]
            bad = [b for b in bad if b[0] != OK]
            top = max(rows, key=lambda r: r[1]) if rows else ("-", 0.0)
            out.append(
                CheckResult(
                    h,
                    check,
                    worst(v for v, _ in bad),
                    "; ".join(t for _, t in bad) or f"max {top[0]} {top[1]:.0f}%",
                    f">= {lim[warn]}% WARN, >= {lim[crit]}% CRIT",
                    f"free {what} on the mount (old checkpoints, logs, core files)" if bad else "",
                    lim.source(warn),
                    "" if not bad else bad[0][1].split(" ")[0],
                )
            )
    if f.mem_total and f.mem_available is not None:
        pct = 100.0 * f.mem_available / f.mem_total
        verdict = (
            CRIT
            if pct < lim["mem_available_crit_pct"]
            else WARN
            if pct < lim["mem_available_warn_pct"]
            else OK
        )
        out.append(
            CheckResult(
                h,
                "host.memory",
                verdict,
                f"{pct:.0f}% available",
                f"< {lim['mem_available_warn_pct']}% WARN, < {lim['mem_available_crit_pct']}% CRIT",
                "find the memory hog; check for leaks in data loaders" if verdict != OK else "",
                lim.source("mem_available_warn_pct"),
            )
        )
    if f.load1 is not None and f.cpus:
        per = f.load1 / f.cpus
        verdict = WARN if per >= lim["load_per_cpu_warn"] else OK
        out.append(
            CheckResult(
                h,
                "host.load",
                verdict,
                f"load {f.load1:.2f} on {f.cpus} CPUs",
                f">= {lim['load_per_cpu_warn']} per CPU WARN",
                "look for runaway processes (top)" if verdict != OK else "",
                lim.source("load_per_cpu_warn"),
            )
        )
    if f.clock_offset_s is not None:
        verdict = WARN if abs(f.clock_offset_s) >= lim["clock_offset_warn_s"] else OK
        out.append(
            CheckResult(
                h,
                "host.clock_offset",
                verdict,
                f"{f.clock_offset_s:+.6f} s (chrony)",
                f">= {lim['clock_offset_warn_s']} s WARN",
                "check chronyd and its NTP sources" if verdict != OK else "",
                lim.source("clock_offset_warn_s"),
            )
        )
    elif f.ntp_synchronized is not None:  # no chrony: systemd-timesyncd says only whether it is synced
        out.append(
            CheckResult(
                h,
                "host.clock_offset",
                OK if f.ntp_synchronized else WARN,
                "NTP synchronized" if f.ntp_synchronized else "NTP NOT synchronized (timedatectl)",
                "NTPSynchronized=yes",
                "" if f.ntp_synchronized else "check systemd-timesyncd/chrony",
                lim.source("clock_offset_warn_s"),
            )
        )
    if f.clock_skew_s is not None:
        skew = abs(f.clock_skew_s)
        verdict = _level(skew, lim["clock_skew_warn_s"], lim["clock_skew_crit_s"])
        out.append(
            CheckResult(
                h,
                "host.clock_skew",
                verdict,
                f"{f.clock_skew_s:+.3f} s vs control node",
                f">= {lim['clock_skew_warn_s']} s WARN, >= {lim['clock_skew_crit_s']} s CRIT",
                "fix time sync (chrony/NTP) on the host" if verdict != OK else "",
                lim.source("clock_skew_warn_s"),
            )
        )
    for name, active in sorted(f.services.items()):
        out.append(
            CheckResult(
                h,
                "host.service",
                OK if active else CRIT,
                f"{name} {'active' if active else 'NOT active'}",
                "active (inventory health.required_services)",
                "" if active else f"start {name} (systemctl start {name}) and read its logs",
                lim.source("required_services"),
                name,
            )
        )
    out += _ib(f, lim)
    if f.defunct is not None:
        verdict = WARN if f.defunct >= lim["defunct_warn"] else OK
        out.append(
            CheckResult(
                h,
                "host.defunct",
                verdict,
                f"{f.defunct} defunct",
                f">= {lim['defunct_warn']} WARN",
                "find the parent that does not reap (ps -eo ppid,stat | grep Z)" if verdict != OK else "",
                lim.source("defunct_warn"),
            )
        )
    if f.reboot_required is not None:
        out.append(
            CheckResult(
                h,
                "host.reboot_required",
                WARN if f.reboot_required else OK,
                "reboot required" if f.reboot_required else "no",
                "/var/run/reboot-required absent",
                "drain and reboot in the next maintenance window" if f.reboot_required else "",
                "Debian/Ubuntu update-notifier convention",
            )
        )
    return out


def _ib(f: HostFacts, lim: Limits) -> list[CheckResult]:
    expected = lim["ib_rate_gbps"]
    if f.ib_ports is None or (not f.ib_ports and expected is None):
        return []
    if not f.ib_ports:
        return [
            CheckResult(
                f.host,
                "host.infiniband",
                CRIT,
                "no InfiniBand ports",
                f"ports Active at {expected} Gb/s",
                "check the HCA and the driver (ibstat)",
                lim.source("ib_rate_gbps"),
            )
        ]
    bad = []
    for p in f.ib_ports:
        name = f"{p.device}/{p.port}"
        ib_layer = p.link_layer.lower() != "ethernet"
        if p.state != "Active":
            bad.append((CRIT if ib_layer else WARN, f"{name} {p.state}"))
        elif ib_layer and expected is not None and (p.rate_gbps or 0) < expected:
            bad.append((WARN, f"{name} {p.rate_gbps:g} Gb/s"))
    rate = f" at {expected} Gb/s" if expected is not None else ""
    return [
        CheckResult(
            f.host,
            "host.infiniband",
            worst(v for v, _ in bad),
            "; ".join(t for _, t in bad) or f"{len(f.ib_ports)} ports Active",
            f"InfiniBand ports Active{rate} (RoCE ports down: WARN)",
            "check cable, switch port and subnet manager (ibstat, iblinkinfo)" if bad else "",
            lim.source("ib_rate_gbps"),
        )
    ]


def consistency_checks(reports: dict[str, SmiReport | None]) -> list[CheckResult]:
    """Driver and CUDA versions must agree across the cluster: hosts off the majority are WARN."""
    out: list[CheckResult] = []
    for check, attr in (("gpu.driver_version", "driver_version"), ("gpu.cuda_version", "cuda_version")):
        seen = {h: getattr(r, attr) for h, r in reports.items() if r is not None and getattr(r, attr)}
        if not seen:
            continue
        counts = Counter(seen.values())
        majority, _ = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        for host, version in seen.items():
            odd = version != majority
            out.append(
                CheckResult(
                    host,
                    check,
                    WARN if odd else OK,
                    version,
                    f"== {majority} (the cluster's majority, {counts[majority]} of {len(seen)} hosts)",
                    f"align the host with the cluster ({majority})" if odd else "",
                    DCGM + " (NCCL needs matching drivers); cluster-wide",
                )
            )
    return out
