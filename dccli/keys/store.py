"""dccli's own key pairs on the control node: $DCCLI_HOME/keys/dccli-<UTC stamp>-<hex>[.pub|-cert.pub].

Generated with ssh-keygen (0600, never a passphrase prompt). The newest active pair is the rotation
target. A pair no host uses any more is moved to keys/archive/ (never deleted by dccli), so an operator
can still reach a host that was restored from an old image.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dccli.errors import DccliError, LockedError, UsageError

KEY_TYPES = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa": ["-t", "ecdsa", "-b", "256"],
    "rsa": ["-t", "rsa", "-b", "3072"],
}
PREFIX = "dccli-"


@dataclass(frozen=True)
class KeyPair:
    name: str
    path: Path  # the private key; .pub and -cert.pub sit next to it
    key_type: str  # as in the .pub line: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa
    blob: bytes
    created_at: float
    archived: bool = False

    @property
    def fingerprint(self) -> str:
        from dccli.transport.hostkeys import fingerprint

        return fingerprint(self.blob)

    @property
    def pub_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pub")

    @property
    def cert_path(self) -> Path:
        return self.path.with_name(self.path.name + "-cert.pub")

    def public_line(self) -> bytes:
        from dccli.keys.authorized import public_line

        return public_line(self.key_type, self.blob, self.name)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "type": self.key_type,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
            "archived": self.archived,
        }


def read_public(path: Path) -> tuple[str, bytes] | None:
    """(type, blob) of a private key: its .pub next to it, else derived by paramiko; None if unreadable."""
    pub = Path(str(path) + ".pub")
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = pub.read_text().split()
        return fields[0], base64.b64decode(fields[1])
    try:
        import paramiko

        key = paramiko.PKey.from_path(str(path))
        return key.get_name(), key.asbytes()
    except Exception:  # any unreadable key simply has no public half for us
        return None


def _stamp_time(name: str) -> float:
    try:
        stamp = name[len(PREFIX) :].split("-")[0]
        whole, _, frac = stamp.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(whole, "%Y%m%dT%H%M%S")) + float(f"0.{frac or 0}")
    except (ValueError, IndexError):
        return 0.0


class KeyStore:
    def __init__(self, home: Path) -> None:
        self.dir = home / "keys"
        self.archive_dir = self.dir / "archive"

    def _pairs_in(self, folder: Path, archived: bool) -> list[KeyPair]:
        if not folder.is_dir():
            return []
        pairs = []
        for pub in sorted(folder.glob(PREFIX + "*.pub")):
            if pub.name.endswith("-cert.pub"):
                continue
            private = pub.with_name(pub.name[: -len(".pub")])
            public = read_public(private)
            if public is None or not private.is_file():
                continue
            pairs.append(
                KeyPair(private.name, private, public[0], public[1], _stamp_time(private.name), archived)
            )
        return pairs

    def pairs(self, include_archived: bool = False) -> list[KeyPair]:
        """Active pairs, oldest first (names sort by their UTC stamp), archived ones after if asked."""
        found = self._pairs_in(self.dir, False)
        if include_archived:
            found += self._pairs_in(self.archive_dir, True)
        return found

    def current(self) -> KeyPair | None:
        active = self.pairs()
        return active[-1] if active else None

    def generate(self, kind: str = "ed25519") -> KeyPair:
        if kind not in KEY_TYPES:
            raise UsageError(f"--type {kind}: expected one of {', '.join(KEY_TYPES)}")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        now = time.time()  # microseconds in the name: names sort in creation order (the newest is current)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        name = f"{PREFIX}{stamp}-{secrets.token_hex(3)}"
        path = self.dir / name
        argv = ["ssh-keygen", "-q", *KEY_TYPES[kind], "-N", "", "-C", name, "-f", str(path)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise DccliError("ssh-keygen not found on the control node (install openssh-client)") from None
        if proc.returncode != 0:
            raise DccliError(f"ssh-keygen failed: {proc.stderr.strip()}")
        os.chmod(path, 0o600)
        public = read_public(path)
        assert public is not None
        return KeyPair(name, path, public[0], public[1], _stamp_time(name))

    def archive(self, pair: KeyPair) -> KeyPair:
        """Move a pair out of active use (kept, 0600, under keys/archive/)."""
        self.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in (pair.path, pair.pub_path, pair.cert_path):
            if path.exists():
                shutil.move(str(path), str(self.archive_dir / path.name))
        return KeyPair(
            pair.name, self.archive_dir / pair.name, pair.key_type, pair.blob, pair.created_at, True
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One key-changing dccli at a time (two rotations racing on one authorized_keys would lose keys)."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(f"{self.dir}: another dccli keys command is running") from None
            yield
        finally:
            os.close(fd)
