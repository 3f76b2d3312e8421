"""dccli status: racks -> hosts: reachability, GPUs (count, utilisation, temperature, health), runs, backups, keys."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("status")(status)


@handle_errors
def status(
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The cluster at a glance: a light live probe per host, the latest health verdicts, runs, backups, key age."""
    import time
    from contextlib import closing

    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, select_hosts
    from dccli.errors import ExitCode
    from dccli.health import history
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.state import db
    from dccli.status import render
    from dccli.status.probe import probe
    from dccli.status.view import build, capability_columns

    env = Env.from_process()
    inv = load_inventory(inventory)
    hosts = select_hosts(inv, limit)
    with make_pool(inv, timeout) as pool:
        group = probe(hosts, pool, forks=forks)
    with closing(db.connect()) as conn:
        stored = history.latest(conn, inv.cluster)
        columns, names, warnings = capability_columns(conn, inv)
    view = build(inv, hosts, group, stored, columns, names, warnings, now=time.time())
    for w in warnings:
        env.warn(w)
    if json_out:
        env.out(jsonout.document(status=view.to_dict()))
    elif env.stdout_isatty:
        console = env.stdout_console()
        console.print(render.elevation(view))
        console.print(render.table(view, color=env.color_stdout))
    else:
        env.stdout_console().print(render.table(view, color=False))
    down = [h.host for h in view.hosts() if h.reachable != "up"]
    if down:
        env.err(f"status: {len(down)} of {len(view.hosts())} hosts not reachable: {', '.join(down)}")
    code = group.exit_code()
    raise typer.Exit(int(code) if code != ExitCode.FAILED else 0)
