"""Renderings of health results: table per rack, JSON, Prometheus textfile (atomic), Nagios line."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from dccli.health.model import NAGIOS_CODE, OK, UNKNOWN, CheckResult, worst

_STYLE = {"OK": "green", "WARN": "yellow", "CRIT": "bold red", "UNKNOWN": "magenta"}
VERDICT_VALUE = {"OK": 0, "WARN": 1, "CRIT": 2, "UNKNOWN": 3}  # Nagios numbering, also the metric value


def tables(
    results: Sequence[CheckResult], racks: Sequence[tuple[str, Sequence[str]]], *, all_checks: bool = False
):
    """One rich Table per rack: each host's verdict, then one row per failing check (value, threshold, action)."""
    from rich.table import Table
    from rich.text import Text

    by_host: dict[str, list[CheckResult]] = {}
    for r in results:
        by_host.setdefault(r.host, []).append(r)
    out = []
    for rack, members in racks:
        hosts = [h for h in members if h in by_host]
        if not hosts:
            continue
        counts = {v: sum(1 for h in hosts if worst(r.verdict for r in by_host[h]) == v) for v in _STYLE}
        title = f"{rack}: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
        for col in ("host", "verdict", "check", "value", "threshold", "action"):
            table.add_column(col, overflow="fold", no_wrap=col in ("host", "verdict", "check"))
        for host in hosts:
            rows = by_host[host]
            v = worst(r.verdict for r in rows)
            shown = [r for r in rows if all_checks or r.verdict != OK]
            if not shown:
                table.add_row(host, Text(v, style=_STYLE[v]), f"{len(rows)} checks", "", "", "")
                continue
            for i, r in enumerate(shown):
                check = r.check + (f"[{r.subject}]" if r.subject else "")
                table.add_row(
                    host if i == 0 else "",
                    Text(v, style=_STYLE[v]) if i == 0 else "",
                    Text(check, style=_STYLE[r.verdict]),
                    r.value,
                    r.threshold,
                    r.action,
                )
        out.append(table)
    return out


def json_payload(results: Sequence[CheckResult], hosts) -> dict:
    return {
        "hosts": [{"host": h.host, "status": h.status, "verdict": h.worst} for h in hosts],
        "results": [r.to_dict() for r in results],
        "worst": worst(h.worst for h in hosts),
    }


# ---- Prometheus textfile ---------------------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus(results: Sequence[CheckResult], hosts, cluster: str, now: float) -> str:
    """node_exporter textfile-collector format; every series labelled with cluster and host."""
    lines = [
        "# HELP dccli_health_check Verdict of one dccli health check: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.",
        "# TYPE dccli_health_check gauge",
    ]
    for r in results:
        lines.append(
            f'dccli_health_check{{cluster="{_label(cluster)}",host="{_label(r.host)}",'
            f'check="{_label(r.check)}",subject="{_label(r.subject)}"}} {VERDICT_VALUE[r.verdict]}'
        )
    lines += [
        "# HELP dccli_health_host Worst verdict per host: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.",
        "# TYPE dccli_health_host gauge",
    ]
    for h in hosts:
        lines.append(
            f'dccli_health_host{{cluster="{_label(cluster)}",host="{_label(h.host)}"}} '
            f"{VERDICT_VALUE[h.worst]}"
        )
    lines += [
        "# HELP dccli_health_last_run_timestamp_seconds When dccli health last ran.",
        "# TYPE dccli_health_last_run_timestamp_seconds gauge",
        f'dccli_health_last_run_timestamp_seconds{{cluster="{_label(cluster)}"}} {now:.3f}',
    ]
    return "\n".join(lines) + "\n"


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def write_textfile(directory: Path, name: str, text: str) -> Path:
    """Write atomically (temp file in the same directory, fsync, rename): node_exporter never reads half a file.

    The temp name does not end in .prom, so the collector ignores it while it is being written.
    """
    if not _SAFE_NAME.match(name):
        raise ValueError(f"bad textfile name {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


# ---- Nagios ----------------------------------------------------------------------------------------------


def nagios(results: Iterable[CheckResult], hosts) -> tuple[str, int]:
    """One status line (Nagios plugin convention) and the exit code 0/1/2/3."""
    results = list(results)
    hosts = list(hosts)
    v = worst(h.worst for h in hosts) if hosts else UNKNOWN
    bad = [r for r in results if r.verdict != OK]
    counts = {k: sum(1 for h in hosts if h.worst == k) for k in ("CRIT", "WARN", "UNKNOWN")}
    label = {"OK": "OK", "WARN": "WARNING", "CRIT": "CRITICAL", "UNKNOWN": "UNKNOWN"}[v]
    if not bad:
        text = f"DCCLI HEALTH {label} - {len(hosts)} hosts OK"
    else:
        first = sorted(bad, key=lambda r: -VERDICT_VALUE[r.verdict] if r.verdict != UNKNOWN else -1.5)[:3]
        detail = "; ".join(f"{r.host} {r.check} {r.verdict}: {r.value}" for r in first)
        more = f" (+{len(bad) - len(first)} more)" if len(bad) > len(first) else ""
        text = (
            f"DCCLI HEALTH {label} - {counts['CRIT']} CRIT, {counts['WARN']} WARN, {counts['UNKNOWN']} UNKNOWN "
            f"of {len(hosts)} hosts: {detail}{more}"
        )
    perf = " ".join(f"{k.lower()}={n}" for k, n in counts.items())
    return f"{text.replace('|', '/')} | {perf} hosts={len(hosts)}", NAGIOS_CODE[v]
