"""Merged logs of a run: a generator of LogLine values that ends when the run ends (SkyPilot's shape).

One SSH channel per node streams its node.log and every rank-<r>.log, each from a byte offset
(supervisor.py follow). A channel that drops (connection lost, remote reader killed) is reopened at the
offsets of the last whole lines received, so nothing is lost or shown twice. In follow mode the generator
ends once the run is over in the state DB and every node has delivered its last bytes (a node silent for
DRAIN_S seconds, frozen or unreachable, is left out); when a restart starts a new attempt, the
follow drains the old one the same way and goes on with the new one.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from dccli.train import node, plan, store
from dccli.train.model import RESTART, TERMINAL, RunRecord

DRAIN_S = 10.0
ONCE_TRIES = 3  # without -f, a node that cannot be read is reported after this many tries
POLL_S = 0.5


@dataclass(frozen=True)
class LogLine:
    host: str
    rank: int | None  # global rank; None for torchrun's and the supervisor's own lines
    text: str


@dataclass(frozen=True)
class LogFilter:
    hosts: frozenset[str] | None = None
    ranks: frozenset[int] | None = None
    grep: re.Pattern[str] | None = None

    def keep(self, line: LogLine) -> bool:
        if self.ranks is not None and line.rank not in self.ranks:
            return False
        return self.grep is None or self.grep.search(line.text) is not None


class NodeReader(threading.Thread):
    """Streams one node's logs into the shared queue; reconnects from its offsets when the channel drops."""

    def __init__(
        self,
        pool,
        host,
        python: str,
        run_id: str,
        attempt_dir: str,
        offsets: dict[str, int],
        once: bool,
        out: queue.Queue,
    ) -> None:
        super().__init__(daemon=True, name=f"follow-{host.name}")
        self.pool, self.host, self.python, self.run_id, self.dir = pool, host, python, run_id, attempt_dir
        self.offsets, self.once, self.out = dict(offsets), once, out
        self.finished = threading.Event()
        self.cancel = threading.Event()
        self.last_data = time.monotonic()
        self.reconnects = 0
        self.error: str | None = None
        self.warn: Callable[[str], None] | None = None

    def _feed(self, buf: bytearray, data: bytes) -> None:
        if self.cancel.is_set():
            return
        self.last_data = time.monotonic()
        buf.extend(data)
        while (nl := buf.find(b"\n")) >= 0:
            raw = bytes(buf[:nl])
            del buf[: nl + 1]
            src, rank, text = plan.parse_follow_line(raw)
            # the record is SRC<TAB>line; in the file that line took its bytes plus a newline
            line_bytes = len(raw) - len(src) - 1
            self.offsets[src] = self.offsets.get(src, 0) + line_bytes + 1
            self.out.put(LogLine(self.host.name, rank, text))

    def run(self) -> None:
        try:
            while not self.cancel.is_set():
                where = ",".join(f"{k}:{v}" for k, v in sorted(self.offsets.items())) or "n:0"
                args = ["follow", self.dir, where] + (["--once"] if self.once else [])
                buf = bytearray()
                try:
                    res = self.pool.get(self.host).exec(
                        node.sup_command(self.python, self.run_id, *args),
                        on_stdout=lambda d, b=buf: self._feed(b, d),
                        keep_output=False,
                    )
                    if res.exit_code == 0:
                        return
                    self.error = f"log reader ended with {res.exit_code}"
                except Exception as exc:  # a dropped connection: reopen from the last whole line
                    self.error = str(exc)
                self.reconnects += 1
                if self.reconnects == 1 and self.warn is not None:
                    self.warn(f"{self.host.name}: log stream lost ({self.error}); reconnecting")
                if self.once and self.reconnects >= ONCE_TRIES:
                    if self.warn is not None:
                        self.warn(f"{self.host.name}: logs unavailable: {self.error}")
                    return
                self.cancel.wait(0.5)
        finally:
            self.finished.set()


