"""Control side of the helper protocol: stream the helper and a job over ONE session, read events.

The bootstrap reads exactly the helper's byte count from stdin, so the job can follow on the same
stream; nothing is installed on the host and nothing sensitive appears in argv.
"""

from __future__ import annotations

import binascii
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from dccli.errors import DccliError


class HelperError(DccliError):
    """The helper could not run on the host (no python3, protocol broken)."""


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepResult:
    id: str
    ok: bool
    data: Any = None
    error: str | None = None
    duration_s: float = 0.0


def event_data(event: dict[str, Any]) -> Any:
    """A result event's data; big ones come zlib-compressed in "data_z" (helper.py emit)."""
    if "data_z" in event:
        return json.loads(zlib.decompress(binascii.a2b_base64(event["data_z"])))
    return event.get("data")


@lru_cache(maxsize=8)
def helper_source(extra: bytes = b"") -> bytes:
    """The core, each steps/*.py (capabilities' step kinds, in name order), `extra`, then the call to main().

    `extra` is step code only some sessions need (run_steps(..., extra=...)), so it does not grow every
    session's payload (dccli/backup/hostside.py: restic steps, sent only with backup sessions).
    """
    root = resources.files("dccli.remote")
    parts = [root.joinpath("helper.py").read_bytes()]
    steps = sorted((f for f in root.joinpath("steps").iterdir() if f.name.endswith(".py") and f.name != "__init__.py"),
                   key=lambda f: f.name)
    parts += [b"\n# --- steps/" + f.name.encode() + b"\n" + f.read_bytes() for f in steps]
    if extra:
        parts.append(b"\n# --- extra\n" + extra)
    parts.append(b"\nmain()\n")
    return b"".join(parts)


@lru_cache(maxsize=8)
def _payload(extra: bytes = b"") -> tuple[str, bytes]:
    packed = zlib.compress(helper_source(extra), 9)
    # Read exactly the compressed helper; the JSON job stays on stdin for the helper's own readline.
    # -I -S: the helper is stdlib only, so skip `site` (.pth files, user site) and PYTHON* variables:
    # a third of python's start-up time on every host, and the host's environment cannot redirect imports.
    command = (
        "python3 -I -S -c 'import sys,zlib;"
        f"exec(compile(zlib.decompress(sys.stdin.buffer.read({len(packed)})),\"dccli-helper\",\"exec\"))'"
    )
    return command, packed


def run_steps(conn, steps: Iterable[Step], *, timeout: float | None = 300,
              on_result: Callable[[StepResult], None] | None = None,
              on_event: Callable[[dict[str, Any]], None] | None = None,
              extra: bytes = b"") -> list[StepResult]:
    """Run steps in order in one remote session; returns one StepResult per step.

    on_event receives every other event a step emits (e.g. backup progress), as a dict.
    """
    steps = list(steps)
    command, packed = _payload(extra)
    job = json.dumps({"steps": [{"id": s.id, "kind": s.kind, "args": s.args} for s in steps]}).encode() + b"\n"
    results: list[StepResult] = []
    buf = bytearray()

    def feed(data: bytes) -> None:
        buf.extend(data)
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            try:
                event = json.loads(line)
            except ValueError:
                continue  # noise from a login script: not ours
            if event.get("ev") == "result":
                res = StepResult(str(event.get("id")), bool(event.get("ok")), event_data(event),
                                 event.get("error"), float(event.get("duration_s") or 0.0))
                results.append(res)
                if on_result:
                    on_result(res)
            elif on_event is not None and isinstance(event, dict):
                on_event(event)

    outcome = conn.exec(command, stdin=packed + job, on_stdout=feed, timeout=timeout, keep_output=False)
    if outcome.exit_code == 127 or (outcome.exit_code not in (0, None) and not results):
        err = outcome.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = err[-1] if err else f"exit {outcome.exit_code}"
        raise HelperError(f"{conn.name}: remote helper did not run (needs python3): {reason}")
    if outcome.timed_out:
        raise HelperError(f"{conn.name}: remote helper timed out after {timeout}s")
    if len(results) < len(steps):
        err = outcome.stderr.decode("utf-8", "replace").strip().splitlines()
        how = f"exit {outcome.exit_code}" if outcome.exit_code is not None else "no exit status"
        raise HelperError(
            f"{conn.name}: remote helper stopped after {len(results)} of {len(steps)} steps ({how}"
            + (f": {err[-1][:300]})" if err else ")")
        )
    return results
