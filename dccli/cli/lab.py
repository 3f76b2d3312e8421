"""dccli lab up|down|status|inventory: a simulated cluster of real sshd hosts on this machine (root)."""

from __future__ import annotations

import typer

from dccli.cli.common import JsonOpt, handle_errors

lab_app = typer.Typer(
    help="A simulated cluster on this machine: namespaced hosts with real sshd on 127.<lab>.0.<n> (needs root).",
    no_args_is_help=True,
)

NameOpt = typer.Option("default", "--name", help="Lab name; several labs can run side by side.")
# Commands on a running lab: without --name, the "default" lab if it is up, else the only lab that is up.
RunningNameOpt = typer.Option(
    None, "--name", help='Lab name (default: the "default" lab if up, else the only lab that is up).'
)


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")


@lab_app.command("up")
@handle_errors
def up_cmd(
    hosts: int = typer.Option(8, "--hosts", min=1, max=1024, help="Number of hosts (racks of 8)."),
    name: str = NameOpt,
    port: int = typer.Option(22, "--port", min=1, max=65535, help="sshd port on every host address."),
    gpus: int = typer.Option(
        0, "--gpus", min=0, max=16, help="SIMULATED GPUs per host (nvidia-smi, Xid logs); 0: none."
    ),
    gpu_model: str = typer.Option(
        "H100-SXM5-80GB", "--gpu-model", help="Simulated GPU model: H100-SXM5-80GB, A100-SXM4-80GB or H200."
    ),
    share: list[str] = typer.Option(
        [], "--share", help="Bind this control-node directory read-only into every host at the same path "
        "(a checkout or venv the hosts' overlay of / does not show, e.g. under /tmp). Repeatable."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Start a lab and write its inventory; prints the inventory path once every sshd answers."""
    import time

    from dccli.lab.manager import lab_up
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    started = time.monotonic()
    info = lab_up(name, hosts, port=port, progress=env.err, gpus=gpus, gpu_model=gpu_model, shares=tuple(share))
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
def status_cmd(name: str | None = RunningNameOpt, json_out: bool = JsonOpt) -> None:
    """Each host: init process alive and sshd answering. Exit 3 if any host is down."""
    from dccli.errors import ExitCode
    from dccli.lab.manager import lab_status
    from dccli.lab.registry import resolve_name
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    status = lab_status(resolve_name(name))
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
def inventory_cmd(name: str | None = RunningNameOpt) -> None:
    """Print the path of the inventory the lab wrote (use with -i, or export DCCLI_INVENTORY)."""
    from dccli.errors import LabError
    from dccli.lab.registry import load, resolve_name
    from dccli.output.console import Env

    name = resolve_name(name)
    info = load(name)
    if not info.inventory_path.is_file():
        raise LabError(f"lab {name!r} is {info.state}: no inventory yet")
    Env.from_process().out(str(info.inventory_path))


@lab_app.command("fault")
@handle_errors
def fault_cmd(
    host: str = typer.Argument(..., help="Lab host, e.g. node03."),
    gpu: int | None = typer.Option(
        None, "--gpu", min=0, help="GPU index for GPU faults (default 0); with --clear, only that GPU."
    ),
    xid: int | None = typer.Option(
        None, "--xid", min=1, help="Log an Xid CODE for the GPU (79 also takes it off the bus)."
    ),
    ecc_dbe: int | None = typer.Option(
        None, "--ecc-dbe", min=1, help="Add N double-bit ECC errors (volatile + aggregate)."
    ),
    row_remap_pending: bool = typer.Option(
        False, "--row-remap-pending", help="A row remap pending (needs a reset)."
    ),
    retired_pages: int | None = typer.Option(
        None, "--retired-pages", min=1, help="Retire N pages (pending until reboot)."
    ),
    temp: int | None = typer.Option(
        None, "--temp", min=0, max=130, help="Set the GPU temperature (C); throttles when hot."
    ),
    fell_off_bus: bool = typer.Option(False, "--fell-off-bus", help="The GPU falls off the bus (Xid 79)."),
    disk_full: str | None = typer.Option(None, "--disk-full", help="Make PATH a 16 MiB tmpfs and fill it."),
    sshd_stop: bool = typer.Option(False, "--sshd-stop", help="Stop the host's sshd."),
    freeze: bool = typer.Option(False, "--freeze", help="SIGSTOP every process of the host."),
    clear: bool = typer.Option(False, "--clear", help="Remove every fault of the host (or of --gpu N)."),
    name: str | None = RunningNameOpt,
) -> None:
    """Inject one SIMULATED fault into a running lab host (docs/lab.md lists what each one does)."""
    from dccli.errors import UsageError
    from dccli.lab.faults import Fault, inject
    from dccli.lab.registry import load, resolve_name
    from dccli.output.console import Env

    chosen = [
        Fault(kind, gpu, value)
        for kind, value, given in (
            ("xid", xid, xid is not None),
            ("ecc_dbe", ecc_dbe, ecc_dbe is not None),
            ("row_remap_pending", None, row_remap_pending),
            ("retired_pages", retired_pages, retired_pages is not None),
            ("temp", temp, temp is not None),
            ("fell_off_bus", None, fell_off_bus),
            ("disk_full", disk_full, disk_full is not None),
            ("sshd_stop", None, sshd_stop),
            ("freeze", None, freeze),
            ("clear", None, clear),
        )
        if given
    ]
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one of --xid, --ecc-dbe, --row-remap-pending, --retired-pages, --temp, "
            "--fell-off-bus, --disk-full, --sshd-stop, --freeze, --clear"
        )
    if gpu is not None and chosen[0].kind in ("disk_full", "sshd_stop", "freeze"):
        raise UsageError(f"--gpu does not apply to --{chosen[0].kind.replace('_', '-')}")
    name = resolve_name(name)
    Env.from_process().err(f"lab {name}: " + inject(load(name), host, chosen[0]) + " (simulated)")


@lab_app.command("reboot")
@handle_errors
def reboot_cmd(
    host: str = typer.Argument(..., help="Lab host, e.g. node03."), name: str | None = RunningNameOpt
) -> None:
    """Restart a lab host's namespaces with its disk kept; waits for its sshd (faults: see docs/lab.md)."""
    from dccli.lab.reboot import reboot
    from dccli.lab.registry import resolve_name
    from dccli.output.console import Env

    env = Env.from_process()
    name = resolve_name(name)
    reboot(name, host, progress=lambda line: env.err(f"lab {name}: {line}"))
