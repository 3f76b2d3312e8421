"""dccli backup run|ls|restore|verify|prune|schedule (docs/backup.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors

backup_app = typer.Typer(
    help="Backups with restic: run, list, restore, verify, prune, schedule.", no_args_is_help=True
)
ProfileOpt = typer.Option(None, "--profile", "-p", help="Backup profile (default: every profile).")


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")


def _config(inv):
    from dccli.backup.profile import config_of

    return config_of(inv)


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


@backup_app.command("run")
@handle_errors
def run_cmd(
    profile: list[str] | None = ProfileOpt,
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int | None = typer.Option(
        None,
        "-f",
        "--forks",
        min=1,
        max=4096,
        help="Hosts backed up at once (default: backup.concurrency, 8).",
    ),
    timeout: float | None = TimeoutOpt,
    scheduled: bool = typer.Option(False, "--scheduled", help="As cron runs it: plain lines, no prompts."),
    ping: str | None = typer.Option(None, "--ping", help="Dead-man URL: pinged on start, success, /fail."),
    install: bool = typer.Option(
        True, "--install-restic/--no-install-restic", help="apt-get install restic on hosts that lack it."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Back up the profiles' hosts in parallel; one restic run per host; results in the state DB."""
    import gc
    import time

    # Where a run's time goes (in --json: "timings"; bench/backup.py prints it): wall-clock marks, so the
    # bench can also tell the python start-up before this line and the exit after the last one.
    marks = {"command_started_at": time.time()}
    # Everything the imports, the inventory and paramiko allocate lives until exit: collecting it is pure
    # waste on every (cron) run. No cyclic GC until the hosts' connections start, then those objects are
    # frozen out of every later collection; and frozen again at the end, since the interpreter's final
    # collection would walk them all once more (measured: 32 -> 9 ms from the last line to exit).
    gc.disable()
    try:
        code = _run(marks, profile, inventory, limit, forks, timeout, scheduled, ping, install, json_out)
    finally:
        gc.enable()
    gc.freeze()
    raise typer.Exit(code)


def _run(
    marks: dict[str, float],
    profile: list[str] | None,
    inventory: Path | None,
    limit: str | None,
    forks: int | None,
    timeout: float | None,
    scheduled: bool,
    ping: str | None,
    install: bool,
    json_out: bool,
) -> int:
    import gc
    import time
    from contextlib import closing

    from dccli.backup import locks, records
    from dccli.backup.run import first_hosts, new_run_id, run_profiles
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.errors import UsageError
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.state import db

    env = Env.from_process()
    if scheduled:
        env.stderr_isatty = env.stdout_isatty = False
        env.no_color = True
    if ping and locks.ping_url_problem(ping):
        raise UsageError(f"--ping {ping!r} {locks.ping_url_problem(ping)}")
    marks["imported_at"] = time.time()
    inv = load_inventory(inventory)
    config = _config(inv)
    profiles = [config.profile(p) for p in profile] if profile else list(config.profiles.values())
    selected = None
    if limit:
        from dccli.cli.targets import select_hosts

        selected = {h.name for h in select_hosts(inv, limit)}
    from dccli.transport import early
    from dccli.transport.options import ConnectOptions

    # sshd's start-up for each connection (~20 ms) runs while this process imports paramiko (~30 ms).
    early.start(first_hosts(inv, config, profiles, selected, forks), ConnectOptions().ssh_config_path)
    marks["inventory_at"] = time.time()
    with locks.run_lock(inv.cluster):
        run_id = new_run_id()
        warn = locks.ping(ping, "start")
        if warn:
            env.warn(warn)
        with closing(db.connect()) as conn:
            records.start_run(conn, run_id, inv.cluster, [p.name for p in profiles], scheduled)
        env.err(f"backup run {run_id}: {', '.join(p.name for p in profiles)}")
        marks["state_at"] = time.time()
        display = _Display(env)
        report = None
        try:
            with make_pool(inv, timeout) as pool, display:
                marks["pool_at"] = time.time()
                gc.freeze()
                gc.enable()
                report = run_profiles(
                    inv,
                    pool,
                    config,
                    profiles,
                    selected,
                    run_id,
                    forks=forks,
                    on_event=display.event,
                    on_progress=display.progress,
                    install=install,
                )
            marks["hosts_done_at"] = time.time()
        finally:
            code = report.exit_code() if report is not None else 1
            with closing(db.connect()) as conn:
                for prun in report.runs if report is not None else ():
                    for o in prun.group.outcomes:
                        records.record_host(conn, run_id, inv.cluster, o.value or _failed_value(o, prun))
                records.finish_run(conn, run_id, code)
            marks["recorded_at"] = time.time()
            warn = locks.ping(ping, "success" if code == 0 else "failure")
            if warn:
                env.warn(warn)
    setup_errors = {
        r.profile: f"repository {r.repository}: {r.setup_error}" for r in report.runs if r.setup_error
    }
    results = [
        o.value.to_dict() if o.value is not None else _failed_value(o, r).to_dict()
        for r in report.runs
        for o in r.group.outcomes
    ]
    marks["finished_at"] = time.time()
    if json_out:
        extra = {"setup_errors": setup_errors} if setup_errors else {}
        env.out(jsonout.document(run_id=run_id, results=results, exit_code=code, timings=marks, **extra))
    else:
        for r in results:
            if r["status"] == "ok":
                env.out(
                    f"{r['host']}: {r['profile']}: ok, snapshot {r['snapshot_id']}, {r['files']} files, "
                    f"{_mib(r['bytes_added'])} added, {r['duration_s']:.1f}s"
                )
            else:
                env.out(f"{r['host']}: {r['profile']}: FAILED: {'; '.join(r['errors']) or 'unknown error'}")
            for d in r["incomplete_checkpoints"]:
                env.out(
                    f"{r['host']}: {r['profile']}: skipped incomplete checkpoint {d} (no completeness marker)"
                )
            for lock in r["stale_locks_removed"]:
                env.err(f"{r['host']}: removed its own stale restic lock {lock}")
    for name, error in setup_errors.items():  # unless every host already said it
        if not all(error in "; ".join(r["errors"]) for r in results if r["profile"] == name):
            env.err(f"{name}: {error}")
    ok = sum(1 for r in results if r["status"] == "ok")
    env.err(f"backup run {run_id}: {ok} of {len(results)} host backups ok")
    return code


