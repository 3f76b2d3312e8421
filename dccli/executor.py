"""Fan-out over hosts with a bounded pool. Per-host results and errors are values, never lost.

The core emits events (host started / a line of output / host finished) to one callback; front
ends in output/ draw them. Ctrl-C stops handing out hosts and returns what finished, marking the rest.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dccli.errors import AuthError, DccliError, ExitCode, TransportError

T = TypeVar("T")

OK, FAILED, UNREACHABLE, AUTH, INTERRUPTED = "ok", "failed", "unreachable", "auth", "interrupted"


@dataclass(frozen=True)
class HostStarted:
    host: str


@dataclass(frozen=True)
class HostOutput:
    host: str
    stream: str  # "stdout" | "stderr"
    line: str  # one whole line, without its newline


@dataclass(frozen=True)
class HostFinished:
    outcome: HostOutcome


@dataclass(frozen=True)
class HostOutcome(Generic[T]):
    host: str
    status: str  # ok | failed | unreachable | auth | interrupted
    value: T | None = None
    error: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class GroupOutcome(Generic[T]):
    outcomes: tuple[HostOutcome[T], ...]
    interrupted: bool = False
    wall_s: float = 0.0

    def by_status(self, status: str) -> list[str]:
        return [o.host for o in self.outcomes if o.status == status]

    @property
    def not_ok(self) -> list[str]:
        return [o.host for o in self.outcomes if o.status != OK]

    def exit_code(self) -> ExitCode:
        """The most serious fate decides: interrupted > key/auth refused > unreachable > failed."""
        statuses = {o.status for o in self.outcomes}
        if self.interrupted or INTERRUPTED in statuses:
            return ExitCode.INTERRUPTED
        if AUTH in statuses:
            return ExitCode.AUTH
        if UNREACHABLE in statuses:
            return ExitCode.UNREACHABLE
        if FAILED in statuses:
            return ExitCode.FAILED
        return ExitCode.OK


EventSink = Callable[[Any], None]


@dataclass
class LineSplitter:
    """Turns a host's byte stream into whole lines, so two hosts' text never share a line."""

    host: str
    stream: str
    sink: EventSink
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        self._buf.extend(data)
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            self.sink(HostOutput(self.host, self.stream, line.decode("utf-8", "replace").rstrip("\r")))

    def flush(self) -> None:
        if self._buf:
            line = bytes(self._buf)
            self._buf.clear()
            self.sink(HostOutput(self.host, self.stream, line.decode("utf-8", "replace")))


def classify(exc: BaseException) -> str:
    if isinstance(exc, AuthError):
        return AUTH
    if isinstance(exc, TransportError):
        return UNREACHABLE
    return FAILED


def fan_out(
    hosts: Sequence[Any],
    work: Callable[[Any], tuple[str, T]],
    *,
    forks: int = 64,
    on_event: EventSink | None = None,
) -> GroupOutcome[T]:
    """Run work(host) -> (status, value) on every host, at most `forks` at once, in inventory order.

    A DccliError from work becomes that host's outcome (unreachable/auth/failed); any other
    exception is a bug, reported for that host rather than lost.
    """
    emit = on_event or (lambda _e: None)
    emit_lock = threading.Lock()

    def locked_emit(event: Any) -> None:
        with emit_lock:
            emit(event)

    def one(host: Any) -> HostOutcome[T]:
        name = host.name
        locked_emit(HostStarted(name))
        t0 = time.monotonic()
        try:
            status, value = work(host)
            outcome = HostOutcome(name, status, value, None, time.monotonic() - t0)
        except DccliError as exc:
            outcome = HostOutcome(name, classify(exc), None, str(exc), time.monotonic() - t0)
        except Exception as exc:
            outcome = HostOutcome(name, FAILED, None, f"{name}: internal error: {type(exc).__name__}: {exc}",
                                  time.monotonic() - t0)
        locked_emit(HostFinished(outcome))
        return outcome

    start = time.monotonic()
    results: dict[str, HostOutcome[T]] = {}
    interrupted = False
    executor = cf.ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts) or 1)),
                                     thread_name_prefix="dccli-host")
    futures = {executor.submit(one, h): h for h in hosts}
    try:
        pending = set(futures)
        while pending:
            # A bounded wait keeps the main thread responsive to Ctrl-C.
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                outcome = fut.result()
                results[outcome.host] = outcome
    except KeyboardInterrupt:
        interrupted = True
        for fut in futures:
            fut.cancel()
    finally:
        executor.shutdown(wait=not interrupted, cancel_futures=True)
    ordered: list[HostOutcome[T]] = []
    for host in hosts:
        ordered.append(results.get(host.name) or HostOutcome(host.name, INTERRUPTED, None, "interrupted"))
    return GroupOutcome(tuple(ordered), interrupted, time.monotonic() - start)
