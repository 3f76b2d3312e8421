"""The watcher: a detached control-node process per run (`python -m dccli.train.watch RUN`).

One long SSH channel per node carries a heartbeat a second (supervisor.py watch). A node that stops
answering for TIMEOUT seconds (frozen, cut off), whose supervisor died, or whose torchrun failed ends
the run at once (NODE_FAIL / FAILED naming the first such node), and every other node is torn down, so
nobody hangs in a collective or in torchrun's 300 s exit barrier. Hosts that cannot be reached are
retried until their processes are gone (or RETRY_S passes; a host refusing every connection for
REFUSED_S is given up on sooner). A worker failure with --max-restarts left does not end the run:
every node is torn down and the next attempt is started on all of them, and watched by this process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from dccli.train import node, plan, store
from dccli.train.model import ACTIVE, FAILED, RUNNING, STARTING, STOPPING, SUCCEEDED, TERMINAL
from dccli.train.verdict import (
    FINAL,
    REFUSED_S,
    NodeView,
    Verdict,
    all_ranks_done,
    decide,
    gone_for_good,
    should_restart,
)

TIMEOUT = 5.0  # seconds without a heartbeat before a node is declared failed (heartbeats every 1 s)
TICK = 0.25
TEARDOWN_GRACE = 3.0
RETRY_S = 900.0


class NodeWatch(threading.Thread):
    """Keeps the latest heartbeat of one node; reconnects when the channel drops."""

    def __init__(self, pool, host, python: str, run_id: str, attempt_dir: str) -> None:
        super().__init__(daemon=True, name=f"watch-{host.name}")
        self.pool, self.host, self.python, self.run_id, self.dir = pool, host, python, run_id, attempt_dir
        now = time.time()
        self.lock = threading.Lock()
        self.view = NodeView(host.name, None, now, now)
        self.stopped = threading.Event()

    def _feed(self, buf: bytearray, data: bytes) -> None:
        buf.extend(data)
        while (nl := buf.find(b"\n")) >= 0:
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            try:
                st = json.loads(line)
            except ValueError:
                continue
            now = time.time()
            with self.lock:
                healthy = st.get("state") == "running" and st.get("supervisor_alive")
                self.view = NodeView(self.host.name, st, now, now if healthy else self.view.alive_at, None)

    def run(self) -> None:
        cmd = node.sup_command(self.python, self.run_id, "watch", self.dir, "1")
        while not self.stopped.is_set():
            buf = bytearray()
            try:
                self.pool.get(self.host).exec(
                    cmd, on_stdout=lambda d, b=buf: self._feed(b, d), keep_output=False
                )
            except Exception as exc:  # any failure to reach the node is data for decide()
                with self.lock:
                    self.view = replace(self.view, error=str(exc))
            with self.lock:
                st = self.view.status
            if st is not None and (st.get("state") in FINAL or not st.get("supervisor_alive", True)):
                return
            self.stopped.wait(1.0)


def watch(run_id: str) -> int:
    from dccli.cli.common import load_inventory
    from dccli.transport.options import ConnectOptions
    from dccli.transport.pool import ConnectionPool

    with store.opened() as db:
        run = store.get(db, run_id)
    if run.latest is None:
        return 1
    inv = load_inventory(Path(run.spec.inventory) if run.spec.inventory else None)
    pool = ConnectionPool(inv, ConnectOptions(connect_timeout=3.0, auth_timeout=5.0, keepalive_s=2))
    try:
        while True:  # one pass per attempt: a restart (--max-restarts) is watched by this same process
            with store.opened() as db:
                run = store.get(db, run_id)
            att = run.latest
            assert att is not None
            hosts = [inv.host(n.host) for n in att.nodes]
            seen = _watch_attempt(pool, run, att, hosts)
            if seen is None:
                return 0  # `train stop` ended the run
            verdict, views = seen
            if should_restart(verdict, run.restarts_left):
                if _restart(pool, inv, run, att, hosts, verdict):
                    continue
                return 0
            _finish(pool, run, att, hosts, verdict, views)
            return 0
    finally:
        pool.close()


def _watch_attempt(pool, run, att, hosts) -> tuple[Verdict, list[NodeView]] | None:
    """Heartbeats of every node of the attempt until decide() has a verdict (None: the run was stopped)."""
    watchers = [
        NodeWatch(pool, h, run.spec.python, run.id, n.dir) for h, n in zip(hosts, att.nodes, strict=True)
    ]
    for w in watchers:
        w.start()
    log(run.id, f"watching {len(watchers)} nodes, attempt {att.number}")
    recorded: dict[str, tuple] = {}
    done_since = None
    try:
        while True:
            time.sleep(TICK)
            views = []
            for w in watchers:
                with w.lock:
                    views.append(w.view)
            _record_nodes(run.id, att.number, views, recorded)
            with store.opened() as db:
                state = store.state_of(db, run.id)
            if state in TERMINAL:
                return None  # `train stop` finished the run
            if state == STOPPING:
                continue  # `train stop` is tearing the run down: exits are expected, not failures
            if done_since is None and all_ranks_done(views, run.spec.nproc_per_node):
                done_since = time.time()
            verdict = decide(
                views, now=time.time(), nproc=run.spec.nproc_per_node, timeout=TIMEOUT, done_since=done_since
            )
            if verdict is not None:
                log(run.id, f"verdict {verdict}")
                return verdict, views
    finally:
        for w in watchers:
            w.stopped.set()


def _finish(pool, run, att, hosts, verdict: Verdict, views: list[NodeView]) -> None:
    """The run's end: record it and tear down whatever still runs on its nodes (a success's stragglers first)."""

    def finish(a, v=verdict):
        return replace(a, failure=v.failure, warning=v.warning)

    if verdict.state == SUCCEEDED:
        # Torchruns still in their exit barrier are stopped BEFORE the run reads SUCCEEDED: whoever follows
        # the run (launch, logs -f) sees its end only once nothing of it is left on any node.
        waiting = {v.host for v in views if (v.status or {}).get("state") not in FINAL}
        if waiting:
            teardown(pool, run, att, [h for h in hosts if h.name in waiting])
    with store.opened() as db:
        moved = store.set_state(
            db, run.id, verdict.state, only_from=(STARTING, RUNNING), attempt_change=finish
        )
        if moved:
            f = verdict.failure
            store.event(
                db,
                run.id,
                f"{verdict.state}"
                + (f": {f.host}: {f.reason}" if f else "")
                + (f" (warning: {verdict.warning})" if verdict.warning else "")
                + (
                    f" (no restart left: {run.restarts} of {run.spec.max_restarts} used)"
                    if verdict.restartable and run.spec.max_restarts
                    else ""
                ),
            )
    if moved and verdict.state != SUCCEEDED:
        teardown(pool, run, att, hosts)


def _restart(pool, inv, run, att, hosts, verdict: Verdict) -> bool:
    """A worker failed and restarts are left: end this attempt, tear every node of it down, and start the
    next attempt on all nodes (launch.restart). True if the new attempt runs and is to be watched."""
    from dccli.train import launch

    f = verdict.failure
    assert f is not None
    number = run.restarts + 1

    def ended(a, v=verdict):
        return replace(a, state=FAILED, ended_at=time.time(), failure=v.failure, warning=v.warning)

    with store.opened() as db:
        # The run stays active (STARTING: its next attempt is being started); the attempt ends FAILED.
        moved = store.set_state(db, run.id, STARTING, only_from=(STARTING, RUNNING), attempt_change=ended)
        if not moved:
            return False  # `train stop` got there first
        store.event(
            db,
            run.id,
            f"attempt {att.number} FAILED: {f.host}: {f.reason}; "
            f"restarting the run (restart {number} of {run.spec.max_restarts})",
        )
    log(run.id, f"attempt {att.number} failed ({f.host}: {f.reason}); restart {number}")
    # Every process of the failed attempt goes before the next one starts: survivors would hold their
    # GPUs and ports, and sit in a collective with the dead worker.
    left = teardown(pool, run, att, hosts)
    with store.opened() as db:
        if left:
            store.set_state(db, run.id, FAILED, only_from=(STARTING,), attempt_change=ended)
            store.event(db, run.id, f"not restarted: the failed attempt is not torn down on {','.join(left)}")
            return False
        run = store.get(db, run.id)
    if run.state != STARTING:
        return False  # `train stop` came in during the teardown
    try:
        running = launch.restart(inv, run, pool, progress=lambda m: log(run.id, m))
    except Exception as exc:
        # A DccliError is recorded already (FAILED, naming the node that could not start); anything else
        # must not leave the run STARTING with no watcher.
        log(run.id, f"restart failed: {exc}")
        with store.opened() as db:
            if store.set_state(db, run.id, FAILED, only_from=(STARTING,)):
                store.event(db, run.id, f"restart failed: {exc}")
        return False
    if not running:
        # `train stop` came in while the new attempt was starting: what started of it is ours to stop.
        with store.opened() as db:
            run = store.get(db, run.id)
        new = run.latest
        assert new is not None
        teardown(pool, run, new, [inv.host(n.host) for n in new.nodes])
        return False
    return True


def _record_nodes(run_id: str, number: int, views, recorded: dict[str, tuple]) -> None:
    """Write each node's exit code, signal and finished ranks to the DB when they change."""
    changes = {}
    for v in views:
        st = v.status or {}
        key = (st.get("state"), st.get("exit_code"), st.get("signal"), tuple(st.get("ranks_done") or ()))
        if st and recorded.get(v.host) != key:
            recorded[v.host] = key
            changes[v.host] = st
    if not changes:
        return

    def apply(a):
        for host, st in changes.items():
            n = a.node(host)
            state = st.get("state") if st.get("state") in FINAL else n.state
            if st.get("state") == "running" and not st.get("supervisor_alive", True):
                state = "lost"
            a = a.with_node(
                replace(
                    n,
                    state=state,
                    exit_code=st.get("exit_code"),
                    signal=st.get("signal"),
                    ranks_done=tuple(st.get("ranks_done") or ()),
                    ended_at=st.get("ended_at"),
                    error=st.get("error"),
                )
            )
        return a

    with store.opened() as db:
        store.update_attempt(db, run_id, number, apply)


