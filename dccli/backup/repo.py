"""Repository secrets and access: the password file, the dedicated sftp key, and where restic runs.

- The password lives in $DCCLI_HOME/backup/<repo>.password (0600, created on first use). It reaches a host
  inside the helper's job on the SSH session's stdin and restic reads it from a pipe: never argv, env or logs.
- sftp repositories: restic on host A reaches the storage host B with OpenSSH. dccli generates a dedicated
  ed25519 key per repository ($DCCLI_HOME/backup/<repo>.key), installs its public half in B's
  authorized_keys as `restrict,command="internal-sftp"` (the key can do SFTP and nothing else), and hands
  A the private key plus B's host key (as dccli verified it) for the session only, via
  `-o sftp.command=ssh -i KEY -o StrictHostKeyChecking=yes -o UserKnownHostsFile=KH ... -s sftp`.
  Nothing persistent lands on A; A's own ~/.ssh is untouched; B's identity is checked strictly.
- Maintenance (init, snapshots, check, forget/prune) of an sftp repository runs ON the storage host with the
  repository as a local path: no SFTP round trips for prune. A control-node path runs on the control node.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dccli import paths
from dccli.backup.profile import LOCAL, REST, SFTP, Repository
from dccli.errors import DccliError, UsageError

CONTROL = "control"  # the name the control node gets in messages


class BackupError(DccliError):
    pass


def backup_dir() -> Path:
    return paths.dccli_home() / "backup"


def password_path(repo: Repository) -> Path:
    return backup_dir() / f"{repo.name}.password"


def key_path(repo: Repository) -> Path:
    return backup_dir() / f"{repo.name}.key"


def ensure_password(repo: Repository, create: bool = True) -> str:
    """The repository password; a new random one (0600) if none exists yet and `create`."""
    path = password_path(repo)
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise UsageError(f"{path}: mode {mode:o} lets others read the repository password; chmod 600 it")
        text = path.read_text().strip("\n")
        if not text:
            raise UsageError(f"{path}: empty password file")
        return text
    if not create:
        raise UsageError(f"{path}: no password file for repository {repo.name!r}")
    paths.ensure_home()
    backup_dir().mkdir(mode=0o700, exist_ok=True)
    import secrets  # here, not at the top: only a repository's first use needs it (3 ms of imports)

    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def ensure_key(repo: Repository) -> tuple[str, str]:
    """(private key text, public key line) of the repository's dedicated sftp key, generated once."""
    path = key_path(repo)
    if not path.exists():
        paths.ensure_home()
        backup_dir().mkdir(mode=0o700, exist_ok=True)
        proc = subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"dccli-backup-{repo.name}",
                "-f",
                str(path),
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise BackupError(f"ssh-keygen failed: {proc.stderr.strip()}")
    os.chmod(path, 0o600)
    return path.read_text(), Path(f"{path}.pub").read_text().strip()


def authorized_line(public_key: str) -> str:
    return f'restrict,command="internal-sftp" {public_key}'


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def sftp_command(user: str, address: str, port: int) -> list[str]:
    """OpenSSH for restic's sftp.command; {key} and {known_hosts} become the session's temp files.

    restic splits sftp.command like a shell would; every element here is free of spaces and quotes
    (inventory users and addresses are validated, the temp paths come from mkdtemp).
    """
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        "{key}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ServerAliveInterval=15",
        "-p",
        str(port),
        f"{user}@{address}",
        "-s",
        "sftp",
    ]


@dataclass(frozen=True)
class StorageAccess:
    """What a host needs to open the repository: the URL restic sees and, for sftp, key + host key.

    The URL reaches restic through a pipe (--repository-file), so a rest-server password in it is never
    in argv or the environment; `scrub` lists the strings hosts replace by *** in restic's output.
    """

    url: str
    key: str | None = None
    known_hosts: str | None = None
    command: tuple[str, ...] = ()
    scrub: tuple[str, ...] = ()

    def access_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"repo": self.url, "scrub": list(self.scrub)}
        if self.key is not None:
            args["sftp"] = {"key": self.key, "known_hosts": self.known_hosts, "command": list(self.command)}
        return args

    def prepare_args(self, password: str, install: bool = True) -> dict[str, Any]:
        return {"password": password, "install": install, **self.access_args()}


