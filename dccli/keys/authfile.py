"""A remote authorized_keys file over SFTP on an open connection: read it, replace it atomically.

SFTP rather than a shell or the python helper: it runs inside sshd's own session (nothing to exec on
the host, no python3 needed), and every step is a cheap request on the connection we already hold.
Writes go to a temp file in the same directory (exclusive create, the old file's mode and owner set
before any content lands), the file is checked to be unchanged since we read it (another tool editing
it meanwhile makes us stop, not overwrite), then renamed over the old one: sshd sees the old file or
the new one, never a half-written one, and a failed write leaves the old file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from dccli.errors import DccliError

AUTHORIZED_KEYS = ".ssh/authorized_keys"  # relative: SFTP starts in the login's home directory


class AuthorizedKeysError(DccliError):
    """authorized_keys could not be read or replaced (the old file is left as it was)."""


@dataclass(frozen=True)
class Snapshot:
    path: str
    exists: bool
    content: bytes
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno)) + (f" ({exc.strerror})" if exc.strerror else "")
    return str(exc) or type(exc).__name__


SFTP_TIMEOUT_S = 30.0  # a host frozen mid-edit must fail its own rotation, not hang the whole run


@contextlib.contextmanager
def watchdog(conn, seconds: float | None = None, what: str = "SFTP") -> Iterator[None]:
    """Close the connection if the block takes longer than `seconds`.

    paramiko opens the SFTP channel with its own one-hour channel timeout and waits for replies without
    one, so a host whose processes are frozen (the kernel still ACKs) would hold its worker forever.
    Closing the transport wakes every wait on it with an error, which we report as this host's failure.
    """
    seconds = SFTP_TIMEOUT_S if seconds is None else seconds
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        with contextlib.suppress(Exception):
            conn.close()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception:
        if fired.is_set():
            raise AuthorizedKeysError(
                f"{conn.name}: no answer within {seconds:g}s ({what}): host frozen?"
            ) from None
        raise
    finally:
        timer.cancel()


def read(conn, path: str = AUTHORIZED_KEYS) -> Snapshot:
    with watchdog(conn, what=f"reading {_shown(path)}"):
        return _read(conn, path)


def _read(conn, path: str) -> Snapshot:
    sftp = conn.sftp()
    try:
        st = sftp.stat(path)
    except FileNotFoundError:
        return Snapshot(path, False, b"")
    except OSError as exc:
        raise AuthorizedKeysError(f"{conn.name}: cannot stat {_shown(path)}: {_why(exc)}") from None
    try:
        with sftp.open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise AuthorizedKeysError(f"{conn.name}: cannot read {_shown(path)}: {_why(exc)}") from None
    return Snapshot(path, True, bytes(data), st.st_mode & 0o7777, st.st_uid, st.st_gid)


def write(conn, before: Snapshot, content: bytes, validate=None, prefix: str = ".authorized_keys") -> None:
    """Replace the file with `content` if it still holds `before.content`; mode and owner kept.
    `validate(tmp_path)` may raise to stop before the rename (e.g. `sshd -t -f` on a new sshd_config)."""
    if content == before.content and before.exists:
        return
    with watchdog(conn, what=f"replacing {_shown(before.path)}"):
        _write(conn, before, content, validate, prefix)


def _write(conn, before: Snapshot, content: bytes, validate, prefix: str) -> None:
    sftp = conn.sftp()
    folder = posixpath.dirname(before.path) or "."
    if not before.exists:
        with contextlib.suppress(OSError):
            sftp.mkdir(folder, 0o700)  # a first key on a host: ~/.ssh 0700, as ssh-copy-id makes it
    tmp = posixpath.join(folder, f"{prefix}.dccli-{secrets.token_hex(4)}")
    try:
        with sftp.open(tmp, "wx") as handle:  # "x" alone opens read-only in paramiko
            sftp.chmod(tmp, before.mode if before.mode is not None else 0o600)
            if before.uid is not None:
                st = sftp.stat(tmp)
                if (st.st_uid, st.st_gid) != (before.uid, before.gid):
                    sftp.chown(tmp, before.uid, before.gid)  # root editing another user's file
            handle.write(content)
        if validate is not None:
            validate(tmp)
        now = _read(conn, before.path)
        if now.exists != before.exists or now.content != before.content:
            raise AuthorizedKeysError(
                f"{conn.name}: {_shown(before.path)} changed while dccli was editing it; "
                "left as the other writer made it (re-run to retry)"
            )
        sftp.posix_rename(tmp, before.path)
    except DccliError:
        _discard(sftp, tmp)
        raise
    except OSError as exc:
        _discard(sftp, tmp)
        raise AuthorizedKeysError(f"{conn.name}: cannot replace {_shown(before.path)}: {_why(exc)}") from None


def _shown(path: str) -> str:
    return path if path.startswith("/") else "~/" + path


def _discard(sftp, tmp: str) -> None:
    with contextlib.suppress(OSError):
        sftp.remove(tmp)
