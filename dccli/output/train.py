"""Rendering of training runs: live log lines (host/rank prefix, a colour per host), the run table, one run."""

from __future__ import annotations

import time
from typing import Any

from dccli.output.console import Env
from dccli.output.hostlines import host_color


class LogPrinter:
    """`node01/3: text` per line; torchrun's own lines as `node01: text`. Colour per host on a TTY."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.count = 0

    def __call__(self, line) -> None:
        label = line.host if line.rank is None else f"{line.host}/{line.rank}"
        if self.env.color_stdout:
            label = f"\x1b[{host_color(line.host)}m{label}\x1b[0m"
        self.env.stdout.write(f"{label}: {line.text}\n")
        self.count += 1
        if self.count % 256 == 0 or not self.env.stdout_isatty:
            self.env.stdout.flush()


def _when(ts: float | None) -> str:
    return "-" if not ts else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return (
        f"{s // 3600}h{s % 3600 // 60:02d}m"
        if s >= 3600
        else f"{s // 60}m{s % 60:02d}s"
        if s >= 60
        else f"{seconds:.1f}s"
    )


def run_table(runs) -> list[list[str]]:
    rows = [["RUN", "NAME", "STATE", "NODES", "PROCS", "ATTEMPTS", "CREATED", "DURATION", "COMMAND"]]
    for r in runs:
        rows.append(
            [
                r.id,
                r.name or "-",
                r.state,
                str(len(r.spec.hosts)),
                str(r.spec.world_size),
                str(len(r.attempts)),
                _when(r.created_at),
                _dur(r.duration_s),
                r.spec.command,
            ]
        )
    return rows


def columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def run_details(r) -> list[str]:
    a = r.latest
    lines = [
        f"run:        {r.id}" + (f" ({r.name})" if r.name else ""),
        f"state:      {r.state}",
        f"cluster:    {r.cluster}",
        f"command:    {r.spec.command}",
        f"nodes:      {len(r.spec.hosts)} x {r.spec.nproc_per_node} processes (python {r.spec.python})",
        f"env keys:   {', '.join(r.spec.env_keys) or '-'}",
        f"created:    {_when(r.created_at)}",
        f"duration:   {_dur(r.duration_s)}",
    ]
    if a is None:
        return lines
    lines += [f"attempt:    {a.number} of {len(r.attempts)}  rendezvous {a.rdzv_id} at {a.rdzv_endpoint}"]
    if r.spec.max_restarts or r.restarts:
        lines.append(f"restarts:   {r.restarts} of {r.spec.max_restarts} (--max-restarts)")
    if a.failure:
        lines.append(f"failed:     {a.failure.host} at {_when(a.failure.at)}: {a.failure.reason}")
    if a.warning:
        lines.append(f"warning:    {a.warning}")
    rows = [["NODE", "RANK", "STATE", "EXIT", "SIGNAL", "RANKS DONE", "LEFTOVERS", "LOGS"]]
    for n in a.nodes:
        rows.append(
            [
                n.host,
                str(n.node_rank),
                n.state,
                "-" if n.exit_code is None else str(n.exit_code),
                "-" if n.signal is None else str(n.signal),
                str(len(n.ranks_done)),
                str(len(n.leftovers)),
                f"{n.dir}/node.log",
            ]
        )
    out = [*lines, "", *columns(rows)]
    if len(r.attempts) > 1:
        out += ["", *columns(attempt_table(r.attempts))]
    return out


def attempt_table(attempts) -> list[list[str]]:
    """Every attempt of a run: why it started (launch, restart, resume), how it ended, and on what."""
    rows = [["ATTEMPT", "STARTED BY", "STATE", "STARTED", "DURATION", "FAILURE"]]
    for a in attempts:
        rows.append(
            [
                str(a.number),
                a.trigger,
                a.state,
                _when(a.started_at),
                _dur(a.ended_at - a.started_at if a.ended_at else None),
                f"{a.failure.host}: {a.failure.reason}" if a.failure else "-",
            ]
        )
    return rows


def summary_line(r: Any) -> str:
    a = r.latest
    text = f"run {r.id}: {r.state}"
    if a is not None and a.failure:
        text += f" (first failure: {a.failure.host}: {a.failure.reason})"
    if r.duration_s is not None:
        text += f" after {_dur(r.duration_s)}"
    if r.restarts:
        text += f" ({r.restarts} restart{'s' if r.restarts != 1 else ''} of {r.spec.max_restarts})"
    return text
