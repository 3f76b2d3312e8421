"""Planning a training attempt: ids, rendezvous, environment, each node's torchrun argv. Pure functions.

Every piece that, when missing, makes a real multi-node torchrun hang or fail is decided here, where unit
tests can see it: a rendezvous id unique per attempt, the c10d store hosted on the first node only
(`is_host`), `--local-addr` per node, the socket interface towards the rendezvous host (GLOO/NCCL), and a
port that was checked free on the store host.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dccli.errors import InputError, UsageError
from dccli.train.model import NODE_ROOT, RunSpec

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PORT_RANGE = range(29500, 30000)
# Names dccli sets itself: a user value for them would silently break the run's bookkeeping.
RESERVED_ENV = (
    "DCCLI_RUN_ID",
    "DCCLI_NODE_RANK",
    "DCCLI_NNODES",
    "DCCLI_NODES",
    "DCCLI_RESTART_COUNT",
    "DCCLI_MAX_RESTARTS",
    "DCCLI_ATTEMPT",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
)
VARS_KEY = "train_env"  # inventory vars holding the runs' environment (cluster < rack < group < host)


@dataclass(frozen=True)
class NodePlan:
    host: str
    address: str
    node_rank: int
    is_host: bool  # hosts the c10d rendezvous store
    dir: str  # attempt dir on the node
    argv: tuple[str, ...]
    env: Mapping[str, str]

    def env_file(self) -> bytes:
        return env_file_bytes(self.env)


def run_root(run_id: str) -> str:
    return f"{NODE_ROOT}/{run_id}"


def attempt_dir(run_id: str, attempt: int) -> str:
    return f"{run_root(run_id)}/attempt-{attempt}"


def supervisor_path(run_id: str) -> str:
    return f"{run_root(run_id)}/supervisor.py"


def new_run_id(token: str) -> str:
    """`tr-` + 8 hex digits from the caller's randomness (kept out of here so this stays pure)."""
    if not re.fullmatch(r"[0-9a-f]{8}", token):
        raise ValueError(f"bad token {token!r}")
    return f"tr-{token}"


def rdzv_id(run_id: str, attempt: int, token: str) -> str:
    """Unique per attempt: a resumed run never joins a rendezvous a stale agent still holds."""
    return f"{run_id}-a{attempt}-{token}"