@dataclass(frozen=True)
class StorageState:
    """What the storage host's preparation found: the lock files present (only these can be stale locks
    of a killed run) and whether dccli's key line had to be added to authorized_keys just now."""

    lock_ids: tuple[str, ...]
    key_added: bool


def storage_access(pool, inventory, repo: Repository) -> StorageAccess:
    """For an sftp repository: the dedicated key and the storage host's key as dccli verified it (strict
    known_hosts, by the pool's connection). Connects; runs nothing on the storage host."""
    host = inventory.host(repo.host)
    conn = pool.get(host)
    private, _ = ensure_key(repo)
    server_key = conn.transport.get_remote_server_key()  # already verified strictly by the pool
    known = f"{known_hosts_name(host.address, host.port)} {server_key.get_name()} {server_key.get_base64()}\n"
    command = tuple(sftp_command(host.user, host.address, host.port))
    return StorageAccess(repo.url, private, known, command)


def authorize_storage(pool, inventory, repo: Repository) -> StorageState:
    """Authorize the dedicated key on the storage host (idempotent), create the repository's parent
    directory and list its lock files: one command on the storage host."""
    host = inventory.host(repo.host)
    conn = pool.get(host)
    _, public = ensure_key(repo)
    line = authorized_line(public)
    parent = os.path.dirname(repo.path.rstrip("/")) or "/"
    script = (
        "umask 077 && mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && "
        f"{{ grep -qxF {shlex.quote(line)} ~/.ssh/authorized_keys || "
        f"{{ printf '%s\\n' {shlex.quote(line)} >> ~/.ssh/authorized_keys && echo --added--; }}; }}"
        f" && mkdir -p {shlex.quote(parent)}"
        f" && echo --locks-- && {{ ls -1 {shlex.quote(repo.path.rstrip('/') + '/locks')} 2>/dev/null || true; }}"
    )
    out = conn.exec(script, timeout=60)
    if out.exit_code != 0:
        raise BackupError(
            f"{host.name}: could not authorize the backup key: "
            f"{out.stderr.decode('utf-8', 'replace').strip()}"
        )
    head, _, tail = out.stdout.decode("utf-8", "replace").partition("--locks--")
    locks = tuple(x for x in tail.split() if re.fullmatch(r"[0-9a-f]{64}", x))
    return StorageState(locks, "--added--" in head)


def setup_storage(pool, inventory, repo: Repository) -> StorageAccess | None:
    """For an sftp repository: authorize the key on the storage host, then the access for other hosts.
    None for other kinds. (backup run does the two halves side by side: dccli/backup/prepare.py.)"""
    if repo.kind != SFTP:
        return None
    authorize_storage(pool, inventory, repo)
    return storage_access(pool, inventory, repo)


def local_lock_ids(repo: Repository) -> tuple[str, ...] | None:
    """Lock files of a control-node repository (None when it cannot be read)."""
    try:
        names = os.listdir(os.path.join(repo.path or repo.url, "locks"))
    except FileNotFoundError:
        return ()
    except OSError:
        return None
    return tuple(n for n in names if re.fullmatch(r"[0-9a-f]{64}", n))


def rest_scrub(repo: Repository) -> tuple[str, ...]:
    """A rest URL's password as written (percent-encoded) and decoded: what hosts must never print."""
    if repo.kind != REST:
        return ()
    from urllib.parse import unquote

    userinfo = re.match(r"rest:https?://([^/]*)@", repo.url)
    if not userinfo or ":" not in userinfo[1]:
        return ()
    raw = userinfo[1].split(":", 1)[1]
    return tuple(dict.fromkeys(x for x in (raw, unquote(raw)) if x))


def access_for(repo: Repository, host_name: str, storage: StorageAccess | None) -> StorageAccess:
    """How `host_name` opens `repo`: the storage host itself uses the local path (no SFTP to itself)."""
    if repo.kind == SFTP:
        if host_name == repo.host:
            return StorageAccess(repo.path or "")
        assert storage is not None
        return storage
    if repo.kind == LOCAL:
        return StorageAccess(repo.path or repo.url)
    return StorageAccess(repo.url, scrub=rest_scrub(repo))


def maintenance_target(repo: Repository, inventory):
    """Where maintenance runs: the storage host for sftp, else the control node (a local connection)."""
    if repo.kind == SFTP:
        return inventory.host(repo.host)
    return None


def control_connection():
    from dccli.transport.local import LocalConnection

    return LocalConnection(CONTROL)
