"""dccli run CMD: a parallel command on the selected hosts."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)


@handle_errors
def run(
    command: list[str] = typer.Argument(..., help="The command, run by each host's login shell."),
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    command_timeout: float | None = typer.Option(None, "-t", "--command-timeout", min=0.1,
                                                 help="Seconds a command may run on a host."),
    gather: bool = typer.Option(False, "-b", "--gather", help="Fold identical outputs under one node set."),
    json_out: bool = JsonOpt,
) -> None:
    """Run a shell command on every selected host, in parallel; output as `host: line`."""
    import time

    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, remember, select_hosts
    from dccli.command import as_results, run_command
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.hostlines import LiveLines, summary
    from dccli.output.hostlines import gather as gather_lines

    env = Env.from_process()
    text = " ".join(command)
    if not text.strip():
        from dccli.errors import UsageError

        raise UsageError("empty command")
    inv = load_inventory(inventory)
    hosts = select_hosts(inv, limit)
    started = time.time()
    live = not (gather or json_out)
    with make_pool(inv, timeout) as pool:
        group = run_command(hosts, text, pool, forks=forks, command_timeout=command_timeout,
                            on_event=LiveLines(env) if live else None, stream=live)
    results = as_results(group)
    if json_out:
        env.out(jsonout.document(results=[r.to_dict() for r in results]))
    elif gather:
        for line in gather_lines(results, color=env.color_stdout):
            env.out(line)
        for r in results:
            if r.stderr:
                for line in r.stderr.rstrip("\n").split("\n"):
                    env.err(f"{r.host}: {line}")
    code = group.exit_code()
    if code != 0 or env.stderr_isatty:
        for line in summary(group):
            env.err(line)
    remember(inv, "run", text, started, group)
    raise typer.Exit(int(code))
