"""`dccli status`: the cluster at a glance: a light live probe per host (dccli/status/probe.py), each host's
latest `dccli health` verdict from the state DB, and the capability columns.

Capabilities add columns through `dccli/<capability>/status.py: status_columns(conn, inventory) ->
{host: {column: text}}` (conn: the state DB).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from dccli.health.verdicts import CRIT, OK, UNKNOWN, worst

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
    health: str  # worst of the latest `dccli health` verdict and what the live probe saw
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


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def build(
    inventory,
    hosts: list,
    group,
    stored: dict[str, dict[str, Any]],
    columns: dict[str, dict[str, str]],
    column_names: list[str],
    warnings: list[str] = (),
    now: float = 0.0,
) -> StatusView:  # type: ignore[assignment]
    """Pure: rows per rack from the live probe (GroupOutcome[LiveHost]), each host's latest stored health
    result ({worst, checked_at, failing}) and the capability columns. The live probe can only make the
    stored verdict worse: unreachable is UNKNOWN, fewer GPUs than the inventory says (or nvidia-smi failing)
    is CRIT."""
    outcomes = {o.host: o for o in group.outcomes}
    rows: dict[str, HostRow] = {}
    for host in hosts:
        o = outcomes.get(host.name)
        live = o.value if o is not None and o.ok else None
        reach = "up" if live is not None else (o.status if o is not None else "unknown")
        gpus = util = temp = None
        verdicts, failing = [], set()
        if live is not None and (live.smi or host.gpus):
            gpus = len(live.gpus)
            utils = [g.util_pct for g in live.gpus if g.util_pct is not None]
            temps = [g.temp_c for g in live.gpus if g.temp_c is not None]
            util = sum(utils) / len(utils) if utils else None
            temp = max(temps) if temps else None
            if gpus < host.gpus:
                verdicts.append(CRIT)
                failing.add("gpu.count")
        if live is None:
            verdicts.append(UNKNOWN)
            failing.add("host.reachable")
        past = stored.get(host.name)
        if past is not None:
            verdicts.append(past["worst"])
            failing.update(past.get("failing", ()))
        checked = _age(now - past["checked_at"]) if past is not None else "never"
        verdict = worst(verdicts) if verdicts else OK
        cols = {"health checked": checked, **columns.get(host.name, {})}
        rows[host.name] = HostRow(
            host.name,
            host.rack or "(no rack)",
            reach,
            gpus,
            host.gpus,
            util,
            temp,
            verdict,
            tuple(sorted(failing)),
            cols,
        )
    racks: list[tuple[str, tuple[HostRow, ...]]] = []
    for rack in inventory.racks:
        members = tuple(rows[h] for h in rack.hosts if h in rows)
        if members:
            racks.append((rack.name, members))
    loose = tuple(r for r in rows.values() if r.rack == "(no rack)")
    if loose:
        racks.append(("(no rack)", loose))
    return StatusView(inventory.cluster, tuple(racks), ("health checked", *column_names), tuple(warnings))
