"""The status view's pure parts: capability columns (present, absent, broken) and rows from a health report."""

from __future__ import annotations

import types

from dccli.executor import GroupOutcome, HostOutcome
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


def test_rows_per_rack_from_the_live_probe_and_stored_health() -> None:
    from dccli.status.probe import parse

    live_a = parse("a", "#smi\n0, 10, 40\n1, 30, 60\n#rc 0\n#load\n0.50 0.4 0.3 1/100 42\n")
    live_c = parse("c", "#load\n1.00 1 1 1/1 1\n")
    group = GroupOutcome(
        (
            HostOutcome("a", "ok", live_a),
            HostOutcome("b", "unreachable", error="refused"),
            HostOutcome("c", "ok", live_c),
        )
    )
    stored = {"a": {"worst": "WARN", "checked_at": 1000.0, "failing": ["gpu.persistence"]}}
    view = build(INV, list(INV.hosts), group, stored, {"a": {"runs": "r1"}}, ["runs"], now=1120.0)
    assert [(r, [h.host for h in rows]) for r, rows in view.racks] == [
        ("r1", ["a", "b"]),
        ("(no rack)", ["c"]),
    ]
    a, b = view.racks[0][1]
    assert (a.gpus, a.util_pct, a.temp_c, a.health, a.failing) == (
        2,
        20.0,
        60.0,
        "WARN",
        ("gpu.persistence",),
    )
    assert a.columns == {"health checked": "2m ago", "runs": "r1"}
    assert (b.reachable, b.gpus, b.health, b.failing) == ("unreachable", None, "UNKNOWN", ("host.reachable",))
    c = view.racks[1][1][0]
    assert (c.gpus, c.health, c.columns["health checked"]) == (None, "OK", "never")
    assert view.column_names == ("health checked", "runs")


def test_live_probe_sees_missing_gpus_and_driver_errors() -> None:
    from dccli.status.probe import parse

    lost = parse(
        "b",
        "#smi\nUnable to determine the device handle for GPU 0000:18:00.0: GPU is lost.\n#rc 15\n"
        "#load\n1 1 1 1/1 1\n",
    )
    assert (lost.smi, lost.smi_rc, lost.gpus) == (True, 15, ()) and "GPU is lost" in (lost.smi_error or "")
    group = GroupOutcome((HostOutcome("a", "ok", lost),))
    (row,) = build(INV, [INV.host("a")], group, {}, {}, []).racks[0][1]
    assert (row.gpus, row.health, row.failing) == (0, "CRIT", ("gpu.count",))
    na = parse("a", "#smi\n0, [N/A], 41\n#rc 0\n#load\n0.1 0 0 1/1 1\n")
    assert na.gpus[0].util_pct is None and na.gpus[0].temp_c == 41.0 and na.load1 == 0.1


def test_elevation_and_table_render() -> None:
    from rich.console import Console

    from dccli.status import render
    from dccli.status.probe import parse

    hot = parse("a", "#smi\n0, 90, 88\n#rc 0\n#load\n0.5 0 0 1/1 1\n")
    group = GroupOutcome((HostOutcome("a", "ok", hot), HostOutcome("b", "unreachable", error="refused")))
    view = build(INV, [INV.host("a"), INV.host("b")], group, {}, {}, [])
    console = Console(record=True, width=120, color_system=None)
    console.print(render.elevation(view))
    console.print(render.table(view, color=False))
    text = console.export_text()
    assert "r1 1C 1U" in text  # panel title: verdict counts
    assert "■□" in text  # one GPU of the two expected is present
    assert "UNREACHABLE" in text and "88C" in text and "90%" in text
    assert "gpu.count" in text and "1/2" in text
