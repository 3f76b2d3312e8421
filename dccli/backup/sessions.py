"""Helper sessions for restic: the backup step code, the step list around a restic command, maintenance
runs where the repository is local, and sessions whose stdin carries late answers.

Every session is ONE SSH session per host (docs/ARCHITECTURE.md); the backup step kinds
(dccli/backup/hostside.py) are appended to the helper only for these sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from dccli.backup.profile import Repository
from dccli.backup.repo import (
    BackupError,
    StorageAccess,
    access_for,
    control_connection,
    maintenance_target,
)


@lru_cache(maxsize=1)
def host_code() -> bytes:
    """The backup step kinds (hostside.py), appended to the helper only for backup sessions."""
    from importlib import resources

    return resources.files("dccli.backup").joinpath("hostside.py").read_bytes()


def restic_steps(access: StorageAccess, password: str, *steps: Any, install: bool = True) -> list:
    from dccli.remote.session import Step

    return [
        Step("prepare", "restic_prepare", access.prepare_args(password, install)),
        *steps,
        Step("cleanup", "backup_cleanup", {}),
    ]


def maintenance(
    pool,
    inventory,
    repo: Repository,
    password: str,
    argv_list: list[list[str]],
    timeout: float | None = None,
    no_retry: bool = False,
) -> list[dict[str, Any]]:
    """Run restic commands where the repository is local (storage host or control node), one session."""
    from dccli.remote.session import Step, run_steps

    target = maintenance_target(repo, inventory)
    conn = control_connection() if target is None else pool.get(target)
    where = "control" if target is None else target.name
    access = access_for(repo, where, None)
    steps = restic_steps(
        access,
        password,
        *[
            Step(f"cmd{i}", "restic_cmd", {"argv": a, "timeout": timeout, "no_retry": no_retry})
            for i, a in enumerate(argv_list)
        ],
    )
    results = run_steps(conn, steps, timeout=None, extra=host_code())
    if not results[0].ok:
        raise BackupError(f"{where}: {results[0].error}")
    out = []
    for res in results[1:-1]:
        if not res.ok:
            raise BackupError(f"{where}: {res.error}")
        out.append(res.data)
    return out


class FollowedConnection:
    """A host's connection whose helper sessions get more stdin after the job: one JSON line per callable,
    sent when the callable returns. A step reads each line when it needs it.

    Why: the session (SSH channel, python3 start, helper compile: ~25 ms) should not wait for what only
    the repository's preparation knows (the storage host's key, its lock listing). The helper starts at
    once; the answers follow on the same stdin, still never in argv or on disk.
    """

    def __init__(self, conn, lines: Sequence[Callable[[], bytes]]) -> None:
        self._conn = conn
        self._lines = tuple(lines)
        self.name = conn.name

    def exec(self, command: str, *, stdin: bytes | None = None, **options: Any):
        def parts() -> Iterable[bytes]:
            if stdin:
                yield stdin
            for line in self._lines:
                yield line()

        return self._conn.exec(command, stdin=parts(), **options)
