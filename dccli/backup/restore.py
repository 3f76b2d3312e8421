"""`dccli backup ls` and `dccli backup restore`: snapshots of dccli's profiles, restored to a host or here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dccli.backup import restic
from dccli.backup.profile import LOCAL, SFTP, BackupConfig, Repository
from dccli.backup.repo import (
    BackupError,
    access_for,
    control_connection,
    ensure_password,
    setup_storage,
)
from dccli.backup.sessions import host_code, maintenance, restic_steps
from dccli.errors import UsageError


def repositories_for(config: BackupConfig, profile: str | None) -> list[Repository]:
    names = (
        [config.profile(profile).repository]
        if profile
        else list(dict.fromkeys(p.repository for p in config.profiles.values()))
    )
    return [config.repositories[n] for n in names]


def list_snapshots(
    pool, inventory, config: BackupConfig, profile: str | None, host: str | None
) -> list[tuple[str, restic.Snapshot]]:
    out = []
    for repo in repositories_for(config, profile):
        password = ensure_password(repo, create=False)
        (res,) = maintenance(
            pool, inventory, repo, password, [restic.snapshots_argv(host, profile)], timeout=300
        )
        if res["rc"] != 0:
            raise BackupError(f"repository {repo.name}: restic snapshots: {res['stderr'].strip()[-300:]}")
        out += [(repo.name, s) for s in restic.parse_snapshots(res["stdout"])]
    return out


@dataclass(frozen=True)
class RestoreResult:
    host: str
    where: str  # the host restored to, or "control"
    target: str
    snapshot: str
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "restored_to": self.where,
            "target": self.target,
            "snapshot": self.snapshot,
            "ok": self.ok,
            "message": self.message,
        }


def restore(
    pool,
    inventory,
    config: BackupConfig,
    snapshot: str,
    host: str,
    target: str,
    includes: list[str],
    profile: str | None,
    to_control: bool,
) -> RestoreResult:
    from dccli.remote.session import Step, run_steps

    if host not in inventory:
        raise UsageError(f"--host {host!r} is not an inventory host")
    if not target.startswith("/"):
        raise UsageError(f"--target {target!r} must be an absolute path")
    if profile is None:
        owners = [p for p in config.profiles.values() if host in p.hosts]
        if not owners:
            raise UsageError(f"no backup profile covers host {host!r}")
        profile_obj = owners[0]
    else:
        profile_obj = config.profile(profile)
    repo = config.repositories[profile_obj.repository]
    password = ensure_password(repo, create=False)
    if to_control:
        conn, where = control_connection(), "control"
        if repo.kind == SFTP:
            storage = setup_storage(pool, inventory, repo)
            assert storage is not None
            access = storage
        else:
            access = access_for(repo, "control", None)
    else:
        if repo.kind == LOCAL and inventory.host(host).connection != "local":
            raise UsageError(f"repository {repo.name} is on the control node: restore with --to-control")
        conn, where = pool.get(inventory.host(host)), host
        storage = setup_storage(pool, inventory, repo) if repo.kind == SFTP and host != repo.host else None
        access = access_for(repo, host, storage)
    argv = restic.restore_argv(snapshot, target, host, profile if profile else None, includes)
    results = run_steps(
        conn,
        restic_steps(access, password, Step("restore", "restic_cmd", {"argv": argv})),
        timeout=None,
        extra=host_code(),
    )
    if not results[0].ok:
        return RestoreResult(host, where, target, snapshot, False, results[0].error or "restic not usable")
    data = results[1].data if results[1].ok else {"rc": None, "stderr": results[1].error}
    ok = data.get("rc") == 0
    message = (
        (data.get("stdout") or "").strip().splitlines()[-1:] if ok else (data.get("stderr") or "").strip()
    )
    return RestoreResult(
        host, where, target, snapshot, ok, message[0] if ok and message else str(message)[-400:]
    )
