"""Executor: bounded fan-out, results as values, exit-code precedence, whole lines only."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from dccli.errors import AuthError, ExitCode, TransportError
from dccli.executor import FAILED, OK, HostOutput, LineSplitter, fan_out


def hosts(n: int):
    return [SimpleNamespace(name=f"n{i:02d}") for i in range(1, n + 1)]


def test_results_in_inventory_order_and_errors_are_values():
    def work(h):
        if h.name == "n02":
            raise TransportError("n02: connect refused")
        if h.name == "n03":
            raise AuthError("n03: key refused")
        if h.name == "n04":
            raise ZeroDivisionError("bug")
        return (OK if h.name != "n05" else FAILED), h.name.upper()

    group = fan_out(hosts(6), work, forks=3)
    assert [o.host for o in group.outcomes] == [f"n{i:02d}" for i in range(1, 7)]
    assert [o.status for o in group.outcomes] == ["ok", "unreachable", "auth", "failed", "failed", "ok"]
    assert group.outcomes[3].error.startswith("n04: internal error: ZeroDivisionError")
    assert group.exit_code() == ExitCode.AUTH
    assert group.not_ok == ["n02", "n03", "n04", "n05"]


def test_exit_code_precedence():
    def only(status):
        return fan_out(hosts(2), lambda h: (status if h.name == "n01" else OK, None))

    assert only(OK).exit_code() == ExitCode.OK
    assert only(FAILED).exit_code() == ExitCode.FAILED
    unreachable = fan_out(hosts(2), lambda h: (_ for _ in ()).throw(TransportError("x")) if h.name == "n01" else (FAILED, None))
    assert unreachable.exit_code() == ExitCode.UNREACHABLE


def test_forks_bound_concurrency():
    active = 0
    peak = 0
    lock = threading.Lock()

    def work(h):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return OK, None

    fan_out(hosts(20), work, forks=4)
    assert peak == 4


def test_line_splitter_emits_whole_lines_only():
    events = []
    s = LineSplitter("n01", "stdout", events.append)
    s.feed(b"par")
    s.feed(b"tial\nsecond\r\nthi")
    assert [e.line for e in events] == ["partial", "second"]
    s.feed(b"rd")
    s.flush()
    assert events[-1] == HostOutput("n01", "stdout", "third")
    s.feed(b"\xff\n")  # invalid UTF-8 never raises
    assert events[-1].line == "\ufffd"
