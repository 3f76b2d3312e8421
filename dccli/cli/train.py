"""dccli train launch|logs|ls|show|stop|resume: multi-node torchrun runs (docs/train.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, TimeoutOpt, handle_errors

app = typer.Typer(
    help="Multi-node training runs: torchrun on every node, live logs, clean stops.", no_args_is_help=True
)

EnvOpt = typer.Option(None, "--env", "-e", help="NAME=VALUE for every rank (repeatable); kept out of argv.")
DetachOpt = typer.Option(False, "--detach", "-d", help="Return once the run started; do not follow its logs.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="train")


@app.command("launch", context_settings={"allow_interspersed_args": False})
@handle_errors
def launch_cmd(
    script: str = typer.Argument(..., help="Training script (path on the nodes; relative to --workdir)."),
    args: list[str] = typer.Argument(None, help="Arguments for the script."),
    nodes: str = typer.Option(..., "--nodes", "-n", help="Node-set pattern: node[01-04], @trainers."),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", min=1, max=1024, help="Processes per node."),
    name: str | None = typer.Option(None, "--name", help="A name to refer to the run by."),
    env: list[str] = EnvOpt,
    workdir: str | None = typer.Option(
        None, "--workdir", help="Working directory on the nodes (default: home, or --sync DIR)."
    ),
    python: str = typer.Option(
        "python3", "--python", help="Interpreter on the nodes (torchrun = PYTHON -m torch.distributed.run)."
    ),
    max_restarts: int = typer.Option(
        0,
        "--max-restarts",
        min=0,
        max=100,
        help="When a worker fails, restart the whole run (every node, a new attempt) up to N times.",
    ),
    sync: Path | None = typer.Option(
        None, "--sync", help="Push this directory (changed files only) to every node first."
    ),
    detach: bool = DetachOpt,
    inventory: Path | None = InventoryOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Launch SCRIPT with torchrun on every selected node (c10d rendezvous on the first)."""
    from dccli.cli.common import inventory_path, load_inventory
    from dccli.cli.targets import make_pool
    from dccli.errors import UsageError
    from dccli.train import launch, plan
    from dccli.train.model import RunSpec

    plan.check_name(name)
    cli_env = plan.parse_env_args(env or [])
    if sync is not None and not sync.is_dir():
        raise UsageError(f"--sync {sync}: not a directory")
    inv = load_inventory(inventory)
    try:
        hosts = inv.select(nodes)
    except UsageError as exc:  # the selection's messages speak of --limit; here the option is --nodes
        raise UsageError(str(exc).replace("--limit", "--nodes", 1)) from None
    if not hosts:
        raise UsageError(f"--nodes {nodes!r}: no host matches")
    inv_path = inventory_path(inventory)
    spec = RunSpec(
        script,
        tuple(args or ()),
        tuple(h.name for h in hosts),
        nproc_per_node,
        python,
        workdir or (str(sync.resolve()) if sync else None),
        (),
        max_restarts,
        str(sync.resolve()) if sync else None,
        str(Path(inv_path).resolve()) if inv_path else None,
    )
    env_out = _env()
    with make_pool(inv, timeout) as pool:
        run = launch.launch(
            inv, hosts, spec, name=name, cli_env=cli_env, pool=pool, forks=forks, progress=env_out.err
        )
        env_out.err(
            f"run {run.id} RUNNING; logs: dccli train logs {run.id} -f; stop: dccli train stop {run.id}"
        )
        if detach:
            _print_run(env_out, run, json_out, short=True)
            return
        _follow_to_end(env_out, run, pool, inv)


@app.command("resume")
@handle_errors
def resume_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    env: list[str] = EnvOpt,
    detach: bool = DetachOpt,
    inventory: Path | None = InventoryOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """A new attempt of a finished run (DCCLI_RESTART_COUNT exported); earlier attempts' logs are kept."""
    from dccli.cli.targets import make_pool
    from dccli.train import launch, plan, store

    cli_env = plan.parse_env_args(env or [])
    with store.opened() as db:
        run = store.resolve(db, run_ref)
    inv = _inventory_for(run, inventory)
    out = _env()
    with make_pool(inv, timeout) as pool:
        run = launch.resume(inv, run, cli_env, pool, forks=forks, progress=out.err)
        if detach:
            _print_run(out, run, json_out, short=True)
            return
        _follow_to_end(out, run, pool, inv)


@app.command("logs")
@handle_errors
def logs_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Follow until the run ends; exit with its result."
    ),
    host: str | None = typer.Option(None, "--host", help="Only these nodes (node-set pattern)."),
    rank: str | None = typer.Option(None, "--rank", help="Only these global ranks: 0,2-3."),
    grep: str | None = typer.Option(None, "--grep", help="Only lines matching this regular expression."),
    tail: int | None = typer.Option(None, "--tail", min=0, help="Start with the last N lines of each node."),
    attempt: int | None = typer.Option(
        None, "--attempt", min=0, help="Attempt number (default: the latest)."
    ),
    inventory: Path | None = InventoryOpt,
    timeout: float | None = TimeoutOpt,
) -> None:
    """Merged logs of a run, `host/rank: line`; -f follows live and survives dropped connections."""
    import re

    from dccli.cli.targets import make_pool
    from dccli.errors import UsageError
    from dccli.output.train import LogPrinter
    from dccli.train import follow as fl
    from dccli.train import plan, store

    try:
        pattern = re.compile(grep) if grep is not None else None
    except re.error as exc:
        raise UsageError(f"--grep {grep!r}: {exc}") from None
    with store.opened() as db:
        run = store.resolve(db, run_ref)
    inv = _inventory_for(run, inventory)
    hosts = None
    if host is not None:
        hosts = frozenset(h.name for h in inv.select(host)) & frozenset(run.spec.hosts)
        if not hosts:
            raise UsageError(f"--host {host!r}: none of the run's nodes ({', '.join(run.spec.hosts)})")
    flt = fl.LogFilter(hosts, plan.parse_ranks(rank), pattern)
    if follow:
        from dccli.train.launch import ensure_watcher

        ensure_watcher(run)  # the follow ends on the watcher's verdict: make sure there is one
    out = _env()
    printer = LogPrinter(out)
    with make_pool(inv, timeout) as pool:
        try:
            for line in fl.follow(
                run, pool, inv, attempt=attempt, live=follow, flt=flt, tail=tail, warn=out.warn, note=out.err
            ):
                printer(line)
        finally:
            out.stdout.flush()
    if follow:
        _finish(out, run.id)