def teardown(pool, run, att, hosts) -> list[str]:
    """Stop every node of the attempt; retry the unreachable ones until their processes are gone, for up
    to RETRY_S, except hosts that refuse connections all along (gone_for_good). The hosts left."""
    from dccli.train.stop import stop_nodes

    pending = list(hosts)
    deadline = time.time() + RETRY_S
    failures: dict[str, list[tuple[float, str | None]]] = {h.name: [] for h in hosts}
    gone: list[str] = []
    while pending and time.time() < deadline:
        group = stop_nodes(pool, pending, run.spec.python, run.id, att.nodes[0].dir, grace=TEARDOWN_GRACE)
        results = {o.host: o for o in group.outcomes}

        def note(a, results=results):
            for n in a.nodes:
                o = results.get(n.host)
                if o is not None and o.value is not None:
                    a = a.with_node(o.value.record(n))
            return a

        with store.opened() as db:
            store.update_attempt(db, run.id, att.number, note)
        done = [o.host for o in group.outcomes if o.ok]
        if done:
            log(run.id, f"torn down on {','.join(done)}")
        now = time.time()
        for o in group.outcomes:
            if not o.ok:
                failures[o.host].append((now, o.error))
                if gone_for_good(failures[o.host]):
                    gone.append(o.host)
        pending = [h for h in pending if not results[h.name].ok and h.name not in gone]
        if pending:
            log(
                run.id,
                "retrying teardown on "
                + ", ".join(
                    f"{o.host} ({o.error})" for o in group.outcomes if o.host in {h.name for h in pending}
                ),
            )
            time.sleep(2.0)
    left = [h.name for h in pending] + gone
    with store.opened() as db:
        if not left:
            store.event(db, run.id, "teardown complete")
        else:
            why = (
                f" ({','.join(gone)}: connection refused for {REFUSED_S:.0f}s or more: host down or its sshd "
                f"stopped; `dccli train stop {run.id}` once it answers again)"
                if gone
                else ""
            )
            store.event(db, run.id, f"teardown gave up on {','.join(left)}{why}")
    if gone:
        log(run.id, f"gave up on {','.join(gone)}: connection refused all along")
    return left


def log(run_id: str, message: str) -> None:
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {run_id}: {message}\n")
    sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover - the detached process
    sys.exit(watch(sys.argv[1]))


__all__ = ["ACTIVE", "TIMEOUT", "plan", "watch"]
