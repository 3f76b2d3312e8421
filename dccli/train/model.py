"""Training runs as values: the spec a run was launched with, its attempts, each node's fate. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

PENDING, STARTING, RUNNING, STOPPING = "PENDING", "STARTING", "RUNNING", "STOPPING"
SUCCEEDED, FAILED, CANCELLED, NODE_FAIL = "SUCCEEDED", "FAILED", "CANCELLED", "NODE_FAIL"
ACTIVE = (PENDING, STARTING, RUNNING, STOPPING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED, NODE_FAIL)

# Where a run lives on each node: <NODE_ROOT>/<run id>/supervisor.py and one directory per attempt.
NODE_ROOT = "/var/tmp/dccli-train"

# Why an attempt was started: by `launch`, by `resume`, or by the watcher restarting the run after a
# worker failed (--max-restarts). Only "restart" attempts spend the --max-restarts budget.
LAUNCH, RESUME, RESTART = "launch", "resume", "restart"


def exit_code_for(state: str) -> int:
    """The exit status of `train launch` (following) and `train logs -f`: the run's result."""
    return {SUCCEEDED: 0, NODE_FAIL: 3, CANCELLED: 130}.get(state, 1)


@dataclass(frozen=True)
class RunSpec:
    """What the user asked for; never changes between attempts."""

    script: str
    args: tuple[str, ...]
    hosts: tuple[str, ...]  # in node-rank order; the first hosts the rendezvous
    nproc_per_node: int
    python: str = "python3"
    workdir: str | None = None
    env_keys: tuple[str, ...] = ()  # names only: values live in the nodes' 0600 env files, never here
    max_restarts: int = 0
    sync: str | None = None
    inventory: str | None = None

    @property
    def world_size(self) -> int:
        return len(self.hosts) * self.nproc_per_node

    @property
    def command(self) -> str:
        import shlex

        return shlex.join([self.script, *self.args])

    def to_dict(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "args": list(self.args),
            "hosts": list(self.hosts),
            "nproc_per_node": self.nproc_per_node,
            "python": self.python,
            "workdir": self.workdir,
            "env_keys": list(self.env_keys),
            "max_restarts": self.max_restarts,
            "sync": self.sync,
            "inventory": self.inventory,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(
            d["script"],
            tuple(d.get("args") or ()),
            tuple(d["hosts"]),
            int(d["nproc_per_node"]),
            d.get("python") or "python3",
            d.get("workdir"),
            tuple(d.get("env_keys") or ()),
            int(d.get("max_restarts") or 0),
            d.get("sync"),
            d.get("inventory"),
        )


@dataclass(frozen=True)
class NodeRecord:
    host: str
    address: str
    node_rank: int
    dir: str  # the attempt's directory on the node
    ifname: str | None = None
    state: str = "pending"  # pending | running | exited | lost | failed_to_start
    supervisor_pid: int | None = None
    pgid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    ranks_done: tuple[int, ...] = ()
    ended_at: float | None = None
    error: str | None = None
    leftovers: tuple[dict[str, Any], ...] = ()

    @property
    def logs(self) -> dict[str, str]:
        return {"node": f"{self.dir}/node.log", "ranks": f"{self.dir}/rank-<r>.log"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host, "address": self.address, "node_rank": self.node_rank, "dir": self.dir,
            "ifname": self.ifname, "state": self.state, "supervisor_pid": self.supervisor_pid,
            "pgid": self.pgid, "exit_code": self.exit_code, "signal": self.signal,
            "ranks_done": list(self.ranks_done), "ended_at": self.ended_at, "error": self.error,
            "leftovers": list(self.leftovers), "logs": self.logs,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeRecord:
        return cls(
            d["host"],
            d["address"],
            int(d["node_rank"]),
            d["dir"],
            d.get("ifname"),
            d.get("state", "pending"),
            d.get("supervisor_pid"),
            d.get("pgid"),
            d.get("exit_code"),
            d.get("signal"),
            tuple(d.get("ranks_done") or ()),
            d.get("ended_at"),
            d.get("error"),
            tuple(d.get("leftovers") or ()),
        )


@dataclass(frozen=True)
class Failure:
    """The first node that failed, and how; decides FAILED vs NODE_FAIL."""

    host: str
    at: float
    reason: str
    state: str  # FAILED | NODE_FAIL

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "at": self.at, "reason": self.reason, "state": self.state}


@dataclass(frozen=True)
class AttemptRecord:
    number: int  # 0 for the launch, then one more per `train resume`
    rdzv_id: str
    rdzv_host: str
    rdzv_endpoint: str  # address:port on the first node, checked free there before launch
    state: str
    started_at: float
    nodes: tuple[NodeRecord, ...]
    ended_at: float | None = None
    failure: Failure | None = None
    warning: str | None = None
    trigger: str = LAUNCH  # LAUNCH | RESUME | RESTART

    def node(self, host: str) -> NodeRecord:
        for n in self.nodes:
            if n.host == host:
                return n
        raise KeyError(host)

    def with_node(self, node: NodeRecord) -> AttemptRecord:
        return replace(self, nodes=tuple(node if n.host == node.host else n for n in self.nodes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number, "rdzv_id": self.rdzv_id, "rdzv_host": self.rdzv_host,
            "rdzv_endpoint": self.rdzv_endpoint, "state": self.state, "started_at": self.started_at,
            "ended_at": self.ended_at, "failure": self.failure.to_dict() if self.failure else None,
            "warning": self.warning, "trigger": self.trigger, "nodes": [n.to_dict() for n in self.nodes],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttemptRecord:
        f = d.get("failure")
        return cls(
            int(d["attempt"]),
            d["rdzv_id"],
            d["rdzv_host"],
            d["rdzv_endpoint"],
            d["state"],
            float(d["started_at"]),
            tuple(NodeRecord.from_dict(n) for n in d["nodes"]),
            d.get("ended_at"),
            Failure(**f) if f else None,
            d.get("warning"),
            # records written before restarts existed: attempt 0 was the launch, later ones resumes
            d.get("trigger") or (LAUNCH if int(d["attempt"]) == 0 else RESUME),
        )


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str | None
    cluster: str
    state: str
    created_at: float
    spec: RunSpec
    attempts: tuple[AttemptRecord, ...] = ()
    ended_at: float | None = None
    watcher_pid: int | None = None
    events: tuple[str, ...] = field(default=(), compare=False)

    @property
    def latest(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def chain(self) -> tuple[AttemptRecord, ...]:
        """The attempts since the latest launch or resume: that one and the restarts that followed it."""
        start = 0
        for i, a in enumerate(self.attempts):
            if a.trigger != RESTART:
                start = i
        return self.attempts[start:]

    @property
    def restarts(self) -> int:
        """Restarts spent from this launch's (or resume's) --max-restarts budget."""
        return sum(1 for a in self.chain if a.trigger == RESTART)

    def restart_index(self, number: int) -> int:
        """Which restart attempt `number` is since its launch or resume (1 for the first), 0 for none."""
        index = 0
        for a in self.attempts:
            if a.number > number:
                break
            index = index + 1 if a.trigger == RESTART else 0
        return index

    @property
    def restarts_left(self) -> int:
        return max(0, self.spec.max_restarts - self.restarts)

    @property
    def duration_s(self) -> float | None:
        """From the start of the latest launch or resume (its restarts included) to the end."""
        a = self.latest
        if a is None:
            return None
        first = self.chain[0]
        return (
            (a.ended_at or self.ended_at or 0) - first.started_at if (a.ended_at or self.ended_at) else None
        )

    @property
    def exit_code(self) -> int | None:
        return exit_code_for(self.state) if self.state in TERMINAL else None

    def to_dict(self) -> dict[str, Any]:
        a = self.latest
        return {
            "id": self.id,
            "name": self.name,
            "cluster": self.cluster,
            "state": self.state,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "command": self.spec.command,
            "spec": self.spec.to_dict(),
            "first_failure": a.failure.to_dict() if a and a.failure else None,
            "restarts": self.restarts,
            "max_restarts": self.spec.max_restarts,
            "warning": a.warning if a else None,
            "attempts": [x.to_dict() for x in self.attempts],
        }
