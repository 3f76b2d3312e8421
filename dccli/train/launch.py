"""`train launch` and `train resume`: prepare every node, start its supervisor, hand the run to a watcher.

Per node, in one fan-out: one helper session (directories, the route towards the rendezvous host, on the
store host a free port), the optional --sync, then SFTP of the supervisor, spec and 0600 env file, then
one exec that starts the supervisor and returns once torchrun runs. Any node failing to start stops the
others, so a launch never leaves half a run behind.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from dccli.errors import DccliError, UsageError
from dccli.executor import OK, fan_out
from dccli.train import node, plan, store
from dccli.train.model import (
    ACTIVE,
    FAILED,
    LAUNCH,
    PENDING,
    RESTART,
    RESUME,
    RUNNING,
    STARTING,
    AttemptRecord,
    Failure,
    NodeRecord,
    RunRecord,
    RunSpec,
)

Progress = Callable[[str], None]


class LaunchError(DccliError):
    pass


def host_envs(hosts: Sequence, cli_env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Each host's environment: its inventory `train_env` var, then --env values on top."""
    envs = {}
    for h in hosts:
        env = plan.env_from_vars(h.name, h.source, h.vars)
        env.update(cli_env)
        envs[h.name] = env
    return envs


def launch(
    inv,
    hosts: Sequence,
    spec: RunSpec,
    *,
    name: str | None,
    cli_env: Mapping[str, str],
    pool,
    forks: int = 64,
    progress: Progress = lambda _m: None,
) -> RunRecord:
    envs = host_envs(hosts, cli_env)
    keys = sorted({k for env in envs.values() for k in env})
    spec = replace(spec, env_keys=tuple(keys))
    run_id = plan.new_run_id(secrets.token_hex(4))
    with store.opened() as db:
        store.create(db, run_id=run_id, name=name, cluster=inv.cluster, state=PENDING, spec=spec)
        store.event(db, run_id, f"launched: {spec.command} on {','.join(spec.hosts)}")
    progress(
        f"run {run_id}{f' ({name})' if name else ''}: {len(hosts)} nodes x {spec.nproc_per_node} processes"
        + (f", up to {spec.max_restarts} restarts" if spec.max_restarts else "")
    )
    with store.opened() as db:
        store.set_state(db, run_id, STARTING, only_from=(PENDING,), touch_attempt=False)
    start_attempt(
        run_id,
        spec,
        0,
        hosts,
        envs,
        pool,
        forks=forks,
        progress=progress,
        trigger=LAUNCH,
        cli_keys=list(cli_env),
    )
    with store.opened() as db:
        return store.get(db, run_id)


def resume(
    inv,
    run: RunRecord,
    cli_env: Mapping[str, str],
    pool,
    *,
    forks: int = 64,
    progress: Progress = lambda _m: None,
) -> RunRecord:
    if run.state in ACTIVE:
        raise UsageError(f"run {run.id} is {run.state}: stop it first (dccli train stop {run.id})")
    if run.state == "SUCCEEDED":
        raise UsageError(f"run {run.id} SUCCEEDED: nothing to resume")
    hosts = [inv.host(h) for h in run.spec.hosts if h in inv]
    if len(hosts) != len(run.spec.hosts):
        missing = [h for h in run.spec.hosts if h not in inv]
        raise UsageError(f"run {run.id}: hosts no longer in the inventory: {', '.join(missing)}")
    envs = host_envs(hosts, cli_env)
    number = (run.latest.number + 1) if run.latest else 0
    with store.opened() as db:
        store.reopen(db, run.id, PENDING)
        store.event(db, run.id, f"resumed: attempt {number}")
        store.set_state(db, run.id, STARTING, only_from=(PENDING,), touch_attempt=False)
    progress(f"run {run.id}: attempt {number} (DCCLI_RESTART_COUNT={number})")
    start_attempt(
        run.id,
        run.spec,
        number,
        hosts,
        envs,
        pool,
        forks=forks,
        progress=progress,
        trigger=RESUME,
        cli_keys=list(cli_env),
    )
    with store.opened() as db:
        return store.get(db, run.id)


