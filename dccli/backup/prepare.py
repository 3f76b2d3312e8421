"""A repository's preparation for `backup run`, side by side with the hosts' sessions.

What restic on a host needs before it starts: the repository's URL, and for sftp the dedicated key and
the storage host's verified key (both known once the storage host's connection is up), and a repository
that exists. What it can learn later, while its backup runs: which lock files were there before the run
(the stale-lock clearing looks only at those). So the preparation answers in two steps:

- `access()`: as soon as hosts may start restic. A repository known to exist (the `.initialized` marker:
  a hash of its URL and, for sftp, of the storage host's key and our public key) needs no restic run
  first; an unknown one gets `restic cat config` (and `init` when missing) before any host starts.
- `lock_ids()`: the lock listing (sftp: one command on the storage host, which also re-adds our key to
  its authorized_keys; rest: one HTTP request; a control-node path: listdir), usually ready ~50 ms later.

Hosts start their helper session at once and get both answers as late stdin lines (sessions.py), so
neither the storage host's command nor the helper's start-up waits for the other.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from dccli.backup import restic
from dccli.backup.profile import LOCAL, SFTP, Repository, rest_url_parts
from dccli.backup.repo import (
    BackupError,
    StorageAccess,
    access_for,
    authorize_storage,
    backup_dir,
    ensure_key,
    local_lock_ids,
    storage_access,
)


def initialized_marker(repo: Repository) -> Path:
    return backup_dir() / f"{repo.name}.initialized"


def _identity(repo: Repository, storage: StorageAccess | None) -> str:
    """What the marker vouches for, hashed: the URL (a rest password included) never lands in the file.
    For sftp the storage host's key and our public key are part of it: a rebuilt storage host (or lab)
    at the same address holds no repository, and a new key is not authorized there yet."""
    parts = [repo.url]
    if storage is not None and storage.known_hosts:
        parts += [storage.known_hosts.strip(), ensure_key(repo)[1]]
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def known_to_exist(repo: Repository, storage: StorageAccess | None) -> bool:
    marker = initialized_marker(repo)
    try:
        return marker.read_text().strip() == _identity(repo, storage)
    except OSError:
        return False


def remember_exists(repo: Repository, storage: StorageAccess | None) -> None:
    initialized_marker(repo).write_text(_identity(repo, storage) + "\n")


def forget_exists(repo: Repository) -> None:
    """The repository is gone (a host's restic said so): check, and init, on the next run."""
    initialized_marker(repo).unlink(missing_ok=True)


def ensure_initialized(pool, inventory, repo: Repository, password: str) -> None:
    """`restic cat config`, then `restic init` when there is no repository yet (where maintenance runs)."""
    from dccli.backup.sessions import maintenance

    (config,) = maintenance(pool, inventory, repo, password, [["cat", "config", "--no-lock"]], timeout=120)
    if config["rc"] == 0:
        return
    if not restic.is_not_initialized(config["stderr"]):
        raise BackupError(restic.fatal_line(config["stderr"]))
    (init,) = maintenance(pool, inventory, repo, password, [["init"]], timeout=300)
    if init["rc"] != 0:
        raise BackupError(f"restic init failed: {restic.fatal_line(init['stderr'])}")


def rest_lock_ids(repo: Repository, timeout: float = 10.0) -> tuple[str, ...] | None:
    """The lock files of a rest-server repository, from the control node: one GET of the REST protocol's
    v2 listing (rest-server, rclone serve restic). None when it cannot be read: hosts then list the locks
    with restic themselves. The password goes in an Authorization header, never in a printed URL."""
    import base64
    import json
    import re
    import urllib.request

    parts = rest_url_parts(repo.url)
    request = urllib.request.Request(
        parts.base + "locks/", headers={"Accept": "application/vnd.x.restic.rest.v2"}
    )
    if parts.user is not None:
        token = base64.b64encode(f"{parts.user}:{parts.password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            listing = json.loads(response.read(1 << 20))
    except (OSError, ValueError):  # HTTP and network errors, a proxy's HTML page: unknown, not empty
        return None
    names = [x.get("name") if isinstance(x, dict) else x for x in listing or []]
    return tuple(n for n in names if isinstance(n, str) and re.fullmatch(r"[0-9a-f]{64}", n))


class Preparation:
    """One repository's preparation in its own thread; hosts block on `access()` and `lock_ids()`."""

    def __init__(self, pool, inventory, repo: Repository, password: str) -> None:
        self.repo = repo
        self._pool, self._inventory, self._password = pool, inventory, password
        self._storage: StorageAccess | None = None
        self._lock_ids: tuple[str, ...] | None = None
        self._key_added = False
        self._error: str | None = None
        self._granted = False  # hosts may start restic (set before _access_ready, never after a failure)
        self._access_ready = threading.Event()
        self._locks_ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dccli-backup-prep-{repo.name}", daemon=True)
        self._thread.start()

    # ---- what hosts ask -----------------------------------------------------------------------------

    def access(self, host_name: str) -> StorageAccess:
        """How `host_name` opens the repository; raises BackupError when the preparation failed first."""
        self._access_ready.wait()
        if not self._granted:
            raise BackupError(f"repository {self.repo.name}: {self._error or 'not prepared'}")
        return access_for(self.repo, host_name, self._storage)

    def lock_ids(self) -> tuple[tuple[str, ...] | None, bool]:
        """(lock files present before the run or None when unknown, whether our key was just authorized)."""
        self._locks_ready.wait()
        return self._lock_ids, self._key_added

    @property
    def error(self) -> str | None:
        """The preparation's failure once it finished (hosts may have backed up anyway: the access was
        known, only the storage host's command failed)."""
        self._thread.join()
        return self._error

    # ---- the work -----------------------------------------------------------------------------------

    def _grant(self, storage: StorageAccess | None) -> None:
        self._storage, self._granted = storage, True
        self._access_ready.set()

    def _run(self) -> None:
        from dccli.errors import DccliError

        try:
            self._prepare()
        except DccliError as exc:
            self._error = str(exc)
        except Exception as exc:  # a bug must not leave every host waiting forever
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._access_ready.set()
            self._locks_ready.set()

    def _prepare(self) -> None:
        repo, pool, inventory = self.repo, self._pool, self._inventory
        if repo.kind == SFTP:
            storage = storage_access(pool, inventory, repo)
            warm = known_to_exist(repo, storage)
            if warm:
                self._grant(storage)  # hosts start restic now; our key line is re-added meanwhile
            state = authorize_storage(pool, inventory, repo)
            self._lock_ids, self._key_added = state.lock_ids, state.key_added and warm
            self._locks_ready.set()
            if not warm:
                ensure_initialized(pool, inventory, repo, self._password)
                remember_exists(repo, storage)
                self._grant(storage)
            return
        if repo.kind == LOCAL:
            os.makedirs(os.path.dirname((repo.path or repo.url).rstrip("/")) or "/", exist_ok=True)
        if not known_to_exist(repo, None):
            ensure_initialized(pool, inventory, repo, self._password)
            remember_exists(repo, None)
        self._grant(None)
        self._lock_ids = local_lock_ids(repo) if repo.kind == LOCAL else rest_lock_ids(repo)