def _failed_value(outcome, prun):
    from dccli.backup.run import HostBackup

    return HostBackup(
        outcome.host,
        prun.profile,
        prun.repository,
        "failed" if outcome.status != "ok" else "ok",
        errors=(outcome.error or outcome.status,),
        duration_s=outcome.duration_s,
    )


class _Display:
    """Per-host progress on a TTY (rich), nothing live otherwise: cron logs get the final lines only."""

    def __init__(self, env) -> None:
        self.env = env
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> _Display:
        if self.env.live:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=self.env.stderr_console(),
                transient=True,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, ev) -> None:
        from dccli.executor import HostFinished, HostStarted

        if self.bar is None:
            return
        if isinstance(ev, HostStarted) and ev.host not in self.tasks:
            self.tasks[ev.host] = self.bar.add_task(ev.host, total=None)
        elif isinstance(ev, HostFinished) and ev.outcome.host in self.tasks:
            self.bar.update(self.tasks[ev.outcome.host], description=f"{ev.outcome.host} {ev.outcome.status}")

    def progress(self, p) -> None:
        if self.bar is not None and p.host in self.tasks:
            self.bar.update(self.tasks[p.host], completed=p.bytes_done, total=p.total_bytes or None)


@backup_app.command("ls")
@handle_errors
def ls_cmd(
    profile: str | None = typer.Option(None, "--profile", "-p", help="Only this profile's snapshots."),
    host: str | None = typer.Option(None, "--host", help="Only this host's snapshots."),
    inventory: Path | None = InventoryOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """List dccli's snapshots (tagged `dccli`) in the profiles' repositories."""
    from dccli.backup.restore import list_snapshots
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    inv = load_inventory(inventory)
    with make_pool(inv, timeout) as pool:
        snaps = list_snapshots(pool, inv, _config(inv), profile, host)
    if json_out:
        env.out(jsonout.document(snapshots=[dict(s.to_dict(), repository=r) for r, s in snaps]))
        return
    env.out(f"{'ID':<10} {'TIME':<20} {'HOST':<16} {'PROFILE':<14} {'REPOSITORY':<12} PATHS")
    for repo, s in snaps:
        env.out(
            f"{s.short_id:<10} {s.time[:19].replace('T', ' '):<20} {s.host:<16} {s.tag('profile') or '-':<14} "
            f"{repo:<12} {' '.join(s.paths)}"
        )


@backup_app.command("restore")
@handle_errors
def restore_cmd(
    snapshot: str = typer.Argument(
        ..., help="Snapshot ID, or `latest` (of --host, and of --profile if given)."
    ),
    host: str = typer.Option(..., "--host", help="Whose backup to restore."),
    target: str = typer.Option(..., "--target", help="Directory to restore into (absolute)."),
    include: list[str] | None = typer.Option(None, "--include", help="Restore only this path (repeatable)."),
    profile: str | None = typer.Option(None, "--profile", "-p"),
    to_control: bool = typer.Option(
        False, "--to-control", help="Restore onto the control node, not the host."
    ),
    inventory: Path | None = InventoryOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Restore a snapshot onto its host (default) or onto the control node."""
    from dccli.backup.restore import restore
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    inv = load_inventory(inventory)
    with make_pool(inv, timeout) as pool:
        res = restore(pool, inv, _config(inv), snapshot, host, target, include or [], profile, to_control)
    if json_out:
        env.out(jsonout.document(restore=res.to_dict()))
    elif res.ok:
        env.out(f"{res.host}: restored {res.snapshot} to {res.where}:{res.target}: {res.message}")
    else:
        env.err(f"{res.host}: restore FAILED: {res.message}")
    raise typer.Exit(0 if res.ok else 1)


@backup_app.command("verify")
@handle_errors
def verify_cmd(
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="Verify this profile's repository only."
    ),
    subsets: int = typer.Option(
        10, "--subsets", min=1, max=10000, help="N: each run reads 1/N of the data; N runs read all of it."
    ),
    inventory: Path | None = InventoryOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """restic check with a rotating --read-data-subset n/N per repository."""
    from dccli.backup.restore import repositories_for
    from dccli.backup.verify import verify
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    inv = load_inventory(inventory)
    config = _config(inv)
    with make_pool(inv, timeout) as pool:
        results = [verify(pool, inv, config, repo, subsets) for repo in repositories_for(config, profile)]
    if json_out:
        env.out(jsonout.document(results=[r.to_dict() for r in results]))
    for r in results:
        for lock in r.locks_removed:
            env.err(f"{r.repository}: removed stale restic lock {lock}")
        if not json_out:
            env.out(f"{r.repository}: check --read-data-subset {r.subset}: {'ok' if r.ok else 'FAILED'}")
            if not r.ok:
                env.err(r.output[-1500:])
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@backup_app.command("prune")
@handle_errors
def prune_cmd(
    profile: list[str] | None = ProfileOpt,
    inventory: Path | None = InventoryOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Forget snapshots by each profile's retention policy, then prune the repository."""
    from dccli.backup.prune import prune
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.output import jsonout
    from dccli.output.console import Env

    env = Env.from_process()
    inv = load_inventory(inventory)
    config = _config(inv)
    names = [config.profile(p).name for p in profile] if profile else list(config.profiles)
    by_repo: dict[str, list[str]] = {}
    for name in names:
        by_repo.setdefault(config.profiles[name].repository, []).append(name)
    with make_pool(inv, timeout) as pool:
        results = [prune(pool, inv, config, config.repositories[r], ps) for r, ps in by_repo.items()]
    if json_out:
        env.out(jsonout.document(results=[r.to_dict() for r in results]))
    else:
        for r in results:
            env.out(
                f"{r.repository}: forgot {r.removed_snapshots} snapshots ({', '.join(r.profiles)}), "
                f"prune {'ok' if r.ok else 'FAILED'}"
            )
            if not r.ok:
                env.err(r.output)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@backup_app.command("schedule")
@handle_errors
def schedule_cmd(
    cron: str | None = typer.Option(None, "--cron", help='Cron schedule, e.g. "0 2 * * *" or @daily.'),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Only this profile (default: all)."),
    remove: bool = typer.Option(False, "--remove", help="Remove the schedule."),
    user: bool = typer.Option(False, "--user", help="Use your crontab instead of /etc/cron.d."),
    ping: str | None = typer.Option(None, "--ping", help="Dead-man URL pinged by each scheduled run."),
    log: Path | None = typer.Option(None, "--log", help="Log file (default $DCCLI_HOME/backup/backup.log)."),
    inventory: Path | None = InventoryOpt,
) -> None:
    """Install (or --remove) a cron entry running `dccli backup run --scheduled`."""
    import os
    import shutil
    import sys

    from dccli import paths
    from dccli.backup import locks, schedule
    from dccli.cli.common import inventory_path, load_inventory
    from dccli.errors import UsageError
    from dccli.output.console import Env

    env = Env.from_process()
    inv = load_inventory(inventory)
    config = _config(inv)
    if profile:
        config.profile(profile)
    name = schedule.entry_name(inv.cluster, profile)
    if remove:
        gone = schedule.remove_user(name) if user else schedule.remove_cron_d(name)
        env.err(f"{name}: {'removed' if gone else 'was not installed'}")
        return
    if not cron:
        raise UsageError("--cron is required (or --remove)")
    if ping and locks.ping_url_problem(ping):
        raise UsageError(f"--ping {ping!r} {locks.ping_url_problem(ping)}")
    inv_path = inventory_path(inventory)
    if inv_path is None:
        raise UsageError("a scheduled backup needs an inventory file (-i or $DCCLI_INVENTORY)")
    exe = shutil.which("dccli") or str(Path(sys.executable).with_name("dccli"))
    argv = [
        str(Path(exe).resolve()) if os.path.exists(exe) else exe,
        "backup",
        "run",
        "--scheduled",
        "-i",
        str(inv_path.resolve()),
    ]
    if profile:
        argv += ["--profile", profile]
    if ping:
        argv += ["--ping", ping]
    home = paths.dccli_home().resolve()
    log_path = (log or home / "backup" / "backup.log").resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    bin_dir = str(Path(argv[0]).parent)
    env_vars = (
        ("PATH", f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("DCCLI_HOME", str(home)),
        ("DCCLI_INVENTORY", str(inv_path.resolve())),
        ("NO_COLOR", "1"),
    )
    job = schedule.CronJob(schedule.validate_cron(cron), tuple(argv), env_vars, str(log_path), name)
    if user:
        schedule.install_user(job)
        env.err(f"{name}: installed in your crontab ({job.schedule}); log: {log_path}")
    else:
        path = schedule.install_cron_d(job)
        env.err(f"{name}: installed {path} ({job.schedule}); log: {log_path}")
