"""`dccli backup run`: each selected host runs restic in ONE helper session; results are values.

Per profile: prepare the repository once (authorize the sftp key on the storage host, init if new),
then fan out over the profile's hosts with the configured concurrency. A host whose source is missing
or unreadable, or whose restic reported any error, is `failed` even when restic exited 0.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dccli.backup import restic
from dccli.backup.prepare import Preparation, forget_exists
from dccli.backup.profile import LOCAL, SFTP, BackupConfig, Profile, Repository
from dccli.backup.repo import BackupError, ensure_password
from dccli.backup.sessions import FollowedConnection, host_code
from dccli.executor import FAILED, OK, GroupOutcome, fan_out


@dataclass(frozen=True)
class Progress:
    """A host's progress, from restic's status lines (about twice a second)."""

    host: str
    percent: float
    bytes_done: int
    total_bytes: int


@dataclass(frozen=True)
class HostBackup:
    host: str
    profile: str
    repository: str
    status: str  # ok | failed
    snapshot_id: str | None = None
    files: int = 0
    bytes_added: int = 0
    bytes_processed: int = 0
    duration_s: float = 0.0
    incomplete: tuple[str, ...] = ()  # checkpoint directories skipped: no completeness marker
    errors: tuple[str, ...] = ()
    locks_removed: tuple[str, ...] = ()
    restic_s: float = 0.0  # restic's own total_duration: the rest of duration_s is dccli's
    # Where the host's time went, in seconds (connect_s, session_s, access_wait_s, restic_s: the restic
    # process on the host, ...): bench/backup.py prints them next to restic run by hand.
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) if self.errors else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "profile": self.profile,
            "repository": self.repository,
            "status": self.status,
            "snapshot_id": self.snapshot_id,
            "files": self.files,
            "bytes_added": self.bytes_added,
            "bytes_processed": self.bytes_processed,
            "duration_s": round(self.duration_s, 3),
            "incomplete_checkpoints": list(self.incomplete),
            "errors": list(self.errors),
            "stale_locks_removed": list(self.locks_removed),
            "restic_duration_s": round(self.restic_s, 3),
            "timings": {k: round(v, 4) for k, v in self.timings},
        }


@dataclass(frozen=True)
class ProfileRun:
    profile: str
    group: GroupOutcome
    repository: str
    setup_error: str | None = None


@dataclass(frozen=True)
class RunReport:
    run_id: str
    runs: tuple[ProfileRun, ...] = field(default_factory=tuple)

    def exit_code(self) -> int:
        codes = [int(r.group.exit_code()) for r in self.runs]
        codes += [1 for r in self.runs if r.setup_error]
        for code in (130, 4, 3, 1):
            if code in codes:
                return code
        return 0


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def backup_host(
    conn,
    host_name: str,
    profile: Profile,
    repo: Repository,
    prep: Preparation,
    password: str,
    run_id: str,
    on_progress: Callable[[Progress], None] | None = None,
    install: bool = True,
) -> HostBackup:
    """One host's backup in ONE helper session. The session starts at once; the repository access and
    the lock listing follow on its stdin when `prep` has them (prepare.py), so the helper's start-up
    overlaps the storage host's preparation instead of waiting for it."""
    import json

    from dccli.remote.session import Step, run_steps

    args: dict[str, Any] = {
        "argv": restic.backup_argv(profile, host_name, run_id),
        "paths": list(profile.paths),
        "step_id": "backup",
        "lock_ids_follow": True,
    }
    if profile.checkpoints is not None:
        args["checkpoints"] = profile.checkpoints.to_dict()

    def on_event(ev: dict[str, Any]) -> None:
        if on_progress and ev.get("ev") == "progress":
            on_progress(
                Progress(
                    host_name,
                    float(ev.get("percent") or 0),
                    int(ev.get("bytes_done") or 0),
                    int(ev.get("total_bytes") or 0),
                )
            )

    waited: dict[str, float] = {}

    def access_line() -> bytes:
        t = time.monotonic()
        try:
            late: dict[str, Any] = prep.access(host_name).access_args()
        except BackupError as exc:
            late = {"error": str(exc)}
        waited["access_wait_s"] = time.monotonic() - t
        return json.dumps(late).encode() + b"\n"

    def locks_line() -> bytes:
        ids, key_added = prep.lock_ids()
        return (
            json.dumps({"lock_ids": None if ids is None else list(ids), "key_added": key_added}).encode()
            + b"\n"
        )

    steps = [
        Step("prepare", "restic_prepare", {"password": password, "install": install, "follow": True}),
        Step("backup", "restic_backup", args),
        Step("cleanup", "backup_cleanup", {}),
    ]
    t0 = time.monotonic()
    results = run_steps(
        FollowedConnection(conn, [access_line, locks_line]),
        steps,
        timeout=None,
        on_event=on_event,
        extra=host_code(),
    )
    duration = time.monotonic() - t0
    base = {"host": host_name, "profile": profile.name, "repository": repo.name}
    prep_result, step = results[0], results[1]
    if not prep_result.ok:
        error = (prep_result.error or "restic not usable").removeprefix("RuntimeError: ")
        return HostBackup(**base, status=FAILED, errors=(error,), duration_s=duration)
    if not step.ok:
        return HostBackup(
            **base, status=FAILED, errors=(step.error or "backup step failed",), duration_s=duration
        )
    timings = {
        "session_s": duration,
        "access_wait_s": waited.get("access_wait_s", 0.0),
        "prepare_step_s": prep_result.duration_s,
        **(step.data.get("timings") or {}),
    }
    return host_result(base, step.data, duration, timings)


