"""Finding and killing the lab's processes through /proc (cheap; no psutil import needed)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

TAG_VAR = "DCCLI_LAB_TAG"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Start time of pid in clock ticks since boot (unique together with the pid), None if gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def alive(pid: int | None, start: int | None = None) -> bool:
    """True if pid runs (not a zombie) and, when start is given, is still the same process."""
    if not pid:
        return False
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return start is None or int(fields[19]) == start


def tagged_pids(tag: str) -> list[int]:
    """Every live process whose environment carries DCCLI_LAB_TAG=tag (the lab's host inits)."""
    if not tag:
        return []
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry))
    return found


def kill_all(pids: Iterable[tuple[int, int | None]]) -> list[int]:
    """SIGKILL each (pid, start) that is still that process; SIGKILL also ends stopped processes."""
    killed = []
    for pid, start in pids:
        if alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def wait_gone(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """Wait until no pid is alive; returns the ones still alive at the deadline."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [pid for pid in pending if alive(pid)]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return pending


def host_inits(tag: str, host_name: str) -> list[int]:
    """Every live init of one lab host (normally one; two only after a lost lab.json update)."""
    needle = f"host={host_name}".encode()
    found = []
    for pid in tagged_pids(tag):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in argv:
            found.append(pid)
    return found


def namespace_members(init_pid: int) -> list[int]:
    """Every process in the PID namespace of this init, seen from the control node (the init included);
    empty when the init is gone."""
    try:
        target = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == target:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids
