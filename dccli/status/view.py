"""`dccli status`: the cluster at a glance, built from one health probe per host plus capability columns.

The probe is the health probe (one remote session per host); nothing is written to the health history,
so `dccli status` never moves the Xid cursor of `dccli health`. Capabilities add columns through
`dccli/<capability>/status.py: status_columns(conn, inventory) -> {host: {column: text}}` (conn: the state DB).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from dccli.health.model import OK, UNKNOWN, worst

CAPABILITIES = ("train", "backup", "keys")  # optional: a missing module is skipped


@dataclass(frozen=True)
class HostRow:
    host: str
    rack: str
    reachable: str  # up | unreachable | auth | failed
    gpus: int | None  # present (None: unknown)
    gpus_expected: int
    util_pct: float | None  # mean over GPUs
    temp_c: float | None  # hottest GPU
    health: str  # worst verdict of the live probe
    failing: tuple[str, ...] = ()  # failing checks
    columns: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatusView:
    cluster: str
    racks: tuple[tuple[str, tuple[HostRow, ...]], ...]
    column_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "columns": list(self.column_names),
            "warnings": list(self.warnings),
            "racks": [{"rack": r, "hosts": [h.to_dict() for h in rows]} for r, rows in self.racks],
        }

    def hosts(self) -> list[HostRow]:
        return [h for _, rows in self.racks for h in rows]


def capability_columns(
    conn,
    inventory,
    names: tuple[str, ...] = CAPABILITIES,
    importer: Callable[[str], Any] = importlib.import_module,
) -> tuple[dict[str, dict[str, str]], list[str], list[str]]:
    """({host: {column: text}}, column names in order, warnings). A capability that is absent is skipped;
    one that fails is reported as a warning and its columns left out: status must still answer."""
    merged: dict[str, dict[str, str]] = {}
    order: list[str] = []
    warnings: list[str] = []
    for cap in names:
        try:
            module = importer(f"dccli.{cap}.status")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"dccli.{cap}"):
                continue
            warnings.append(f"{cap} status unavailable: {exc}")
            continue
        fn = getattr(module, "status_columns", None)
        if fn is None:
            continue
        try:
            cols = fn(conn, inventory) or {}
        except Exception as exc:  # a broken capability must not take the whole view down
            warnings.append(f"{cap} status failed: {type(exc).__name__}: {exc}")
            continue
        for host, values in cols.items():
            for col, text in values.items():
                if col not in order:
                    order.append(col)
                merged.setdefault(host, {})[col] = str(text)
    return merged, order, warnings


def build(
    inventory,
    hosts: list,
    report,
    columns: dict[str, dict[str, str]],
    column_names: list[str],
    warnings: list[str] = (),
) -> StatusView:  # type: ignore[assignment]
    """Pure: rows per rack from the health report (facts + verdicts) and the capability columns."""
    outcomes = {o.host: o for o in report.group.outcomes} if report.group is not None else {}
    rows: dict[str, HostRow] = {}
    for host in hosts:
        facts = report.facts.get(host.name)
        mine = report.for_host(host.name)
        o = outcomes.get(host.name)
        reach = "up" if o is None or o.ok else o.status
        gpus = util = temp = None
        if facts is not None and facts.smi is not None:
            g = facts.smi.gpus
            gpus = len(g)
            utils = [x.utilization_pct for x in g if x.utilization_pct is not None]
            temps = [x.temperature_c for x in g if x.temperature_c is not None]
            util = sum(utils) / len(utils) if utils else None
            temp = max(temps) if temps else None
        elif facts is not None and host.gpus:
            gpus = 0
        verdict = worst(r.verdict for r in mine) if mine else UNKNOWN
        failing = tuple(sorted({r.check for r in mine if r.verdict != OK}))
        rows[host.name] = HostRow(
            host.name,
            host.rack or "(no rack)",
            reach,
            gpus,
            host.gpus,
            util,
            temp,
            verdict,
            failing,
            dict(columns.get(host.name, {})),
        )
    racks: list[tuple[str, tuple[HostRow, ...]]] = []
    for rack in inventory.racks:
        members = tuple(rows[h] for h in rack.hosts if h in rows)
        if members:
            racks.append((rack.name, members))
    loose = tuple(r for r in rows.values() if r.rack == "(no rack)")
    if loose:
        racks.append(("(no rack)", loose))
    return StatusView(inventory.cluster, tuple(racks), tuple(column_names), tuple(warnings))
