"""The status view's pure parts: capability columns (present, absent, broken) and rows from a health report."""

from __future__ import annotations

import types

from dccli.executor import GroupOutcome, HostOutcome
from dccli.health.model import CheckResult, Gpu, HostFacts, SmiReport
from dccli.health.run import HealthReport
from dccli.inventory.loader import loads
from dccli.status.view import build, capability_columns

INV = loads("""
cluster: c
racks:
  r1:
    hosts:
      a: {address: 10.0.0.1, gpus: 2}
      b: {address: 10.0.0.2, gpus: 2}
hosts:
  c: {address: 10.0.0.3}
""")


def test_capability_columns_skip_absent_and_report_broken() -> None:
    def importer(name: str):
        if name == "dccli.train.status":
            return types.SimpleNamespace(status_columns=lambda conn, inv: {"a": {"runs": "r1 (2 nodes)"}})
        if name == "dccli.backup.status":
            raise ModuleNotFoundError(name=name)
        return types.SimpleNamespace(status_columns=lambda conn, inv: 1 / 0)

    cols, names, warnings = capability_columns(None, INV, importer=importer)
    assert cols == {"a": {"runs": "r1 (2 nodes)"}} and names == ["runs"]
    assert warnings == ["keys status failed: ZeroDivisionError: division by zero"]


def test_rows_per_rack_from_a_report() -> None:
    gpus = (
        Gpu(0, "H100", temperature_c=40.0, utilization_pct=10.0),
        Gpu(1, "H100", temperature_c=60.0, utilization_pct=30.0),
    )
    facts = {"a": HostFacts("a", smi=SmiReport("xml", "1", "2", 2, gpus)), "c": HostFacts("c")}
    results = (
        CheckResult("a", "gpu.ecc", "CRIT", "x"),
        CheckResult("c", "host.disk", "OK", "y"),
        CheckResult("b", "host.reachable", "UNKNOWN", "refused"),
    )
    group = GroupOutcome(
        (HostOutcome("a", "ok"), HostOutcome("b", "unreachable", error="refused"), HostOutcome("c", "ok"))
    )
    view = build(
        INV, list(INV.hosts), HealthReport(results, (), facts, group), {"a": {"runs": "r1"}}, ["runs"]
    )
    assert [(r, [h.host for h in rows]) for r, rows in view.racks] == [
        ("r1", ["a", "b"]),
        ("(no rack)", ["c"]),
    ]
    a, b = view.racks[0][1]
    assert (a.gpus, a.util_pct, a.temp_c, a.health, a.failing, a.columns) == (
        2,
        20.0,
        60.0,
        "CRIT",
        ("gpu.ecc",),
        {"runs": "r1"},
    )
    assert (b.reachable, b.gpus, b.health) == ("unreachable", None, "UNKNOWN")
    assert view.to_dict()["racks"][1]["hosts"][0]["health"] == "OK"