@app.command("ls")
@handle_errors
def ls_cmd(
    all_clusters: bool = typer.Option(
        False, "--all", "-a", help="Runs of every cluster, not only this inventory's."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many runs, newest first."),
    inventory: Path | None = InventoryOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Training runs, newest first."""
    from dccli.cli.common import load_inventory
    from dccli.output import jsonout
    from dccli.output.train import columns, run_table
    from dccli.train import store

    cluster = None if all_clusters else load_inventory(inventory).cluster
    with store.opened() as db:
        runs = store.listing(db, cluster, limit)
    out = _env()
    if json_out:
        out.out(jsonout.document(runs=[r.to_dict() for r in runs]))
        return
    for line in columns(run_table(runs)):
        out.out(line)


@app.command("show")
@handle_errors
def show_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    json_out: bool = JsonOpt,
) -> None:
    """One run: state, per-node exit code and signal, first failure, duration, env keys, log locations."""
    from dccli.train import store
    from dccli.train.launch import ensure_watcher

    with store.opened() as db:
        run = store.resolve(db, run_ref)
    if ensure_watcher(run):
        _env().warn(f"run {run.id}: its watcher was gone; a new one watches the nodes now")
    _print_run(_env(), run, json_out)


@app.command("stop")
@handle_errors
def stop_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    grace: float = typer.Option(10.0, "--grace", min=0, help="Seconds between SIGTERM and SIGKILL."),
    inventory: Path | None = InventoryOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """SIGTERM every node's processes, SIGKILL after --grace, then verify none of the run is left."""
    from dccli.cli.targets import make_pool
    from dccli.errors import ExitCode
    from dccli.output import jsonout
    from dccli.train import store
    from dccli.train.stop import stop_run

    with store.opened() as db:
        run = store.resolve(db, run_ref)
    if run.latest is None:
        from dccli.errors import UsageError

        raise UsageError(f"run {run.id} never started on any node")
    inv = _inventory_for(run, inventory)
    out = _env()
    with make_pool(inv, timeout) as pool:
        group = stop_run(inv, run, pool, grace=grace, forks=forks)
    with store.opened() as db:
        run = store.get(db, run.id)
    if json_out:
        out.out(
            jsonout.document(
                run=run.to_dict(),
                nodes=[
                    o.value.to_dict() if o.value else {"host": o.host, "error": o.error}
                    for o in group.outcomes
                ],
            )
        )
    for o in group.outcomes:
        if o.value is None:
            out.err(f"{o.host}: {o.status}: {o.error} (processes of the run may remain there)")
        elif o.value.leftovers:
            for p in o.value.leftovers:
                out.err(f"{o.host}: still running: pid {p.get('pid')} {p.get('cmdline', '')}")
    left = sum(len(o.value.leftovers) for o in group.outcomes if o.value)
    if not group.not_ok:
        out.err(
            f"run {run.id}: {run.state}; no process of the run left on {len(group.outcomes)} hosts "
            f"({group.wall_s:.1f}s)"
        )
    else:
        out.err(
            f"run {run.id}: {run.state}; {left} processes left, {len(group.not_ok)} hosts not verified clean"
        )
    code = group.exit_code()
    raise typer.Exit(int(code if code != ExitCode.OK else 0))


# ------------------------------------------------------------------------------------ helpers
def _env():
    from dccli.output.console import Env

    return Env.from_process()


def _inventory_for(run, explicit: Path | None):
    """The run's own inventory file if it still exists (its hosts), else the usual lookup."""
    from dccli.cli.common import load_inventory

    if explicit is None and run.spec.inventory and Path(run.spec.inventory).is_file():
        explicit = Path(run.spec.inventory)
    return load_inventory(explicit)


def _print_run(out, run, json_out: bool, short: bool = False) -> None:
    from dccli.output import jsonout
    from dccli.output.train import run_details

    if json_out:
        out.out(jsonout.document(run=run.to_dict()))
    elif short:
        out.out(run.id)
    else:
        for line in run_details(run):
            out.out(line)


def _follow_to_end(out, run, pool, inv) -> None:
    from dccli.output.train import LogPrinter
    from dccli.train import follow as fl

    printer = LogPrinter(out)
    try:
        for line in fl.follow(run, pool, inv, live=True, warn=out.warn, note=out.err):
            printer(line)
    except KeyboardInterrupt:
        out.stdout.flush()
        out.err(f"dccli: stopped following; run {run.id} goes on (dccli train stop {run.id})")
        raise typer.Exit(130) from None
    out.stdout.flush()
    _finish(out, run.id)


def _finish(out, run_id: str) -> None:
    """The run's summary on stderr, and its result as the exit status."""
    from dccli.output.train import summary_line
    from dccli.train import store

    with store.opened() as db:
        run = store.get(db, run_id)
    a = run.latest
    if a is not None and a.warning:
        out.warn(a.warning)
    out.err(summary_line(run))
    raise typer.Exit(run.exit_code if run.exit_code is not None else 0)
