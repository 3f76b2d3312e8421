"""Control-side calls to one node's supervisor (dccli/train/supervisor.py), each one SSH exec.

The supervisor is a file on the node (pushed by SFTP), so later commands from any dccli process —
`logs -f`, the watcher, `stop` — reach a run's files by path, with nothing kept in memory here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from dccli.errors import DccliError, TransportError
from dccli.train import plan


class NodeError(DccliError):
    """A node refused or failed a step of a run (start, stop)."""


@lru_cache(maxsize=1)
def supervisor_source() -> bytes:
    return resources.files("dccli.train").joinpath("supervisor.py").read_bytes()


def push_supervisor(conn, run_id: str) -> None:
    conn.put_bytes(supervisor_source(), plan.supervisor_path(run_id), mode=0o700)


def sup_command(python: str, run_id: str, *args: str, run_env: bool = False) -> str:
    argv = [python, plan.supervisor_path(run_id), *args]
    if run_env:
        # Only the supervisor (and so torchrun and the ranks) carries the run id in its environment:
        # that is how `stop` finds every process of the run through /proc, and nothing else.
        argv = ["env", f"DCCLI_RUN_ID={run_id}", *argv]
    return plan.remote(argv)


def _json(conn, command: str, what: str, timeout: float) -> dict | list:
    res = conn.exec(command, timeout=timeout)
    text = res.stdout.decode("utf-8", "replace").strip().splitlines()
    if res.timed_out:
        raise TransportError(f"{conn.name}: {what} timed out after {timeout:g}s")
    try:
        return json.loads(text[-1])
    except (IndexError, ValueError):
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NodeError(
            f"{conn.name}: {what} failed: {err[-1] if err else f'exit {res.exit_code}'}"
        ) from None


def start(conn, python: str, run_id: str, attempt_dir: str) -> dict:
    out = _json(
        conn, sup_command(python, run_id, "start", attempt_dir, run_env=True), "starting the supervisor", 60
    )
    if not isinstance(out, dict) or not out.get("ok"):
        raise NodeError(f"{conn.name}: {out.get('error') if isinstance(out, dict) else out}")
    return out


def stop(conn, python: str, run_id: str, attempt_dir: str, grace: float) -> dict:
    out = _json(
        conn,
        sup_command(python, run_id, "stop", attempt_dir, run_id, f"{grace:g}"),
        "stopping the run",
        grace + 30,
    )
    assert isinstance(out, dict)
    return out


def procs(conn, python: str, run_id: str) -> list[dict]:
    out = _json(conn, sup_command(python, run_id, "procs", run_id), "listing processes", 30)
    assert isinstance(out, list)
    return out
