"""One backup run at a time per cluster (flock), and dead-man pings for scheduled runs.

The lock is a kernel flock on $DCCLI_HOME/backup/run-<cluster>.lock: it is released when the process dies,
however it dies (kill -9 included), so there is never a stale dccli lock to clear by hand. A second run
exits at once with ExitCode.LOCKED and names the holder's pid. (restic's own repository locks are a
different matter: see backup/hostside.py clear_own_stale_locks.)
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dccli.errors import LockedError


def lock_path(cluster: str) -> Path:
    from dccli.backup.repo import backup_dir

    return backup_dir() / f"run-{re.sub(r'[^A-Za-z0-9_.-]', '-', cluster)}.lock"


@contextmanager
def run_lock(cluster: str) -> Iterator[Path]:
    from dccli import paths
    from dccli.backup.repo import backup_dir

    paths.ensure_home()
    backup_dir().mkdir(mode=0o700, exist_ok=True)
    path = lock_path(cluster)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise LockedError(
                f"another dccli backup run holds the lock for cluster {cluster!r} ({holder}); "
                f"not starting a second one (lock: {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


def ping(url: str | None, event: str, timeout: float = 10.0) -> str | None:
    """Dead-man ping (healthchecks.io style): URL/start, URL on success, URL/fail. Returns a warning or None.

    A ping that fails never fails the backup: the dead-man service notices the silence instead.
    """
    if not url:
        return None
    import urllib.request

    target = url.rstrip("/") + {"start": "/start", "success": "", "failure": "/fail"}[event]
    try:
        with urllib.request.urlopen(urllib.request.Request(target, method="GET"), timeout=timeout) as resp:
            resp.read(1024)
    except Exception as exc:  # network errors of every kind are only a warning
        return f"dead-man ping {event} failed: {type(exc).__name__}: {exc}"
    return None


def ping_url_problem(url: str) -> str | None:
    if not re.match(r"https?://[^\s]+\Z", url):
        return "must be an http:// or https:// URL"
    return None
