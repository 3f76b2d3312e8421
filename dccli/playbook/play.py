"""Run playbooks: plays in order, each play's hosts in serial batches, each host in its own session."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dccli.executor import FAILED, OK, UNREACHABLE, GroupOutcome, HostOutcome, fan_out
from dccli.playbook import planner
from dccli.playbook.actions import truthy
from dccli.playbook.channel import files_for
from dccli.playbook.events import HostStats, Notice, PlayStarted
from dccli.playbook.model import Play, Playbook, Task
from dccli.playbook.names import walk
from dccli.playbook.runner import HostPlay, Latch, Options, PlayRun


@dataclass
class RunResult:
    stats: dict[str, HostStats]  # every host that took part, in inventory order
    fates: dict[str, str] = field(default_factory=dict)  # host -> ok | failed | unreachable | auth

    def group(self, wall_s: float = 0.0) -> GroupOutcome:
        """Every host that ran, plus those a stopped play never reached (failed, so @failed retries them)."""
        hosts = list(self.stats) + [h for h in self.fates if h not in self.stats]
        return GroupOutcome(tuple(HostOutcome(h, self.fates.get(h, OK)) for h in hosts), False, wall_s)


def plan_hosts(playbooks: list[Playbook], inventory, selected: list, options: Options) -> list[tuple]:
    """Each play with its hosts (play pattern ∩ --limit), serial and max_fail_percentage, before anything runs."""
    allowed = {h.name for h in selected}
    out = []
    for pb in playbooks:
        for play in pb.plays:
            pattern = planner.nodeset_pattern(play.hosts, inventory.groups)
            hosts = [h for h in inventory.select(pattern) if h.name in allowed]
            out.append((play, hosts, *_play_level(play, inventory, options)))
    return out


def run_playbooks(
    plan: list[tuple], inventory, pool, options: Options, *, forks: int, emit: Callable[[Any], None]
) -> RunResult:
    state: dict[str, dict[str, Any]] = {}
    result = RunResult(stats={})
    order = {h.name: i for i, h in enumerate(inventory.hosts)}
    lock = threading.Lock()

    def safe_emit(event: Any) -> None:
        with lock:
            emit(event)

    for play, hosts, serial, max_fail in plan:
        # Like Ansible: hosts that failed or were unreachable in an earlier play sit out the later ones.
        hosts = [h for h in hosts if result.fates.get(h.name, OK) == OK]
        names = [h.name for h in hosts]
        if not hosts:
            safe_emit(Notice(None, f"play {play.name or play.hosts!r}: no hosts left to run on; skipping"))
            continue
        batches = planner.batches(hosts, serial)
        for n, batch in enumerate(batches, 1):
            for h in batch:
                state.setdefault(h.name, {"facts": {}, "set": {}})
                result.stats.setdefault(h.name, HostStats())  # the recap lists hosts that ran, as Ansible's
            safe_emit(PlayStarted(play.name or play.hosts, tuple(h.name for h in batch), n, len(batches)))
            run = PlayRun(play, options, inventory, names, [h.name for h in batch], state, safe_emit)
            run.files = files_for({n.module for n in walk(play.tasks + play.handlers) if isinstance(n, Task)})
            if truthy(play.gather_facts) and forks >= len(batch):
                # hostvars[other].ansible_* must be there from the first task on, as under Ansible's linear
                # strategy; only when every host of the batch runs at once (else the latch could not open).
                run.facts_latch = Latch(len(batch))

            def work(host, run=run):
                fate, stats = HostPlay(run, host, pool).run()
                return fate, stats

            group = fan_out(batch, work, forks=forks)
            if group.interrupted:
                run.abort.set()  # Ctrl-C: hosts still running stop before their next task
                raise KeyboardInterrupt
            failed = 0
            for o in group.outcomes:
                if o.value is not None:
                    _add(result.stats[o.host], o.value)
                status = o.status
                if status in ("interrupted",):
                    status = FAILED
                if o.value is None and status == FAILED:  # an internal error: count it as a failed task
                    result.stats[o.host].failed += 1
                    safe_emit(Notice(o.host, o.error or "failed"))
                if status != OK:
                    result.fates[o.host] = status if status in (UNREACHABLE, "auth") else FAILED
                    failed += 1
            if run.abort.is_set() or (
                (len(batches) > 1 or max_fail is not None)
                and failed
                and planner.batch_aborts(failed, len(batch), max_fail)
            ):
                rest = [h.name for b in batches[n:] for h in b]
                why = (
                    "any_errors_fatal"
                    if run.abort.is_set()
                    else "max_fail_percentage"
                    if failed < len(batch)
                    else "every host of the batch failing"
                )
                safe_emit(
                    Notice(
                        None,
                        f"play {play.name or play.hosts!r} stopped by {why}"
                        + (f"; not run on {len(rest)} more hosts" if rest else ""),
                    )
                )
                for h in [h for b in batches[n:] for h in b] + (list(batch) if run.abort.is_set() else []):
                    result.fates.setdefault(h.name, FAILED)
                break
        else:
            continue
        break  # a stopped play ends the run, as in Ansible
    result.stats = dict(sorted(result.stats.items(), key=lambda kv: order.get(kv[0], 0)))
    return result


def _play_level(play: Play, inventory, options: Options) -> tuple[Any, Any]:
    """serial and max_fail_percentage may be templates: rendered with cluster, play and extra vars."""
    from dccli.errors import InputError
    from dccli.inventory.model import thaw
    from dccli.playbook.templating import TemplateError, render

    v = {**thaw(inventory.vars), **play.vars, **play.vars_from_files, **options.extra_vars}
    try:
        return render(play.serial, v), render(play.max_fail_percentage, v)
    except TemplateError as exc:
        w = play.where
        raise InputError(
            f"serial/max_fail_percentage: {exc}", path=w.path, line=w.line, column=w.column
        ) from None


def _add(total: HostStats, part: HostStats) -> None:
    for k, v in part.to_dict().items():
        setattr(total, k, getattr(total, k) + v)