def check_name(name: str | None) -> str | None:
    if name is not None and not RUN_NAME.match(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
    return name


def parse_env_args(items: Iterable[str]) -> dict[str, str]:
    """--env K=V ... -> {K: V}; a bad item is a usage error naming it."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not ENV_NAME.match(key):
            raise UsageError(
                f"--env {item.split('=', 1)[0]!r}: expected NAME=VALUE with NAME like [A-Za-z_][A-Za-z0-9_]*"
            )
        if key in RESERVED_ENV:
            raise UsageError(f"--env {key}: set by dccli/torchrun itself")
        if "\0" in value:
            raise UsageError(f"--env {key}: value contains NUL")
        env[key] = value
    return env


def env_from_vars(host_name: str, source: str, variables: Mapping[str, Any]) -> dict[str, str]:
    """The host's `train_env` var (cluster/rack/group/host merged as vars are) as environment strings."""
    raw = variables.get(VARS_KEY)
    if raw is None:
        return {}
    where = source.rsplit(":", 1)[0] if source else None
    if not isinstance(raw, Mapping):
        raise InputError(
            f"expected a mapping NAME: value (host {host_name})", path=where, key=f"vars.{VARS_KEY}"
        )
    env: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not ENV_NAME.match(key) or key in RESERVED_ENV:
            raise InputError(
                f"bad environment name {key!r} (host {host_name})", path=where, key=f"vars.{VARS_KEY}"
            )
        if isinstance(value, bool):
            value = "1" if value else "0"
        if not isinstance(value, (str, int, float)):
            raise InputError(
                f"{key}: expected a string or number, got {type(value).__name__} (host {host_name})",
                path=where,
                key=f"vars.{VARS_KEY}.{key}",
            )
        env[key] = str(value)
    return env


def node_env(
    base: Mapping[str, str],
    *,
    run_id: str,
    attempt: int,
    node_rank: int,
    hosts: Sequence[str],
    ifname: str | None,
    max_restarts: int = 0,
) -> dict[str, str]:
    env = dict(base)
    env.update({
        "PYTHONUNBUFFERED": "1",  # lines reach the logs as they are printed
        "DCCLI_RUN_ID": run_id,
        "DCCLI_ATTEMPT": str(attempt),
        "DCCLI_RESTART_COUNT": str(attempt),
        "DCCLI_MAX_RESTARTS": str(max_restarts),
        "DCCLI_NODE_RANK": str(node_rank),
        "DCCLI_NNODES": str(len(hosts)),
        "DCCLI_NODES": ",".join(hosts),
    })  # fmt: skip
    if ifname:
        # The interface of the route towards the rendezvous host; without it gloo may pick one the
        # other nodes cannot reach (docker0, an IB port without IP) and hang in the first collective.
        env.setdefault("GLOO_SOCKET_IFNAME", ifname)
        env.setdefault("NCCL_SOCKET_IFNAME", ifname)
    return env


def env_file_bytes(env: Mapping[str, str]) -> bytes:
    """The 0600 env file: JSON, so any value (newlines, quotes) survives exactly, with no shell involved."""
    return (json.dumps(dict(sorted(env.items())), indent=1) + "\n").encode()


def parse_ifname(ip_route_get: str) -> str | None:
    """`ip route get ADDR` -> the interface name ("local 127.3.0.1 dev lo src ..." -> "lo")."""
    m = re.search(r"\bdev\s+(\S+)", ip_route_get)
    return m.group(1) if m else None


def port_candidates(used: Iterable[int], seed: int) -> list[int]:
    """Ports to try on the store host: the whole range, starting at a seeded offset, minus ports that
    runs still active in the state DB have recorded (they may be between binds right now)."""
    taken = set(used)
    n = len(PORT_RANGE)
    ordered = [PORT_RANGE[(seed + i) % n] for i in range(n)]
    return [p for p in ordered if p not in taken]


def torchrun_argv(
    spec: RunSpec, *, run_id: str, attempt: int, rdzv: str, endpoint: str, address: str, is_host: bool
) -> list[str]:
    d = attempt_dir(run_id, attempt)
    return [
        spec.python, "-m", "torch.distributed.run",
        f"--nnodes={len(spec.hosts)}",
        f"--nproc-per-node={spec.nproc_per_node}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id={rdzv}",
        # Only the first node hosts the store: on hosts that share addresses (or resolve the endpoint
        # to themselves) torchrun would otherwise try to host it on several nodes at once.
        f"--rdzv-conf=is_host={'true' if is_host else 'false'},join_timeout=120",
        f"--local-addr={address}",
        # dccli restarts the whole run itself (docs/train.md, "Restarts"): torchrun's own in-place
        # restarts reuse the agent's TCPStore across rounds, so restarted workers meet the previous
        # round's keys (stale gloo addresses) and fail or hang in init_process_group, and each node
        # counts its restarts differently. A failing worker must end its torchrun, so the watcher sees it.
        "--max-restarts=0",
        f"--log-dir={d}/torchrun",  # torchrun's error files; the ranks' output goes to DIR/rank-<r>.log
        supervisor_path(run_id), "rank", d, "--",
        spec.script, *spec.args,
    ]  # fmt: skip


def plan_attempt(
    spec: RunSpec,
    *,
    run_id: str,
    attempt: int,
    rdzv: str,
    port: int,
    addresses: Mapping[str, str],
    ifnames: Mapping[str, str | None],
    envs: Mapping[str, Mapping[str, str]],
) -> list[NodePlan]:
    """One NodePlan per host, node rank = position in spec.hosts; the first hosts the rendezvous."""
    first = spec.hosts[0]
    endpoint = f"{addresses[first]}:{port}"
    plans = []
    for rank, host in enumerate(spec.hosts):
        argv = torchrun_argv(
            spec,
            run_id=run_id,
            attempt=attempt,
            rdzv=rdzv,
            endpoint=endpoint,
            address=addresses[host],
            is_host=rank == 0,
        )
        env = node_env(
            envs.get(host, {}),
            run_id=run_id,
            attempt=attempt,
            node_rank=rank,
            hosts=spec.hosts,
            ifname=ifnames.get(host),
            max_restarts=spec.max_restarts,
        )
        plans.append(
            NodePlan(host, addresses[host], rank, rank == 0, attempt_dir(run_id, attempt), tuple(argv), env)
        )
    return plans


def spec_file_bytes(
    plan: NodePlan, workdir: str | None, inherit_env: str | None = None, cli_env_keys: Sequence[str] = ()
) -> bytes:
    """The supervisor's instructions; inherit_env: a previous attempt's env file, read before this one's;
    cli_env_keys: the names this attempt's --env set (supervisor.merge_env: they outrank train_env later)."""
    data = {
        "argv": list(plan.argv),
        "workdir": workdir,
        "inherit_env": inherit_env,
        "cli_env_keys": sorted(cli_env_keys),
    }
    return (json.dumps(data, indent=1) + "\n").encode()


def remote(argv: Sequence[str]) -> str:
    """A remote command line: every word shlex-quoted, so nothing in it is shell-active."""
    return shlex.join(argv)


def parse_ranks(text: str | None) -> frozenset[int] | None:
    """--rank 0,2-3 -> {0, 2, 3}."""
    if text is None:
        return None
    ranks: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"--rank {text!r}: expected numbers and ranges like 0,2-3")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UsageError(f"--rank {text!r}: empty range {part}")
        ranks.update(range(lo, hi + 1))
    return frozenset(ranks)


def parse_follow_line(raw: bytes) -> tuple[str, int | None, str]:
    """A `SRC<TAB>line` record of supervisor.py follow -> (source, global rank or None, text)."""
    src, _, text = raw.partition(b"\t")
    source = src.decode("ascii", "replace")
    rank = int(source) if source.isdigit() else None
    return source, rank, text.decode("utf-8", "replace").rstrip("\r")
