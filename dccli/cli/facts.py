"""dccli facts: OS, kernel, CPU, memory, disks, GPUs, driver, CUDA, InfiniBand per host."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("facts")(facts)


@handle_errors
def facts(
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Gather facts from every selected host (one remote session each) and store them."""
    import time
    from contextlib import closing

    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, remember, select_hosts
    from dccli.facts.gather import gather, store
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.facts import facts_table
    from dccli.output.hostlines import summary
    from dccli.state import db

    env = Env.from_process()
    inv = load_inventory(inventory)
    hosts = select_hosts(inv, limit)
    started = time.time()
    with make_pool(inv, timeout) as pool:
        group = gather(hosts, pool, forks=forks)
    got = [o.value for o in group.outcomes if o.value is not None]
    with closing(db.connect()) as conn:
        store(conn, inv.cluster, got)
    remember(inv, "facts", "facts", started, group)
    if json_out:
        env.out(jsonout.document(
            facts=[f.to_dict() for f in got],
            errors=[{"host": o.host, "status": o.status, "error": o.error} for o in group.outcomes if not o.ok],
        ))
    else:
        env.stdout_console().print(facts_table(got))
    code = group.exit_code()
    if code != 0:
        for line in summary(group):
            env.err(line)
    raise typer.Exit(int(code))
