"""Gather facts from many hosts: one helper session per host, results stored in the state DB."""

from __future__ import annotations

import json
import time

from dccli.executor import OK, EventSink, GroupOutcome, fan_out
from dccli.facts.model import Facts, build
from dccli.remote.session import Step, run_steps
from dccli.state.db import transaction


def gather(hosts: list, pool, *, forks: int = 64, on_event: EventSink | None = None) -> GroupOutcome[Facts]:
    def work(host) -> tuple[str, Facts]:
        conn = pool.get(host)
        (result,) = run_steps(conn, [Step("facts", "facts")], timeout=120)
        if not result.ok:
            from dccli.errors import DccliError

            raise DccliError(f"{host.name}: facts failed: {result.error}")
        return OK, build(host.name, result.data)

    return fan_out(hosts, work, forks=forks, on_event=on_event)


def store(conn, cluster: str, facts: list[Facts]) -> None:
    now = time.time()
    with transaction(conn):
        conn.executemany(
            "INSERT INTO facts(cluster, host, gathered_at, data) VALUES (?,?,?,?)",
            [(cluster, f.host, now, json.dumps(f.to_dict())) for f in facts],
        )


def latest(conn, cluster: str) -> dict[str, dict]:
    rows = conn.execute(
        "SELECT host, data, gathered_at FROM facts WHERE id IN "
        "(SELECT MAX(id) FROM facts WHERE cluster = ? GROUP BY host)", (cluster,)
    )
    return {r["host"]: {**json.loads(r["data"]), "gathered_at": r["gathered_at"]} for r in rows}
