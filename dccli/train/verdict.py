"""What a run's state is, given what each node last said: the watcher's decision, as a pure function.

A node that finished every one of its ranks is fine even if torchrun then crashed during teardown (the
300 s exit barrier, a store closing under it): that is a warning, never a failure or a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dccli.train.model import FAILED, NODE_FAIL, SUCCEEDED, Failure

FINAL = ("exited", "failed_to_start")
SETTLE_S = 30.0  # after the last rank finished, torchruns that have not exited by then are stuck
# Teardown gives up on a host that refused every connection for this long (and this many tries):
# nothing listens on its SSH port, because it is down, rebooting (which ends its processes anyway) or
# gone for good (a lab torn down). A host that does not answer at all (frozen, cut off) is retried
# for much longer: it may come back with the run's processes still on it.
REFUSED_S = 20.0
REFUSED_TRIES = 4
SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


@dataclass(frozen=True)
class NodeView:
    host: str
    status: dict[str, Any] | None  # the node's latest heartbeat (supervisor.py watch), None before the first
    heard_at: float  # wall-clock time of the latest heartbeat (or when watching began)
    alive_at: float  # the last time the node was known healthy
    error: str | None = None  # the latest connection error, if any


@dataclass(frozen=True)
class Verdict:
    state: str
    failure: Failure | None = None
    warning: str | None = None
    # The first failure is a worker failure (a torchrun exited non-zero on a node that still answers):
    # what --max-restarts restarts. A node lost, killed or frozen (NODE_FAIL) or a torchrun that could
    # not even start would fail again the same way on the same hosts, so those are never restarted.
    restartable: bool = False


def should_restart(verdict: Verdict, restarts_left: int) -> bool:
    """Whether the watcher restarts the whole run as a new attempt instead of ending it."""
    return verdict.state == FAILED and verdict.restartable and restarts_left > 0


def node_ok(status: dict[str, Any], nproc: int) -> bool:
    return status.get("exit_code") == 0 or len(status.get("ranks_done") or ()) >= nproc


def signal_name(num: int | None) -> str:
    return SIGNALS.get(num or 0, f"signal {num}")


def _how(st: dict[str, Any]) -> str:
    return f"exit {st.get('exit_code')}" if st.get("signal") is None else signal_name(st.get("signal"))


def all_ranks_done(views: Sequence[NodeView], nproc: int) -> bool:
    return bool(views) and sum(len((v.status or {}).get("ranks_done") or ()) for v in views) >= nproc * len(
        views
    )


def decide(
    views: Sequence[NodeView],
    *,
    now: float,
    nproc: int,
    timeout: float,
    done_since: float | None = None,
    settle: float = SETTLE_S,
) -> Verdict | None:
    """None while the run goes on; else its end: the earliest failure wins (later ones are its echoes).

    done_since: when every rank was first seen finished; torchruns get `settle` seconds from then to
    exit on their own before the run is declared SUCCEEDED and the stragglers are torn down.
    """
    warnings: list[str] = []
    if all_ranks_done(views, nproc):
        waiting = [v for v in views if (v.status or {}).get("state") not in FINAL]
        if waiting and (done_since is None or now - done_since < settle):
            return None
        # Every rank of the world finished its script: whatever torchrun does now (a crash in teardown,
        # waiting out its exit barrier for a crashed peer) cannot make the training unfinished.
        for v in views:
            st = v.status or {}
            if st.get("state") not in FINAL:
                warnings.append(
                    f"{v.host}: torchrun still running {settle:.0f}s after every rank had finished (stuck in its exit barrier?); torn down"
                )
            elif st.get("exit_code") != 0:
                warnings.append(
                    f"{v.host}: torchrun ended with {_how(st)} after every rank had finished "
                    "(a crash during teardown); the run is not restarted"
                )
        return Verdict(SUCCEEDED, None, "; ".join(warnings) or None)
    failures: list[tuple[Failure, bool]] = []  # (failure, a worker failure: restartable)
    finished = 0
    for v in views:
        st = v.status
        if st is not None and st.get("state") in FINAL:
            finished += 1
            if node_ok(st, nproc):
                if st.get("exit_code") != 0:
                    warnings.append(
                        f"{v.host}: torchrun ended with {_how(st)} after its ranks had finished "
                        "(a crash during teardown)"
                    )
                continue
            at = float(st.get("ended_at") or v.heard_at)
            if st.get("state") == "failed_to_start":
                failures.append(
                    (Failure(v.host, at, st.get("error") or "torchrun did not start", FAILED), False)
                )
            elif st.get("signal"):
                failures.append(
                    (Failure(v.host, at, f"torchrun killed by {signal_name(st['signal'])}", NODE_FAIL), False)
                )
            else:
                failures.append((Failure(v.host, at, f"torchrun exited {st.get('exit_code')}", FAILED), True))
        elif st is not None and st.get("state") == "running" and not st.get("supervisor_alive", True):
            failures.append(
                (
                    Failure(
                        v.host,
                        v.alive_at,
                        "the node's supervisor died (its processes are torn down)",
                        NODE_FAIL,
                    ),
                    False,
                )
            )
        elif now - v.heard_at > timeout:
            why = f"no heartbeat for {now - v.heard_at:.1f}s: host frozen or cut off"
            if v.error:
                why += f" ({v.error})"
            failures.append((Failure(v.host, v.heard_at, why, NODE_FAIL), False))
    if failures:
        first, restartable = min(failures, key=lambda f: f[0].at)
        return Verdict(first.state, first, "; ".join(warnings) or None, restartable)
    if finished == len(views) and views:
        return Verdict(SUCCEEDED, None, "; ".join(warnings) or None)
    return None


def refused(error: str | None) -> bool:
    """A connection refused: the host answered, and nothing listens on its SSH port."""
    return error is not None and "Connection refused" in error


def gone_for_good(
    errors: Sequence[tuple[float, str | None]], *, tries: int = REFUSED_TRIES, span: float = REFUSED_S
) -> bool:
    """errors: (when, error) of a host's consecutive failed teardown tries, oldest first. True once its
    latest `tries` or more were all refused, over at least `span` seconds."""
    streak: list[float] = []
    for at, error in reversed(errors):
        if not refused(error):
            break
        streak.append(at)
    return len(streak) >= tries and streak[0] - streak[-1] >= span
