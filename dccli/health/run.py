"""`dccli health` core: probe every host (one session each), check, add the cluster-wide checks.

Events go out through on_event (the executor's HostStarted/HostFinished); nothing is printed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dccli.executor import OK as FATE_OK
from dccli.executor import EventSink, GroupOutcome, fan_out
from dccli.health.history import HostRecord
from dccli.health.probe import collect, facts_from_raw
from dccli.health.thresholds import for_host
from dccli.health.verdicts import OK, UNKNOWN, worst

if TYPE_CHECKING:
    from dccli.health.model import CheckResult, HostFacts

# The parsers, the model and the checks are imported where they are first used, in the worker of the first
# host to answer: dccli connects to every host first, and pays for those imports while the others still run
# their probes (on the lab's 32 hosts, ~25 ms less before the first connection).


@dataclass(frozen=True)
class HealthReport:
    results: tuple[CheckResult, ...]
    hosts: tuple[HostRecord, ...]
    facts: Mapping[str, HostFacts] = field(default_factory=dict)
    group: GroupOutcome[Any] | None = None

    def worst(self) -> str:
        return worst(h.worst for h in self.hosts)

    def for_host(self, host: str) -> list[CheckResult]:
        return [r for r in self.results if r.host == host]

    def failing(self) -> list[CheckResult]:
        return [r for r in self.results if r.verdict != OK]


def evaluate(inventory, host, facts: HostFacts, since: float | None) -> list[CheckResult]:
    """Every per-host check for one host's facts (pure)."""
    from dccli.health.checks_gpu import gpu_checks
    from dccli.health.checks_host import host_checks

    limits = for_host(inventory, host)
    return gpu_checks(facts, host.gpus, host.gpu_model, limits, since) + host_checks(facts, limits)


def run_health(
    inventory,
    hosts: list,
    pool,
    *,
    forks: int = 64,
    cursors: Mapping[str, tuple[float, Any]] = {},
    on_event: EventSink | None = None,
    timeout: float = 120,
) -> HealthReport:
    def work(host) -> tuple[str, tuple[HostFacts, list[CheckResult]]]:
        limits = for_host(inventory, host)
        raw = collect(
            pool.get(host),
            list(limits["required_services"]),
            nvlink=bool(limits["nvlink_links"]),
            timeout=timeout,
        )
        facts = facts_from_raw(raw)
        cursor = cursors.get(host.name)
        return FATE_OK, (facts, evaluate(inventory, host, facts, cursor[0] if cursor else None))

    group = fan_out(hosts, work, forks=forks, on_event=on_event)
    from dccli.health.checks_host import consistency_checks
    from dccli.health.model import CheckResult

    by_name = {h.name: h for h in hosts}
    results: list[CheckResult] = []
    records: list[HostRecord] = []
    facts: dict[str, HostFacts] = {}
    for outcome in group.outcomes:
        host = by_name[outcome.host]
        if outcome.ok and outcome.value is not None:
            f, mine = outcome.value
            facts[host.name] = f
            records.append(HostRecord(host.name, outcome.status, OK, f.host_time, f.boot_id))
        else:
            mine = [
                CheckResult(
                    host.name,
                    "host.reachable",
                    UNKNOWN,
                    outcome.error or outcome.status,
                    "reachable over SSH with the helper running",
                    "check the host: power, network, sshd (dccli run true -l HOST)",
                    "dccli",
                )
            ]
            records.append(HostRecord(host.name, outcome.status, UNKNOWN))
        results += mine
    results += consistency_checks({h: f.smi for h, f in facts.items() if f.smi is not None})
    order = {h.name: i for i, h in enumerate(hosts)}
    results.sort(key=lambda r: order[r.host])  # stable: per host, checks keep their order
    final = tuple(
        HostRecord(
            r.host, r.status, worst(x.verdict for x in results if x.host == r.host), r.host_time, r.boot_id
        )
        for r in records
    )
    return HealthReport(tuple(results), final, facts, group)
