"""The watcher's decision: which node failed first, and when a finished run is SUCCEEDED anyway."""

from __future__ import annotations

from dccli.train.verdict import NodeView, decide

NOW = 1000.0


def running(host, heard=NOW, done=()):
    st = {"state": "running", "supervisor_alive": True, "ranks_done": list(done)}
    return NodeView(host, st, heard, heard)


def exited(host, code, sig=None, done=(), at=NOW - 1):
    st = {
        "state": "exited",
        "exit_code": code,
        "signal": sig,
        "ranks_done": list(done),
        "ended_at": at,
        "supervisor_alive": False,
    }
    return NodeView(host, st, NOW, at)


def test_running_run_goes_on():
    assert decide([running("a"), running("b")], now=NOW, nproc=2, timeout=5) is None


def test_silent_node_is_node_fail_naming_it():
    v = decide([running("a"), running("b", heard=NOW - 6)], now=NOW, nproc=2, timeout=5)
    assert v.state == "NODE_FAIL" and v.failure.host == "b" and "frozen" in v.failure.reason


def test_dead_supervisor_is_node_fail():
    dead = NodeView("b", {"state": "running", "supervisor_alive": False, "ranks_done": []}, NOW, NOW - 2)
    v = decide([running("a"), dead], now=NOW, nproc=2, timeout=5)
    assert v.state == "NODE_FAIL" and v.failure.host == "b"


def test_earliest_failure_wins_over_its_echoes():
    v = decide(
        [exited("a", 1, at=NOW - 1), exited("b", None, sig=9, at=NOW - 3)], now=NOW, nproc=2, timeout=5
    )
    assert v.state == "NODE_FAIL" and v.failure.host == "b" and "SIGKILL" in v.failure.reason
    v = decide(
        [exited("a", 1, at=NOW - 4), exited("b", None, sig=9, at=NOW - 3)], now=NOW, nproc=2, timeout=5
    )
    assert v.state == "FAILED" and v.failure.host == "a"


def test_all_exit_zero_is_succeeded():
    v = decide([exited("a", 0, done=(0, 1)), exited("b", 0, done=(2, 3))], now=NOW, nproc=2, timeout=5)
    assert v.state == "SUCCEEDED" and v.warning is None


def test_crash_in_teardown_after_every_rank_finished_is_success_with_a_warning():
    v = decide(
        [exited("a", 0, done=(0, 1)), exited("b", None, sig=6, done=(2, 3))], now=NOW, nproc=2, timeout=5
    )
    assert v.state == "SUCCEEDED" and v.failure is None and "teardown" in v.warning and "b" in v.warning


def test_torchrun_stuck_in_exit_barrier_after_all_ranks_done():
    views = [exited("a", 1, done=(0, 1)), running("b", done=(2, 3))]
    assert decide(views, now=NOW, nproc=2, timeout=5, done_since=NOW - 1, settle=30) is None
    v = decide(views, now=NOW, nproc=2, timeout=5, done_since=NOW - 31, settle=30)
    assert v.state == "SUCCEEDED" and "exit barrier" in v.warning
    # even a node that froze after its ranks finished does not fail a finished run
    frozen = [exited("a", 0, done=(0, 1)), running("b", heard=NOW - 60, done=(2, 3))]
    assert decide(frozen, now=NOW, nproc=2, timeout=5, done_since=NOW - 31).state == "SUCCEEDED"


def test_failed_to_start_is_failed():
    st = {"state": "failed_to_start", "error": "could not start torchrun: No such file", "exit_code": 127}
    v = decide([NodeView("a", st, NOW, NOW), running("b")], now=NOW, nproc=2, timeout=5)
    assert v.state == "FAILED" and "No such file" in v.failure.reason
