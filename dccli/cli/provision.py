"""dccli provision PLAYBOOK...: Ansible-dialect playbooks, one remote session per host per play."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, LimitOpt, TimeoutOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("provision")(provision)


@handle_errors
def provision(
    playbooks: list[Path] = typer.Argument(..., help="Playbook files, run in order."),
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    check: bool = typer.Option(False, "-C", "--check", help="Change nothing; report what would change."),
    diff: bool = typer.Option(False, "-D", "--diff", help="Show unified diffs of changed files."),
    tags: list[str] = typer.Option([], "-t", "--tags", help="Run only tasks with these tags (comma list)."),
    skip_tags: list[str] = typer.Option([], "--skip-tags", help="Skip tasks with these tags."),
    extra_vars: list[str] = typer.Option(
        [], "-e", "--extra-vars", help="KEY=VALUE, a JSON/YAML mapping, or @FILE."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="JSON lines on stdout: one per task result, then the recap."
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show module messages for ok/changed tasks."),
) -> None:
    """Run playbooks (a documented subset of Ansible's dialect, docs/provision.md) on the selected hosts."""
    import time

    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, remember, select_hosts
    from dccli.output.console import Env
    from dccli.output.provision import LiveBoard, Progress, recap_json, recap_lines
    from dccli.playbook import loader, names
    from dccli.playbook.play import plan_hosts, run_playbooks
    from dccli.playbook.runner import Options
    from dccli.playbook.vars_cli import parse_extra_vars

    env = Env.from_process()
    evars = parse_extra_vars(extra_vars)
    books = [loader.load(p) for p in playbooks]  # every error here is exit 2, before any host is touched
    inv = load_inventory(inventory)
    names.check(books, inv, evars)
    hosts = select_hosts(inv, limit)
    split = lambda values: frozenset(t.strip() for v in values for t in v.split(",") if t.strip())  # noqa: E731
    options = Options(check=check, diff=diff, tags=split(tags), skip_tags=split(skip_tags), extra_vars=evars)
    plan = plan_hosts(books, inv, hosts, options)
    started = time.time()
    t0 = time.monotonic()
    import contextlib

    if env.live and not json_out and not verbose:
        board = LiveBoard(env, diff=diff)  # a terminal: a live per-host table (rich)
    else:
        board = contextlib.nullcontext(Progress(env, diff=diff, json_lines=json_out, verbose=verbose))
    with make_pool(inv, timeout) as pool, board as sink:
        result = run_playbooks(plan, inv, pool, options, forks=forks, emit=sink)
    group = result.group(time.monotonic() - t0)
    code = int(group.exit_code())
    if json_out:
        env.out(recap_json(result.stats, code, result.fates))
    else:
        env.out("")
        for line in recap_lines(result.stats, color=env.color_stdout):
            env.out(line)
    if not check:
        remember(inv, "provision", " ".join(str(p) for p in playbooks), started, group)
    raise typer.Exit(code)
