"""`dccli backup verify`: restic check with a rotating --read-data-subset n/N (state in the DB), so N runs
read every pack of the repository. Stale locks of killed runs are cleared first, by their own hosts."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

from dccli.backup import records, restic
from dccli.backup.profile import BackupConfig, Repository
from dccli.backup.repo import BackupError, access_for, ensure_password, setup_storage
from dccli.backup.sessions import host_code, maintenance, restic_steps


@dataclass(frozen=True)
class VerifyResult:
    repository: str
    subset: str
    ok: bool
    output: str
    locks_removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "read_data_subset": self.subset,
            "ok": self.ok,
            "output": self.output,
            "stale_locks_removed": list(self.locks_removed),
        }


def clear_stale_locks(pool, inventory, config: BackupConfig, repo: Repository, password: str) -> list[str]:
    """Ask each host named by a lock in the repository to remove its own dead locks (only it can prove the
    PID gone: the PID lives in that host's PID namespace). Hosts that cannot be reached keep theirs."""
    import json

    from dccli.executor import fan_out
    from dccli.remote.session import Step, run_steps

    (listed,) = maintenance(pool, inventory, repo, password, [["list", "locks", "--no-lock"]], timeout=120)
    ids = [x.strip() for x in listed.get("stdout", "").splitlines() if x.strip()]
    if not ids:
        return []
    cats = maintenance(
        pool,
        inventory,
        repo,
        password,
        [["cat", "lock", i, "--no-lock"] for i in ids],
        timeout=60,
        no_retry=True,
    )
    named = set()
    for cat in cats:
        try:
            named.add(json.loads(cat.get("stdout") or "{}").get("hostname"))
        except ValueError:
            continue
    hosts = [h for h in inventory.hosts if h.name in named]
    storage = setup_storage(pool, inventory, repo) if any(h.name != repo.host for h in hosts) else None

    def work(host):
        access = access_for(repo, host.name, storage)
        res = run_steps(
            pool.get(host),
            restic_steps(access, password, Step("unlock", "restic_unlock_own", {})),
            timeout=300,
            extra=host_code(),
        )
        data = res[1].data if len(res) > 1 and res[1].ok else {}
        return "ok", [f"{x['id']} ({x['hostname']} pid {x['pid']})" for x in (data or {}).get("removed", [])]

    group = fan_out(hosts, work, forks=config.concurrency)
    return [lock for o in group.outcomes if o.ok for lock in (o.value or [])]


def verify(pool, inventory, config: BackupConfig, repo: Repository, subsets: int) -> VerifyResult:
    from dccli.state import db

    password = ensure_password(repo, create=False)
    removed = clear_stale_locks(pool, inventory, config, repo, password)
    with closing(db.connect()) as conn:
        n = restic.next_subset(records.last_subset(conn, inventory.cluster, repo.name), subsets)
    argv = restic.check_argv(n, subsets)
    (res,) = maintenance(pool, inventory, repo, password, [argv], timeout=None)
    ok = res["rc"] == 0
    with closing(db.connect()) as conn:
        records.record_verify(conn, inventory.cluster, repo.name, n, subsets, "ok" if ok else "failed")
    text = (res.get("stdout") or "") + ("\n" + res["stderr"] if not ok and res.get("stderr") else "")
    return VerifyResult(repo.name, f"{n}/{subsets}", ok, text.strip(), tuple(removed))


@dataclass(frozen=True)
class PruneResult:
    repository: str
    profiles: tuple[str, ...]
    removed_snapshots: int
    ok: bool
    output: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "profiles": list(self.profiles),
            "removed_snapshots": self.removed_snapshots,
            "ok": self.ok,
            "output": self.output,
        }


def prune(pool, inventory, config: BackupConfig, repo: Repository, profiles: list[str]) -> PruneResult:
    """Forget by each profile's retention policy, then one prune of the repository."""
    import json

    password = ensure_password(repo, create=False)
    clear_stale_locks(pool, inventory, config, repo, password)
    argvs = []
    for name in profiles:
        policy = config.profiles[name].retention
        if policy.empty:
            raise BackupError(
                f"profile {name}: no retention policy (keep_last/daily/weekly/monthly): "
                "refusing to forget anything"
            )
        argvs.append(restic.forget_argv(name, policy))
    results = maintenance(pool, inventory, repo, password, [*argvs, ["prune"]], timeout=None)
    removed = 0
    for res in results[:-1]:
        if res["rc"] != 0:
            return PruneResult(repo.name, tuple(profiles), removed, False, _prune_failure(res["stderr"]))
        for group in json.loads(res["stdout"] or "[]") or []:
            removed += len(group.get("remove") or [])
    last = results[-1]
    ok = last["rc"] == 0
    return PruneResult(
        repo.name,
        tuple(profiles),
        removed,
        ok,
        last["stdout"].strip()[-1500:] if ok else _prune_failure(last["stderr"]),
    )


def _prune_failure(stderr: str) -> str:
    """What went wrong, in a line an operator can act on (restic's own text follows)."""
    if "403 Forbidden" in stderr:
        return (
            "the server refused to delete (HTTP 403 Forbidden): an append-only rest-server keeps every "
            "snapshot; forget and prune where deleting is allowed (a server without --append-only). restic: "
            + restic.fatal_line(stderr)
        )
    return stderr.strip()[-500:]
