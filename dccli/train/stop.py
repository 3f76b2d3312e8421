"""`train stop`: SIGTERM to every node's process group, a grace period, SIGKILL, then proof that no
process of the run is left (each node scans /proc for DCCLI_RUN_ID=<run id>). One exec per node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from dccli.executor import FAILED as HOST_FAILED
from dccli.executor import OK, GroupOutcome, fan_out
from dccli.train import node, store
from dccli.train.model import ACTIVE, CANCELLED, STOPPING, NodeRecord, RunRecord


@dataclass(frozen=True)
class NodeStop:
    host: str
    killed: bool  # SIGKILL was needed after the grace period
    leftovers: tuple[dict[str, Any], ...]  # processes of the run still there afterwards
    seconds: float
    status: dict[str, Any] | None = None  # the node's status.json after the stop

    def record(self, n: NodeRecord) -> NodeRecord:
        """The node's record updated with how the stop left it."""
        st = self.status or {}
        if st.get("state") in ("exited", "failed_to_start"):
            n = replace(
                n,
                state=st["state"],
                exit_code=st.get("exit_code"),
                signal=st.get("signal"),
                ended_at=st.get("ended_at"),
                ranks_done=tuple(st.get("ranks_done") or n.ranks_done),
            )
        elif n.state == "running":
            n = replace(n, state="lost")  # the supervisor died without recording the end
        return replace(n, leftovers=self.leftovers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "killed": self.killed,
            "leftovers": list(self.leftovers),
            "seconds": self.seconds,
        }


def stop_nodes(
    pool, hosts: Sequence, python: str, run_id: str, attempt_dir: str, *, grace: float, forks: int = 64
) -> GroupOutcome[NodeStop]:
    def work(host) -> tuple[str, NodeStop]:
        out = node.stop(pool.get(host), python, run_id, attempt_dir, grace)
        res = NodeStop(
            host.name,
            bool(out.get("killed")),
            tuple(out.get("leftovers") or ()),
            float(out.get("seconds") or 0),
            out.get("status"),
        )
        return (HOST_FAILED if res.leftovers else OK), res

    return fan_out(hosts, work, forks=forks)


def stop_run(inv, run: RunRecord, pool, *, grace: float, forks: int = 64) -> GroupOutcome[NodeStop]:
    """Stop every node of the run's latest attempt; the run ends CANCELLED (if it was still active)."""
    with store.opened() as db:
        was_active = store.set_state(db, run.id, STOPPING, only_from=ACTIVE)
        store.event(db, run.id, f"stop requested (grace {grace:g}s)")
        # Read again: the watcher may have started a newer attempt (a restart) since `run` was read.
        # Once STOPPING is recorded it starts none, and tears down one it was starting itself.
        run = store.get(db, run.id)
    att = run.latest
    assert att is not None
    hosts = [inv.host(n.host) for n in att.nodes if n.host in inv]
    group = stop_nodes(pool, hosts, run.spec.python, run.id, att.nodes[0].dir, grace=grace, forks=forks)
    results = {o.host: o for o in group.outcomes}

    def note(a):
        for n in a.nodes:
            o = results.get(n.host)
            if o is None:
                continue
            if o.value is not None:
                a = a.with_node(o.value.record(n))
            else:
                a = a.with_node(replace(n, leftovers=({"error": o.error},)))
        return a

    with store.opened() as db:
        if was_active:
            store.set_state(db, run.id, CANCELLED, only_from=(STOPPING,), attempt_change=note)
        else:
            store.update_attempt(db, run.id, att.number, note)
        left = sum(len(o.value.leftovers) for o in group.outcomes if o.value is not None)
        store.event(db, run.id, f"stopped: {left} processes left, {len(group.not_ok)} hosts not clean")
    return group
