"""Drawing the status view: rack panels (elevation + GPU heat) on a TTY, a plain table otherwise."""

from __future__ import annotations

from dccli.status.view import HostRow, StatusView

_VERDICT = {"OK": "green", "WARN": "yellow", "CRIT": "bold red", "UNKNOWN": "magenta"}


def _heat(temp: float | None) -> str:
    if temp is None:
        return "grey50"
    if temp >= 85:
        return "red"
    if temp >= 70:
        return "dark_orange"
    if temp >= 55:
        return "yellow"
    return "green"


def _num(v: float | None, unit: str) -> str:
    return "-" if v is None else f"{v:.0f}{unit}"


def _gpus(row: HostRow) -> str:
    if row.gpus is None:
        return "-" if not row.gpus_expected else f"?/{row.gpus_expected}"
    return f"{row.gpus}/{row.gpus_expected}" if row.gpus_expected else str(row.gpus)


def elevation(view: StatusView):
    """One panel per rack, hosts top to bottom like a rack elevation: a block per GPU coloured by heat."""
    from rich.columns import Columns
    from rich.panel import Panel
    from rich.text import Text

    panels = []
    for rack, rows in view.racks:
        body = Text()
        for i, r in enumerate(rows):
            if i:
                body.append("\n")
            body.append(f"{r.host:<10}", style="bold" if r.reachable == "up" else "strike dim")
            if r.reachable != "up":
                body.append(f" {r.reachable.upper():<9}", style="bold magenta")
            else:
                slots = max(r.gpus_expected, r.gpus or 0)
                present = r.gpus or 0
                body.append(" ")
                for g in range(min(slots, 8)):
                    body.append("■" if g < present else "□", style=_heat(r.temp_c) if g < present else "red")
                body.append(" " * (9 - min(slots, 8)))
            body.append(f"{_num(r.temp_c, 'C'):>4} {_num(r.util_pct, '%'):>4} ")
            body.append(f"{r.health:<4}", style=_VERDICT.get(r.health, ""))
        counts = {v: sum(1 for r in rows if r.health == v) for v in _VERDICT}
        title = f"{rack} " + " ".join(f"{n}{v[0]}" for v, n in counts.items() if n)
        panels.append(Panel(body, title=title, expand=False))
    return Columns(panels)


def table(view: StatusView, *, color: bool = True):
    from rich.table import Table
    from rich.text import Text

    t = Table(box=None, header_style="bold" if color else "", pad_edge=False)
    base = ("rack", "host", "reach", "gpus", "util", "temp", "health", "failing")
    for col in base + view.column_names:
        t.add_column(col, overflow="fold", no_wrap=col in ("rack", "host"))
    for rack, rows in view.racks:
        for r in rows:
            t.add_row(
                rack,
                r.host,
                r.reachable,
                _gpus(r),
                _num(r.util_pct, "%"),
                _num(r.temp_c, "C"),
                Text(r.health, style=_VERDICT.get(r.health, "") if color else ""),
                ",".join(r.failing) or "-",
                *[r.columns.get(c, "-") for c in view.column_names],
            )
    return t
