"""`dccli run`: one shell command on many hosts, output streamed as whole lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dccli.executor import FAILED, OK, EventSink, GroupOutcome, LineSplitter, fan_out


@dataclass(frozen=True)
class CommandResult:
    host: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
        }


def run_command(
    hosts: list,
    command: str,
    pool,
    *,
    forks: int = 64,
    command_timeout: float | None = None,
    on_event: EventSink | None = None,
    stream: bool = True,
) -> GroupOutcome[CommandResult]:
    """Run `command` through each host's login shell (as ssh does); a host's result is a value."""
    import time

    emit = on_event or (lambda _e: None)

    def work(host) -> tuple[str, CommandResult]:
        t0 = time.monotonic()
        conn = pool.get(host)
        out = LineSplitter(host.name, "stdout", emit)
        err = LineSplitter(host.name, "stderr", emit)
        res = conn.exec(
            command,
            on_stdout=out.feed if stream else None,
            on_stderr=err.feed if stream else None,
            timeout=command_timeout,
        )
        out.flush()
        err.flush()
        error = None
        if res.timed_out:
            error = f"{host.name}: command timed out after {command_timeout:g}s"
        elif res.exit_code is None:
            error = f"{host.name}: command ended without an exit status (killed by a signal?)"
        result = CommandResult(
            host=host.name,
            exit_code=res.exit_code,
            stdout=res.stdout.decode("utf-8", "replace"),
            stderr=res.stderr.decode("utf-8", "replace"),
            duration_s=time.monotonic() - t0,
            error=error,
        )
        return (OK if res.exit_code == 0 else FAILED), result

    return fan_out(hosts, work, forks=forks, on_event=on_event)


def as_results(group: GroupOutcome[CommandResult]) -> list[CommandResult]:
    """Every host's CommandResult, with connection failures filled in as results with an error."""
    results = []
    for o in group.outcomes:
        if o.value is not None:
            results.append(o.value)
        else:
            results.append(CommandResult(o.host, None, "", "", o.duration_s, o.error or o.status))
    return results