def restart(inv, run: RunRecord, pool, *, forks: int = 64, progress: Progress = lambda _m: None) -> bool:
    """The watcher's restart after a worker failed: the next attempt on the same hosts, every node anew
    (new rendezvous, port and directory), the run already moved to STARTING by the watcher. It keeps
    the previous attempt's whole environment (only DCCLI_ATTEMPT/DCCLI_RESTART_COUNT change): the
    inventory is not read again, unlike `resume`, which is an operator's new start. True if the new
    attempt runs; False if a `train stop` came in meanwhile (the caller tears the new attempt down)."""
    assert run.latest is not None
    hosts = [inv.host(h) for h in run.spec.hosts]
    return start_attempt(
        run.id,
        run.spec,
        run.latest.number + 1,
        hosts,
        {h.name: {} for h in hosts},
        pool,
        forks=forks,
        progress=progress,
        trigger=RESTART,
        watcher=False,
    )


def start_attempt(
    run_id: str,
    spec: RunSpec,
    number: int,
    hosts: Sequence,
    envs: Mapping[str, Mapping[str, str]],
    pool,
    *,
    forks: int,
    progress: Progress,
    trigger: str,
    watcher: bool = True,
    cli_keys: Sequence[str] = (),
) -> bool:
    """Attempt `number` of a run already moved to STARTING; True if it is RUNNING at the end. watcher:
    spawn the run's watcher (a restart is started by the watcher itself, which goes on watching)."""
    from dccli.remote.session import Step, run_steps

    first = hosts[0]

    def abort(host: str, reason: str, statuses: Mapping[str, dict] | None = None, rdzv=None) -> None:
        _abort(run_id, spec, number, hosts, statuses or {}, pool, host, reason, first, rdzv, trigger=trigger)

    with store.opened() as db:
        ports = plan.port_candidates(store.active_ports(db), secrets.randbelow(len(plan.PORT_RANGE)))[:64]
    d = plan.attempt_dir(run_id, number)
    sync_root = Path(spec.sync).resolve() if spec.sync else None

    def prepare(host) -> tuple[str, dict]:
        conn = pool.get(host)
        args = {
            "route_to": first.address,
            "root": plan.run_root(run_id),
            "dir": d,
            "python": spec.python,
            "ports": ports if host.name == first.name else [],
        }
        steps = [Step("prepare", "train_prepare", args)]
        if sync_root is not None:
            steps.append(Step("scan", "train_scan", {"root": str(sync_root)}))
        results = run_steps(conn, steps, timeout=60)
        if not results[0].ok:
            raise LaunchError(f"{host.name}: {results[0].error}")
        info = dict(results[0].data)
        if not info.get("python"):
            raise LaunchError(f"{host.name}: interpreter {spec.python!r} not found (--python)")
        if sync_root is not None:
            from dccli.train import sync

            res = sync.push(conn, sync_root, (results[1].data or {}).get("files") or {})
            info["synced"] = res
        return OK, info

    progress(f"preparing {len(hosts)} nodes" + (f" and syncing {sync_root}" if sync_root else ""))
    prepared = fan_out(hosts, prepare, forks=forks)
    bad = [o for o in prepared.outcomes if not o.ok]
    if bad:
        abort(bad[0].host, bad[0].error or bad[0].status)
    infos = {o.host: o.value for o in prepared.outcomes}
    port = infos[first.name].get("port")
    if port is None:
        abort(
            first.name,
            f"no free rendezvous port in {plan.PORT_RANGE.start}-{plan.PORT_RANGE.stop - 1} on {first.address}",
        )
    ifnames = {h: plan.parse_ifname(i.get("route") or "") for h, i in infos.items()}
    for h, info in infos.items():
        if info.get("synced") is not None:
            s = info["synced"]
            progress(f"{h}: synced {s.pushed} changed files ({s.bytes} bytes), {s.unchanged} unchanged")
    rdzv = plan.rdzv_id(run_id, number, secrets.token_hex(3))
    addresses = {h.name: h.address for h in hosts}
    plans = plan.plan_attempt(
        spec,
        run_id=run_id,
        attempt=number,
        rdzv=rdzv,
        port=port,
        addresses=addresses,
        # a restart inherits the socket interface with the rest of the previous attempt's environment
        # (it may be the user's own GLOO_SOCKET_IFNAME, which a derived one must not replace)
        ifnames={} if trigger == RESTART else ifnames,
        envs=envs,
    )
    attempt = AttemptRecord(
        number,
        rdzv,
        first.name,
        f"{first.address}:{port}",
        STARTING,
        time.time(),
        tuple(NodeRecord(p.host, p.address, p.node_rank, p.dir, ifnames.get(p.host)) for p in plans),
        trigger=trigger,
    )
    with store.opened() as db:
        store.put_attempt(db, run_id, attempt)
        store.event(db, run_id, f"attempt {number}: rendezvous {rdzv} at {attempt.rdzv_endpoint}")
    by_host = {p.host: p for p in plans}

    def start(host) -> tuple[str, dict]:
        conn = pool.get(host)
        p = by_host[host.name]
        node.push_supervisor(conn, run_id)
        inherit = f"{plan.attempt_dir(run_id, number - 1)}/env.json" if number else None
        spec_bytes = plan.spec_file_bytes(p, spec.workdir, inherit, cli_keys)
        conn.put_bytes(spec_bytes, f"{p.dir}/spec.json", mode=0o600)
        conn.put_bytes(p.env_file(), f"{p.dir}/env.json", mode=0o600)
        return OK, node.start(conn, spec.python, run_id, p.dir)

    progress(f"starting torchrun on {len(hosts)} nodes (rendezvous {attempt.rdzv_endpoint})")
    started = fan_out(hosts, start, forks=forks)
    statuses = {o.host: o.value for o in started.outcomes if o.ok}

    def mark(a: AttemptRecord) -> AttemptRecord:
        for h, st in statuses.items():
            a = a.with_node(
                replace(
                    a.node(h), state="running", supervisor_pid=st.get("supervisor_pid"), pgid=st.get("pgid")
                )
            )
        return a

    with store.opened() as db:
        store.update_attempt(db, run_id, number, mark)
    bad = [o for o in started.outcomes if not o.ok]
    if bad:
        abort(bad[0].host, bad[0].error or bad[0].status, statuses, rdzv)
    with store.opened() as db:
        running = store.set_state(db, run_id, RUNNING, only_from=(STARTING,))
        if watcher:
            store.set_watcher(db, run_id, spawn_watcher(run_id))
    return running