def follow(
    run: RunRecord,
    pool,
    inv,
    *,
    attempt: int | None = None,
    live: bool = True,
    flt: LogFilter = LogFilter(),
    tail: int | None = None,
    state_poll: Callable[[str], tuple[str | None, int | None]] | None = None,
    warn: Callable[[str], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> Iterator[LogLine]:
    """Lines of the run's attempt (default: the latest), merged as they arrive.

    Following the latest attempt (live, no `attempt`) goes on into the attempts a restart starts
    (--max-restarts), each from its first line, with a `note` between them; an explicit attempt is
    followed to its own end only. state_poll(run_id) -> (run state, newest attempt number)."""
    att = run.latest if attempt is None else next((a for a in run.attempts if a.number == attempt), None)
    if att is None:
        from dccli.errors import UsageError

        raise UsageError(
            f"run {run.id} has no attempt {attempt}"
            if attempt is not None
            else f"run {run.id} has not started on any node yet ({run.state})"
        )
    nodes = [n for n in att.nodes if flt.hosts is None or n.host in flt.hosts]
    hosts = [inv.host(n.host) for n in nodes]
    offsets: dict[str, dict[str, int]] = {n.host: {} for n in nodes}
    if tail is not None or not live:
        backlog = _read_all(run, pool, hosts, att.nodes[0].dir, offsets, warn)
        for h in hosts:
            lines = [x for x in backlog[h.name] if flt.keep(x)]
            yield from (lines if tail is None else tail_each(lines, tail))
        if not live:
            return
    poll = state_poll or _db_progress
    while True:
        yield from _live(run, pool, hosts, att.nodes[0].dir, offsets, flt, poll, att.number, warn)
        if attempt is not None:
            return
        with store.opened() as db:
            now = store.get(db, run.id)
        nxt = next((a for a in now.attempts if a.number > att.number), None)
        if nxt is None:
            return  # the run is over
        if note is not None:
            note(restart_note(now, att.number, nxt.number))
        att = nxt
        nodes = [n for n in att.nodes if flt.hosts is None or n.host in flt.hosts]
        hosts = [inv.host(n.host) for n in nodes]
        offsets = {n.host: {} for n in nodes}


def restart_note(run: RunRecord, ended: int, started: int) -> str:
    """`run tr-..: attempt 0 FAILED (node02: torchrun exited 3); restart 1 of 2: attempt 1`."""
    old = next((a for a in run.attempts if a.number == ended), None)
    new = next((a for a in run.attempts if a.number == started), None)
    why = f" ({old.failure.host}: {old.failure.reason})" if old is not None and old.failure else ""
    head = f"run {run.id}: attempt {ended} {old.state if old else 'ended'}{why}"
    if new is not None and new.trigger == RESTART:
        return f"{head}; restart {run.restart_index(started)} of {run.spec.max_restarts}: attempt {started}"
    return f"{head}; attempt {started}"


def tail_each(lines: list[LogLine], n: int) -> list[LogLine]:
    """The last n lines of each stream (torchrun's own, each rank's): lines carry no timestamps, so the
    streams of a node are not interleaved in time, and a per-node tail would show one rank only."""
    streams: dict[int | None, list[LogLine]] = {}
    for line in lines:
        streams.setdefault(line.rank, []).append(line)
    return [
        x
        for _, ls in sorted(streams.items(), key=lambda kv: -1 if kv[0] is None else kv[0])
        for x in (ls[-n:] if n else [])
    ]


def _db_progress(run_id: str) -> tuple[str | None, int | None]:
    with store.opened() as db:
        return store.state_of(db, run_id), store.latest_attempt(db, run_id)


def _read_all(
    run, pool, hosts: Sequence, d: str, offsets: dict[str, dict[str, int]], warn=None
) -> dict[str, list[LogLine]]:
    q: queue.Queue = queue.Queue()
    readers = [NodeReader(pool, h, run.spec.python, run.id, d, {}, True, q) for h in hosts]
    for r in readers:
        r.warn = warn
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    by_host: dict[str, list[LogLine]] = {h.name: [] for h in hosts}
    while not q.empty():
        line = q.get()
        by_host[line.host].append(line)
    for r in readers:
        offsets[r.host.name] = r.offsets
    return by_host


def _live(
    run,
    pool,
    hosts: Sequence,
    d: str,
    offsets: dict[str, dict[str, int]],
    flt: LogFilter,
    state_of: Callable[[str], tuple[str | None, int | None]],
    number: int,
    warn=None,
) -> Iterator[LogLine]:
    """Lines of attempt `number` until it is over: the run ended, or a newer attempt (a restart) began."""
    q: queue.Queue = queue.Queue()
    readers = [NodeReader(pool, h, run.spec.python, run.id, d, offsets[h.name], False, q) for h in hosts]
    for r in readers:
        r.warn = warn
    for r in readers:
        r.start()
    ended = False
    next_poll = 0.0
    try:
        while True:
            try:
                line = q.get(timeout=0.2)
            except queue.Empty:
                line = None
            if line is not None:
                if flt.keep(line):
                    yield line
                continue
            now = time.monotonic()
            if not ended and now >= next_poll:
                next_poll = now + POLL_S
                state, latest = state_of(run.id)
                ended = state in TERMINAL or (latest is not None and latest > number)
            if not ended:
                continue
            # Over: wait for every node's last bytes, but not for a node that has gone silent (frozen,
            # unreachable); a node still delivering a backlog is never cut off.
            pending = [r for r in readers if not r.finished.is_set()]
            if q.empty() and all(now - r.last_data > DRAIN_S for r in pending):
                return
    finally:
        for r in readers:
            r.cancel.set()