def host_result(
    base: dict[str, Any], data: dict[str, Any], duration_s: float, timings: dict[str, float] | None = None
) -> HostBackup:
    """The verdict for one host from the step's data: pure, so unit tests cover every partial case."""
    incomplete = tuple(data.get("incomplete") or ())
    locks = data.get("locks") or {}
    removed = tuple(f"{x['id']} ({x['hostname']} pid {x['pid']})" for x in locks.get("removed", []))
    if data.get("missing"):
        errors = tuple(f"source {p}" for p in data["missing"])
        return HostBackup(**base, status=FAILED, incomplete=incomplete, errors=errors, duration_s=duration_s)
    summary = restic.parse_backup_json(data.get("stdout", ""), data.get("stderr", ""))
    errors = list(summary.errors)
    if data.get("rc") != 0:
        why = restic.fatal_line(data.get("stderr") or "")
        errors.append(f"restic exited {data.get('rc')}" + ("" if why in errors else f": {why}"))
    if summary.snapshot_id is None and not errors:
        errors.append("restic reported no snapshot")
    return HostBackup(
        **base,
        status=FAILED if errors else OK,
        snapshot_id=summary.snapshot_id,
        files=summary.files,
        bytes_added=summary.data_added,
        bytes_processed=summary.bytes_processed,
        duration_s=duration_s,
        incomplete=incomplete,
        errors=tuple(errors),
        locks_removed=removed,
        restic_s=summary.duration_s,
        timings=tuple((timings or {}).items()),
    )


def first_hosts(
    inventory, config: BackupConfig, profiles: list[Profile], selected: set[str] | None, forks: int | None
):
    """The hosts the run contacts at once: the first profile's first `forks` hosts and its storage host
    (later ones wait for a free slot, possibly longer than sshd waits for a login)."""
    for profile in profiles:
        names = [n for n in profile.hosts if selected is None or n in selected]
        if names:
            repo = config.repositories[profile.repository]
            first = [inventory.host(n) for n in names[: forks or config.concurrency]]
            return first + ([inventory.host(repo.host)] if repo.kind == SFTP else [])
    return []


def run_profiles(
    inventory,
    pool,
    config: BackupConfig,
    profiles: list[Profile],
    selected: set[str] | None,
    run_id: str,
    *,
    forks: int | None = None,
    on_event: Callable[[Any], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    install: bool = True,
) -> RunReport:
    """Back up each profile's hosts (those in `selected` when given), profile after profile."""
    import dataclasses

    runs: list[ProfileRun] = []
    for profile in profiles:
        repo = config.repositories[profile.repository]
        hosts = [inventory.host(n) for n in profile.hosts if selected is None or n in selected]
        if not hosts:
            continue
        password = ensure_password(repo)
        # The repository is prepared (storage host: key, lock list; init when new) while the hosts'
        # connections open and their helpers start (prepare.py).
        prep = Preparation(pool, inventory, repo, password)

        def work(host, profile=profile, repo=repo, password=password, prep=prep):
            if repo.kind == LOCAL and host.connection != "local":
                raise BackupError(
                    f"{host.name}: repository {repo.name} is a path on the control node; only "
                    "connection: local hosts can write it (use sftp: or rest: for remote hosts)"
                )
            t = time.monotonic()
            conn = pool.get(host)
            connect_s = time.monotonic() - t
            result = backup_host(conn, host.name, profile, repo, prep, password, run_id, on_progress, install)
            if result.errors and restic.is_not_initialized(" ".join(result.errors)):
                forget_exists(repo)  # repository gone: check (and init) next run
            result = dataclasses.replace(result, timings=(("connect_s", connect_s), *result.timings))
            return result.status, result

        group = fan_out(hosts, work, forks=forks or config.concurrency, on_event=on_event)
        runs.append(ProfileRun(profile.name, group, repo.name, prep.error))
    return RunReport(run_id, tuple(runs))
