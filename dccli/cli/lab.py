"""dccli lab up|down|status|inventory: a simulated cluster of real sshd hosts on this machine (root)."""

from __future__ import annotations

import typer

from dccli.cli.common import JsonOpt, handle_errors

lab_app = typer.Typer(
    help="A simulated cluster on this machine: namespaced hosts with real sshd on 127.<lab>.0.<n> (needs root).",
    no_args_is_help=True,
)

NameOpt = typer.Option("default", "--name", help="Lab name; several labs can run side by side.")


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")


@lab_app.command("up")
@handle_errors
def up_cmd(
    hosts: int = typer.Option(8, "--hosts", min=1, max=1024, help="Number of hosts (racks of 8)."),
    name: str = NameOpt,
    port: int = typer.Option(22, "--port", min=1, max=65535, help="sshd port on every host address."),
    json_out: bool = JsonOpt,
) -> None:
    """Start a lab and write its inventory; prints the inventory path once every sshd answers."""
    import time

    from dccli.lab.manager import lab_up
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    started = time.monotonic()
    info = lab_up(name, hosts, port=port, progress=env.err)
    first, last = info.hosts[0], info.hosts[-1]
    env.err(
        f"lab {info.name}: {len(info.hosts)} hosts up in {time.monotonic() - started:.1f}s "
        f"({first.name} {first.address} .. {last.name} {last.address}, port {first.port})"
    )
    env.out(jsonout.document(**info.to_dict()) if json_out else str(info.inventory_path))


@lab_app.command("down")
@handle_errors
def down_cmd(name: str = NameOpt) -> None:
    """Stop every host of the lab and remove all it created (processes, mounts, files). Idempotent."""
    from dccli.lab.manager import lab_down
    from dccli.lab.registry import lab_dir
    from dccli.output.console import Env

    env = Env.from_process()
    existed = lab_dir(name).exists()
    lab_down(name)
    env.err(f"lab {name}: down" if existed else f"lab {name}: not up (nothing to do)")


@lab_app.command("status")
@handle_errors
def status_cmd(name: str = NameOpt, json_out: bool = JsonOpt) -> None:
    """Each host: init process alive and sshd answering. Exit 3 if any host is down."""
    from dccli.errors import ExitCode
    from dccli.lab.manager import lab_status
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    status = lab_status(name)
    if json_out:
        env.out(jsonout.document(**status.to_dict()))
    else:
        lab = status.lab
        env.out(f"lab {lab.name}  index {lab.index}  {status.up_count}/{len(status.hosts)} up  ({lab.state})")
        width = max((len(h.name) for h in status.hosts), default=4)
        for h in status.hosts:
            state = (
                "up" if h.up else ("down (sshd not answering)" if h.init_alive else "down (host not running)")
            )
            env.out(f"{h.name:<{width}}  {h.address + ':' + str(h.port):<21}  {state}")
    if status.up_count != len(status.hosts):
        raise typer.Exit(int(ExitCode.UNREACHABLE))


@lab_app.command("inventory")
@handle_errors
def inventory_cmd(name: str = NameOpt) -> None:
    """Print the path of the inventory the lab wrote (use with -i, or export DCCLI_INVENTORY)."""
    from dccli.errors import LabError
    from dccli.lab.registry import load
    from dccli.output.console import Env

    info = load(name)
    if not info.inventory_path.is_file():
        raise LabError(f"lab {name!r} is {info.state}: no inventory yet")
    Env.from_process().out(str(info.inventory_path))
