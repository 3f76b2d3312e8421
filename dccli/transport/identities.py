"""Per-account identity overrides: which private key dccli logs in with, per user@address:port.

`dccli keys rotate` switches hosts to a new key one by one, and only the hosts where a fresh login
with the new key succeeded. Rewriting the inventory per host would split node ranges and fight the
user's own edits, so the switch lives here instead: a small JSON file in DCCLI_HOME that the pool
consults before the inventory's identity_file. The mapped key is tried FIRST and the inventory's keys
stay behind it, so a stale entry (a lab rebuilt at the same address) costs one refused attempt, never
a lockout. No file: nothing changes (every command behaves exactly as before rotation existed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path

FILE_NAME = "identities.json"


def endpoint_id(user: str, address: str, port: int) -> str:
    """The account an authorized_keys file belongs to: user@address:port."""
    return f"{user}@{address}:{port}"


class IdentityMap:
    """{user@address:port -> {"identity_file": path, "since": epoch}}, loaded once, saved atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = self._load()

    @classmethod
    def default(cls) -> IdentityMap:
        from dccli.paths import dccli_home

        return cls(dccli_home() / FILE_NAME)

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged map must not stop every command: the inventory's keys still apply
        entries = data.get("identities") if isinstance(data, dict) else None
        return {k: v for k, v in (entries or {}).items() if isinstance(v, dict) and v.get("identity_file")}

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            return entry["identity_file"] if entry else None

    def entries(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self._entries.items()}

    def set(self, key: str, identity_file: str, **extra: object) -> None:
        """Record and persist at once (fsync'd): a crash right after must still find the new key."""
        with self._lock:
            self._entries[key] = {"identity_file": identity_file, "since": time.time(), **extra}
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"version": 1, "identities": self._entries}, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def apply(self, endpoint):
        """The endpoint with its mapped key tried first (the inventory's keys kept as fallbacks)."""
        mapped = self.get(endpoint_id(endpoint.user, endpoint.address, endpoint.port))
        if not mapped:
            return endpoint
        rest = tuple(p for p in endpoint.identity_files if p != mapped)
        return dataclasses.replace(endpoint, identity_files=(mapped, *rest))
