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
from functools import lru_cache
from typing import Any

from dccli.backup import restic
from dccli.backup.profile import LOCAL, BackupConfig, Profile, Repository
from dccli.backup.repo import (
    BackupError,
    StorageAccess,
    access_for,
    control_connection,
    ensure_password,
    maintenance_target,
    setup_storage,
)
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
    access = access_for(repo, where, None) if target is not None else StorageAccess(repo.path or repo.url)
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


def prepare_repository(
    pool, inventory, repo: Repository, password: str
) -> tuple[StorageAccess | None, tuple[str, ...] | None]:
    """Authorize access and initialise the repository when it does not exist yet.

    Returns the storage access (sftp) and the lock files present now (None: unknown, e.g. rest:).
    """
    storage = setup_storage(pool, inventory, repo)
    lock_ids = storage.lock_ids if storage is not None else None
    if repo.kind == LOCAL:
        import os

        from dccli.backup.repo import local_lock_ids

        os.makedirs(os.path.dirname(repo.path.rstrip("/")) or "/", exist_ok=True)
        lock_ids = local_lock_ids(repo)
    marker = initialized_marker(repo)
    # Known to exist: skip a restic run (a KDF and a connection) on every backup. For sftp the storage host's
    # key is part of what is known: a rebuilt storage host (or lab) at the same address holds no repository.
    identity = repo.url + (f" {storage.known_hosts.strip()}" if storage is not None and storage.known_hosts else "")
    if marker.exists() and marker.read_text().strip() == identity:
        return storage, lock_ids
    (config,) = maintenance(pool, inventory, repo, password, [["cat", "config", "--no-lock"]], timeout=120)
    if config["rc"] != 0:
        if not restic.is_not_initialized(config["stderr"]):
            raise BackupError(f"repository {repo.name}: {config['stderr'].strip().splitlines()[-1:]}")
        (init,) = maintenance(pool, inventory, repo, password, [["init"]], timeout=300)
        if init["rc"] != 0:
            raise BackupError(f"repository {repo.name}: restic init failed: {init['stderr'].strip()[-300:]}")
    marker.write_text(f"{identity}\n")
    return storage, lock_ids


def initialized_marker(repo: Repository):
    from dccli.backup.repo import backup_dir

    return backup_dir() / f"{repo.name}.initialized"


def backup_host(
    conn,
    host_name: str,
    profile: Profile,
    repo: Repository,
    access: StorageAccess,
    password: str,
    run_id: str,
    on_progress: Callable[[Progress], None] | None = None,
    install: bool = True,
    lock_ids: tuple[str, ...] | None = None,
) -> HostBackup:
    from dccli.remote.session import Step, run_steps

    args: dict[str, Any] = {
        "argv": restic.backup_argv(profile, host_name, run_id),
        "paths": list(profile.paths),
        "step_id": "backup",
        "lock_ids": None if lock_ids is None else list(lock_ids),
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

    t0 = time.monotonic()
    results = run_steps(
        conn,
        restic_steps(access, password, Step("backup", "restic_backup", args), install=install),
        timeout=None,
        on_event=on_event,
        extra=host_code(),
    )
    base = {"host": host_name, "profile": profile.name, "repository": repo.name}
    prep, step = results[0], results[1]
    if not prep.ok:
        return HostBackup(
            **base,
            status=FAILED,
            errors=(prep.error or "restic not usable",),
            duration_s=time.monotonic() - t0,
        )
    if not step.ok:
        return HostBackup(
            **base,
            status=FAILED,
            errors=(step.error or "backup step failed",),
            duration_s=time.monotonic() - t0,
        )
    return host_result(base, step.data, time.monotonic() - t0)


def host_result(base: dict[str, Any], data: dict[str, Any], duration_s: float) -> HostBackup:
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
        last = (data.get("stderr") or "").strip().splitlines()[-1:] or [f"exit {data.get('rc')}"]
        errors.append(f"restic exited {data.get('rc')}: {last[0]}")
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
    )


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
    import concurrent.futures as cf

    from dccli.errors import DccliError

    runs: list[ProfileRun] = []
    for profile in profiles:
        repo = config.repositories[profile.repository]
        hosts = [inventory.host(n) for n in profile.hosts if selected is None or n in selected]
        if not hosts:
            continue
        password = ensure_password(repo)
        # The repository is prepared (storage host: key, lock list; init when new) while the hosts'
        # connections open: one handshake's worth of wall time saved on every run.
        prep_pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dccli-backup-prep")
        prep = prep_pool.submit(prepare_repository, pool, inventory, repo, password)
        prep_pool.shutdown(wait=False)

        def work(host, profile=profile, repo=repo, password=password, prep=prep):
            if repo.kind == LOCAL and host.connection != "local":
                raise BackupError(
                    f"{host.name}: repository {repo.name} is a path on the control node; only "
                    "connection: local hosts can write it (use sftp: or rest: for remote hosts)"
                )
            conn = pool.get(host)
            try:
                storage, lock_ids = prep.result()
            except DccliError as exc:  # the repository is unusable: the host's backup fails with the reason
                raise BackupError(f"{host.name}: repository {repo.name}: {exc}") from None
            result = backup_host(
                conn,
                host.name,
                profile,
                repo,
                access_for(repo, host.name, storage),
                password,
                run_id,
                on_progress,
                install,
                lock_ids,
            )
            if result.errors and restic.is_not_initialized(" ".join(result.errors)):
                initialized_marker(repo).unlink(missing_ok=True)  # repository gone: check (and init) next run
            return result.status, result

        group = fan_out(hosts, work, forks=forks or config.concurrency, on_event=on_event)
        setup_error = None
        if prep.done() and prep.exception() is not None:
            setup_error = str(prep.exception())
        runs.append(ProfileRun(profile.name, group, repo.name, setup_error))
    return RunReport(run_id, tuple(runs))
