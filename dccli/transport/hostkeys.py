"""Strict host-key checking against dccli's known_hosts, the user's, and the inventory's.

Never AutoAddPolicy: an unknown key is refused until `dccli hosts trust` records it, and a key that
differs from a recorded one of the same type is refused with its own exit code (4).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dccli.errors import HostKeyError


def fingerprint(key_blob: bytes) -> str:
    """The SHA256 fingerprint exactly as OpenSSH prints it (unpadded base64)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    """OpenSSH's known_hosts name for an address: bare for port 22, [addr]:port otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


class Verdict(enum.Enum):
    KNOWN = "known"
    UNKNOWN = "unknown"
    CHANGED = "changed"


@dataclass(frozen=True)
class OfferedKey:
    key_type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def line_for(self, names: Iterable[str]) -> str:
        return f"{','.join(names)} {self.key_type} {base64.b64encode(self.blob).decode()}"


class HostKeyStore:
    """Known host keys from several files; records new ones into the first (dccli's own) file."""

    def __init__(self, record_path: Path, extra_paths: Iterable[Path] = ()) -> None:
        self.record_path = record_path
        self.paths = [record_path, *extra_paths]
        self._lock = threading.Lock()
        self._keys = None  # loaded on first use: `dccli --help` must not read files

    def _load(self):
        import paramiko

        keys = paramiko.HostKeys()
        for path in self.paths:
            path = Path(os.path.expanduser(str(path)))
            if path.is_file():
                try:
                    keys.load(str(path))
                except (OSError, UnicodeDecodeError):
                    continue  # an unreadable extra file must not break every connection
        return keys

    def keys(self):
        with self._lock:
            if self._keys is None:
                self._keys = self._load()
            return self._keys

    def known_types(self, names: Iterable[str]) -> list[str]:
        """Key types recorded for a host, so the client can ask the server for one we can verify."""
        store = self.keys()
        types: list[str] = []
        for name in names:
            entry = store.lookup(name)
            if entry:
                types.extend(t for t in entry if t not in types)
        return types

    def check(self, names: Iterable[str], offered: OfferedKey) -> Verdict:
        store = self.keys()
        seen_any = False
        for name in names:
            entry = store.lookup(name)
            if not entry:
                continue
            seen_any = True
            recorded = entry.get(offered.key_type)
            if recorded is not None:
                return Verdict.KNOWN if recorded.asbytes() == offered.blob else Verdict.CHANGED
        # Keys of other types recorded but not this one: OpenSSH treats this as unknown for this type;
        # we refuse too (the client asked for the recorded types first, see known_types).
        return Verdict.CHANGED if seen_any else Verdict.UNKNOWN

    def verify(self, host_label: str, names: list[str], offered: OfferedKey) -> None:
        verdict = self.check(names, offered)
        if verdict is Verdict.KNOWN:
            return
        if verdict is Verdict.CHANGED:
            raise HostKeyError(
                f"{host_label}: HOST KEY CHANGED ({offered.key_type} {offered.fingerprint}) — refusing to connect; "
                f"if the host was reinstalled, remove its entry from {self.record_path} and run `dccli hosts trust -l {host_label}`"
            )
        raise HostKeyError(
            f"{host_label}: unknown host key {offered.key_type} {offered.fingerprint}; "
            f"verify it and run `dccli hosts trust -l {host_label}`"
        )

    def record(self, names: list[str], offered: OfferedKey) -> None:
        """Append a key to dccli's known_hosts (0600), atomically enough for concurrent appends."""
        import paramiko

        self.record_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = offered.line_for(names) + "\n"
        with self._lock:
            fd = os.open(self.record_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            store = self._keys
            if store is not None:
                key = paramiko.PKey.from_type_string(offered.key_type, offered.blob)
                for name in names:
                    store.add(name, offered.key_type, key)

    def forget(self, names: list[str]) -> None:
        """Drop a host's entries from dccli's own known_hosts (never from the user's file)."""
        path = self.record_path
        with self._lock:
            if path.is_file():
                wanted = set(names)
                kept = []
                for line in path.read_text().splitlines(keepends=True):
                    fields = line.split()
                    if fields and not line.startswith("#") and wanted & set(fields[0].split(",")):
                        continue
                    kept.append(line)
                tmp = path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.writelines(kept)
                os.replace(tmp, path)
            self._keys = None  # reload on next use