def _abort(run_id, spec, number, hosts, statuses, pool, host, reason, first, rdzv, *, trigger: str) -> None:
    """A node could not be prepared or started: stop what did start, record FAILED, raise."""
    from dccli.train.stop import stop_nodes

    started = [h for h in hosts if h.name in statuses]
    if started:
        stop_nodes(pool, started, spec.python, run_id, plan.attempt_dir(run_id, number), grace=0)
    failure = Failure(host, time.time(), reason, FAILED)
    with store.opened() as db:
        if rdzv is None:  # no attempt record yet: keep one so `show` names the failing node
            store.put_attempt(
                db,
                run_id,
                AttemptRecord(
                    number,
                    "-",
                    first.name,
                    "-",
                    FAILED,
                    time.time(),
                    tuple(
                        NodeRecord(h.name, h.address, i, plan.attempt_dir(run_id, number))
                        for i, h in enumerate(hosts)
                    ),
                    trigger=trigger,
                ),
            )
        store.set_state(
            db,
            run_id,
            FAILED,
            only_from=(PENDING, STARTING),
            attempt_change=lambda a: replace(a, failure=failure),
        )
        store.event(db, run_id, f"launch failed on {host}: {reason}")
    raise LaunchError(f"run {run_id}: {reason.removeprefix(host + ': ')} (on {host})")


def spawn_watcher(run_id: str) -> int:
    """The watcher: a detached control-node process (own session) that outlives this command."""
    from dccli import paths

    logdir = paths.ensure_home() / "train"
    logdir.mkdir(exist_ok=True, mode=0o700)
    with open(logdir / f"{run_id}.watch.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccli.train.watch", run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(os.environ),
        )
    return proc.pid


def watcher_alive(pid: int | None, run_id: str) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid else []
    except OSError:
        return False
    return b"dccli.train.watch" in cmd and run_id.encode() in cmd


def ensure_watcher(run: RunRecord) -> bool:
    """A running run whose watcher is gone (killed, control node rebooted) gets a new one; True if started.
    The new watcher reads the nodes' own records (status.json), so nothing that happened meanwhile is lost."""
    if run.state not in (RUNNING, "STOPPING") or watcher_alive(run.watcher_pid, run.id):
        return False
    with store.opened() as db:
        store.set_watcher(db, run.id, spawn_watcher(run.id))
        store.event(db, run.id, "watcher restarted")
    return True


__all__ = ["LaunchError", "ensure_watcher", "launch", "restart", "resume", "spawn_watcher"]
