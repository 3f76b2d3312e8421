"""The inventory as frozen values: Host, Rack, Defaults, Inventory. Built by loader.py, never mutated.

Vars are deep-frozen (MappingProxyType / tuples) so that a capability cannot change one host's view of a
variable behind another's back; to_dict() thaws them into plain JSON-ready data for --json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """Read-only copy of plain YAML data: dicts become MappingProxyType, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON and YAML output)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Defaults:
    """The `defaults:` section: connection settings every host inherits unless it sets its own."""

    user: str = "root"
    port: int = 22
    identity_file: str | None = None  # as written; `~` is expanded when used, not when loaded
    known_hosts: str | None = None  # an extra known_hosts file, checked besides dccli's and the user's
    connect_timeout: float = 10.0
    connection: str = "ssh"
    jump: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "port": self.port,
            "identity_file": self.identity_file,
            "known_hosts": self.known_hosts,
            "connect_timeout": self.connect_timeout,
            "connection": self.connection,
            "jump": self.jump,
        }


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity_file: str | None = None
    connection: str = "ssh"  # "ssh" or "local"
    jump: str | None = None  # effective ProxyJump: an inventory host name or [user@]host[:port]
    rack: str | None = None
    gpus: int = 0
    gpu_model: str | None = None
    role: str | None = None
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # racks and groups holding this host, `all` left out
    # Merged vars, lowest first: cluster, rack, groups in file order, host (read-only).
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    source: str = ""  # file:line where the host is defined

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity_file": self.identity_file,
            "connection": self.connection,
            "jump": self.jump,
            "rack": self.rack,
            "gpus": self.gpus,
            "gpu_model": self.gpu_model,
            "role": self.role,
            "tags": list(self.tags),
            "groups": list(self.groups),
            "vars": thaw(self.vars),
            "source": self.source,
        }


@dataclass(frozen=True)
class Rack:
    name: str
    location: str | None = None
    jump: str | None = None
    hosts: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "jump": self.jump,
            "hosts": list(self.hosts),
            "vars": thaw(self.vars),
        }


@dataclass(frozen=True, eq=False)
class Inventory:
    cluster: str
    path: Path | None
    hosts: tuple[Host, ...]  # in file order
    racks: tuple[Rack, ...] = ()
    # Every group: `all`, then each rack, then the `groups:` section, in file order; members in host order.
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EMPTY)
    # Vars of `groups:` entries (racks keep their own on Rack).
    group_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: EMPTY)
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # cluster vars
    defaults: Defaults = field(default_factory=Defaults)
    # The `backup:` section (dccli.backup.profile.BackupConfig) when the file has one.
    backup: Any = field(default=None, hash=False)
    # `health:` threshold overrides by owner: "" (top level), rack or group name (dccli/health/thresholds.py).
    health: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: EMPTY, hash=False)
    _by_name: Mapping[str, Host] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", MappingProxyType({h.name: h for h in self.hosts}))

    def host(self, name: str) -> Host:
        """The host called `name`; KeyError if there is none."""
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.hosts)

    def names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def rack(self, name: str) -> Rack:
        for rack in self.racks:
            if rack.name == name:
                return rack
        raise KeyError(name)

    @property
    def defined_groups(self) -> tuple[str, ...]:
        """Groups from the `groups:` section (not `all`, not racks)."""
        return tuple(self.group_vars)

    def group_resolver(self) -> Callable[[str], list[str]]:
        """For NodeSet.parse: @name -> member host names; KeyError for an unknown group."""
        groups = self.groups

        def resolve(name: str) -> list[str]:
            return list(groups[name])

        return resolve

    def select(self, pattern: str | None, failed: Iterable[str] = ()) -> list[Host]:
        """Hosts matching a --limit pattern (None: all), in inventory order; UsageError for unknown names."""
        from dccli.inventory.select import select_hosts

        return select_hosts(self, pattern, failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "path": str(self.path) if self.path is not None else None,
            "defaults": self.defaults.to_dict(),
            "vars": thaw(self.vars),
            "racks": [r.to_dict() for r in self.racks],
            "groups": {name: list(members) for name, members in self.groups.items()},
            "group_vars": thaw(self.group_vars),
            "hosts": [h.to_dict() for h in self.hosts],
        }
