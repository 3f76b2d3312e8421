"""dccli health [--format table|json|prometheus|nagios] [--since 24h];  dccli health analyze FILE..."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors

health_app = typer.Typer(
    help="Health checks: GPUs (Xid, ECC, remap, thermals...) and hosts, in one session per host.",
    invoke_without_command=True,
)

FORMATS = ("table", "json", "prometheus", "nagios")


def register(app: typer.Typer) -> None:
    app.add_typer(health_app, name="health")


@health_app.callback(invoke_without_command=True)
@handle_errors
def health(
    ctx: typer.Context,
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
    fmt: str = typer.Option("table", "--format", help="table | json | prometheus | nagios."),
    textfile_dir: Path | None = typer.Option(
        None,
        "--textfile-dir",
        help="prometheus: write dccli_health_<cluster>.prom here atomically "
        "(node_exporter's textfile collector).",
    ),
    since: str | None = typer.Option(
        None, "--since", help="Also show what changed since then: 30m, 24h, 7d."
    ),
    all_checks: bool = typer.Option(False, "--all", help="table: list passing checks too."),
) -> None:
    """Run every health check on the selected hosts and store the results."""
    if ctx.invoked_subcommand is not None:
        return
    import time
    from contextlib import closing

    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, remember, select_hosts
    from dccli.errors import ExitCode, UsageError
    from dccli.health import history
    from dccli.health.run import run_health
    from dccli.health.verdicts import NAGIOS_CODE, OK
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.hostlines import summary
    from dccli.state import db

    if json_out:
        fmt = "json"
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if textfile_dir is not None:
        if fmt == "table":
            fmt = "prometheus"  # the only format a textfile collector reads
        elif fmt != "prometheus":
            raise UsageError(f"--textfile-dir goes with --format prometheus, not {fmt}")
    window = None
    if since is not None:
        try:
            window = history.parse_duration(since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
    env = Env.from_process()
    inv = load_inventory(inventory)
    hosts = select_hosts(inv, limit)
    started = time.time()
    with closing(db.connect()) as conn:
        cursors = history.xid_cursors(conn, inv.cluster)
    with make_pool(inv, timeout) as pool:
        report = run_health(inv, hosts, pool, forks=forks, cursors=cursors)
    from dccli.health import formats  # after the probes: nothing in it is needed to reach the hosts

    with closing(db.connect()) as conn:
        run_id = history.store(
            conn, inv.cluster, started, list(report.hosts), list(report.results), report.worst()
        )
        changes = history.changes(conn, inv.cluster, run_id, window) if window is not None else None
    remember(inv, "health", "health", started, report.group)

    if fmt == "nagios":
        line, code = formats.nagios(report.results, report.hosts)
        env.out(line)
        raise typer.Exit(code)
    if fmt == "prometheus":
        text = formats.prometheus(report.results, report.hosts, inv.cluster, time.time())
        if textfile_dir is not None:
            path = formats.write_textfile(textfile_dir, f"dccli_health_{inv.cluster}.prom", text)
            env.err(f"wrote {path}")
        else:
            env.out(text.rstrip("\n"))
    elif fmt == "json":
        payload = formats.json_payload(report.results, report.hosts)
        if changes is not None:
            payload["since"] = since
            payload["changes"] = [c.to_dict() for c in changes]
        env.out(jsonout.document(**payload))
    else:
        console = env.stdout_console()
        if changes is not None:
            _print_changes(env, changes, since or "")
        else:
            racks = [(r.name, r.hosts) for r in inv.racks]
            racked = {h for _, members in racks for h in members}
            loose = [h.name for h in hosts if h.name not in racked]
            if loose:
                racks.append(("(no rack)", tuple(loose)))
            for table in formats.tables(report.results, racks, all_checks=all_checks):
                console.print(table)
                console.print()
        counts = {v: sum(1 for h in report.hosts if h.worst == v) for v in NAGIOS_CODE}
        env.err(
            f"health: {len(report.hosts)} hosts: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        )
    fate = report.group.exit_code() if report.group is not None else ExitCode.OK
    if fate not in (ExitCode.OK, ExitCode.FAILED):
        for line in summary(report.group):
            env.err(line)
        raise typer.Exit(int(fate))
    raise typer.Exit(0 if report.worst() == OK else int(ExitCode.FAILED))


def kind_is(analysis, kind: str) -> bool:
    return analysis.kind == kind


def _print_changes(env, changes, since: str) -> None:
    from rich.table import Table

    if not changes:
        env.out(f"no change in the last {since}")
        return
    table = Table(title=f"changed in the last {since}", title_justify="left", box=None, header_style="bold")
    for col in ("host", "check", "was", "now", "value"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(
            c.host,
            c.check + (f"[{c.subject}]" if c.subject else ""),
            c.was or "-",
            c.now or "(gone)",
            c.value,
        )
    env.stdout_console().print(table)


@health_app.command("analyze")
@handle_errors
def analyze(
    files: list[Path] = typer.Argument(
        ...,
        help="Captured outputs: nvidia-smi -q -x / -q / --query-gpu CSV, "
        "dmesg / journalctl -k / kmsg, ibstat / ibstatus, nvlink -s.",
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Check captured outputs offline: facts and findings per file."""
    from dccli.errors import InputError
    from dccli.health.analyze import AnalyzeError, analyze_file
    from dccli.health.model import OK, worst
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    done = []
    for path in files:  # all files are read before anything is printed: bad input prints nothing
        try:
            done.append(analyze_file(path))
        except AnalyzeError as exc:
            raise InputError(str(exc), path=str(path)) from None
    if json_out:
        env.out(jsonout.document(files=[a.to_dict() for a in done]))
    else:
        for a in done:
            f = a.facts
            if "gpu_count" in f:
                head = (
                    f"{f['gpu_count']} GPUs ({', '.join(f['models']) or 'model not shown'}), "
                    f"driver {f['driver_version'] or '-'}, CUDA {f['cuda_version'] or '-'}"
                )
            elif "xid_codes" in f:
                head = f"{f['lines']} lines, {f['xid_events']} Xid events, codes {f['xid_codes'] or 'none'}"
            elif kind_is(a, "findmnt-json"):
                head = f"{len(f['mounts'])} filesystems: " + ", ".join(
                    f"{m['target']} {m['used_pct']:.0f}%" for m in f["mounts"][:6]
                )
            elif kind_is(a, "mountinfo"):
                head = f"{f['mounts']} mounts ({', '.join(f['fstypes'][:8])})"
            elif "states" in f:
                head = f"{len(f['ports'])} ports: " + ", ".join(f"{n} {s}" for s, n in f["states"].items())
            else:
                head = f"{f.get('links', 0)} NVLinks, {f.get('down', 0)} down"
            v = worst(r.verdict for r in a.results)
            env.out(f"{a.path}: {a.kind}: {head}: {v}")
            for r in a.results:
                if r.verdict != OK:
                    env.out(
                        f"  {r.verdict:<4} {r.check}: {r.value} (threshold: {r.threshold}; action: {r.action})"
                    )
    bad = any(r.verdict != OK for a in done for r in a.results)
    raise typer.Exit(1 if bad else 0)
