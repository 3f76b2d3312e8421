"""dccli hosts trust: record host keys after showing their fingerprints."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors

hosts_app = typer.Typer(help="Host keys and trust.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hosts_app, name="hosts")


@hosts_app.command("trust")
@handle_errors
def trust_cmd(
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    replace: bool = typer.Option(False, "--replace", help="Replace a CHANGED key (after checking the host was reinstalled)."),
    json_out: bool = JsonOpt,
) -> None:
    """Connect to each host, show its key fingerprint as OpenSSH prints it, and record it in dccli's known_hosts."""
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, select_hosts
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.hostlines import summary
    from dccli.transport.trust import trust

    env = Env.from_process()
    inv = load_inventory(inventory)
    hosts = [h for h in select_hosts(inv, limit) if h.connection != "local"]
    with make_pool(inv, timeout) as pool:
        group = trust(hosts, pool, forks=forks, replace=replace)
    got = [o.value for o in group.outcomes if o.value is not None]
    if json_out:
        env.out(jsonout.document(hosts=[r.to_dict() for r in got],
                                 errors=[{"host": o.host, "status": o.status, "error": o.error}
                                         for o in group.outcomes if not o.ok]))
    else:
        width = max((len(r.host) for r in got), default=0)
        for r in got:
            env.out(f"{r.host:<{width}}  {r.key_type:<20} {r.fingerprint}  {r.action}")
    code = group.exit_code()
    if code != 0:
        for line in summary(group):
            env.err(line)
    raise typer.Exit(int(code))
