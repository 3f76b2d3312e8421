"""Value types of the lab and its addressing plan. Pure: no I/O.

Addressing: lab index L (1..254, one per lab, machine-wide) and host number n (1-based) give
127.L.<(n-1)//250>.<(n-1)%250+1>, so hosts 1-250 are 127.L.0.1-250, host 251 is 127.L.1.1, and so on.
All of 127.0.0.0/8 is routed to lo by Linux, so no address has to be added or removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOSTS_PER_OCTET = 250
MAX_HOSTS = 1024
MAX_INDEX = 254
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SCHEMA_VERSION = 1


def host_address(index: int, number: int) -> str:
    """The loopback address of host `number` (1-based) in lab `index`."""
    return f"127.{index}.{(number - 1) // HOSTS_PER_OCTET}.{(number - 1) % HOSTS_PER_OCTET + 1}"


def host_name_width(count: int) -> int:
    return max(2, len(str(count)))


def host_name(number: int, count: int) -> str:
    """node01..node99, node001.. once a lab has 100 hosts or more (one width per lab, so names sort)."""
    return f"node{number:0{host_name_width(count)}d}"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    port: int
    init_pid: int | None  # PID 1 of the host's namespaces, as the control node sees it
    upper_dir: Path
    init_start: int | None = None  # /proc start time of init_pid: guards against a reused PID

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "init_pid": self.init_pid,
            "init_start": self.init_start,
            "upper_dir": str(self.upper_dir),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabHost:
        return cls(
            name=data["name"],
            address=data["address"],
            port=int(data["port"]),
            init_pid=data.get("init_pid"),
            upper_dir=Path(data["upper_dir"]),
            init_start=data.get("init_start"),
        )


@dataclass(frozen=True)
class LabInfo:
    name: str
    index: int
    dir: Path
    inventory_path: Path
    key_path: Path
    known_hosts_path: Path
    hosts: tuple[LabHost, ...]
    state: str = "up"  # creating | starting | up
    tag: str = ""  # random token in every host init's environment: finds them even if lab.json is partial
    disk_mount: Path | None = None  # a tmpfs holding upper dirs when the labs dir cannot (see manager.py)
    gpus_per_host: int = 0  # simulated GPUs (dccli.lab.gpusim); written into the inventory
    gpu_model: str = ""  # catalogue key of the simulated GPUs (dccli.lab.gpusim.model.MODELS)
    # Control-node paths bound read-only at the same path in every host: what the overlay of / cannot show
    # (a checkout or venv under /tmp, which hosts mount afresh, or on another filesystem).
    shares: tuple[str, ...] = ()

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        from dccli.errors import LabError

        raise LabError(f"lab {self.name!r} has no host {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "index": self.index,
            "state": self.state,
            "tag": self.tag,
            "dir": str(self.dir),
            "inventory_path": str(self.inventory_path),
            "key_path": str(self.key_path),
            "known_hosts_path": str(self.known_hosts_path),
            "disk_mount": str(self.disk_mount) if self.disk_mount else None,
            "gpus_per_host": self.gpus_per_host,
            "gpu_model": self.gpu_model,
            "shares": list(self.shares),
            "hosts": [host.to_dict() for host in self.hosts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabInfo:
        return cls(
            name=data["name"],
            index=int(data["index"]),
            dir=Path(data["dir"]),
            inventory_path=Path(data["inventory_path"]),
            key_path=Path(data["key_path"]),
            known_hosts_path=Path(data["known_hosts_path"]),
            hosts=tuple(LabHost.from_dict(h) for h in data.get("hosts", ())),
            state=data.get("state", "up"),
            tag=data.get("tag", ""),
            disk_mount=Path(data["disk_mount"]) if data.get("disk_mount") else None,
            gpus_per_host=int(data.get("gpus_per_host", 0)),
            gpu_model=str(data.get("gpu_model", "")),
            shares=tuple(str(p) for p in data.get("shares", ())),
        )


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    port: int
    init_alive: bool
    sshd_answering: bool

    @property
    def up(self) -> bool:
        return self.init_alive and self.sshd_answering

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "init_alive": self.init_alive,
            "sshd_answering": self.sshd_answering,
            "up": self.up,
        }


@dataclass(frozen=True)
class LabStatus:
    lab: LabInfo
    hosts: tuple[HostStatus, ...] = field(default=())

    @property
    def up_count(self) -> int:
        return sum(1 for h in self.hosts if h.up)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.lab.name,
            "index": self.lab.index,
            "state": self.lab.state,
            "dir": str(self.lab.dir),
            "inventory_path": str(self.lab.inventory_path),
            "hosts_up": self.up_count,
            "hosts_total": len(self.hosts),
            "hosts": [h.to_dict() for h in self.hosts],
        }
