"""Facts as frozen values, built from the helper's raw sources."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dccli.facts import parse


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    uuid: str | None
    bus_id: str | None
    driver_version: str | None
    memory_total_mib: int | None


@dataclass(frozen=True)
class Disk:
    mount: str
    fstype: str
    size_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class IBPort:
    name: str
    state: str
    rate: str


@dataclass(frozen=True)
class Facts:
    host: str
    hostname: str
    os: str
    os_id: str
    os_version: str
    kernel: str
    arch: str
    cpu_model: str | None
    cpus: int
    memory_bytes: int
    memory_available_bytes: int
    disks: tuple[Disk, ...]
    gpus: tuple[GPU, ...]
    driver_version: str | None
    cuda_version: str | None
    infiniband: tuple[IBPort, ...]
    boot_id: str
    uptime_s: float
    python: str
    clock: float  # the host's time.time() when gathered; compared with ours for skew

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def build(host: str, raw: dict[str, Any]) -> Facts:
    osr = parse.parse_os_release(raw.get("os_release"))
    mem = parse.parse_meminfo(raw.get("meminfo"))
    gpus: list[GPU] = []
    driver = cuda = None
    smi = raw.get("nvidia_smi") or {}
    query = smi.get("query") or {}
    if query.get("rc") == 0:
        for row in parse.parse_query_csv(query.get("stdout", "")):
            gpus.append(GPU(
                index=_int(row.get("index")) or len(gpus),
                name=row.get("name") or "unknown",
                uuid=row.get("uuid"),
                bus_id=row.get("pci.bus_id"),
                driver_version=row.get("driver_version"),
                memory_total_mib=_int(row.get("memory.total")),
            ))
        driver = next((g.driver_version for g in gpus if g.driver_version), None)
    version = smi.get("version") or {}
    if version.get("rc") == 0:
        v = parse.parse_smi_version(version.get("stdout", ""))
        driver = driver or v["driver_version"] or None
        cuda = v["cuda_version"] or None
    disks = tuple(
        Disk(mount, d.get("fstype", ""), int(d.get("size", 0)), int(d.get("free", 0)))
        for mount, d in sorted((raw.get("disks") or {}).items())
    )
    ib = tuple(IBPort(name, p.get("state", ""), p.get("rate", "")) for name, p in sorted((raw.get("infiniband") or {}).items()))
    uptime = (raw.get("uptime") or "0").split()
    return Facts(
        host=host,
        hostname=raw.get("hostname", ""),
        os=osr.get("PRETTY_NAME", osr.get("NAME", "unknown")),
        os_id=osr.get("ID", ""),
        os_version=osr.get("VERSION_ID", ""),
        kernel=raw.get("kernel", ""),
        arch=raw.get("machine", ""),
        cpu_model=parse.parse_cpu_model(raw.get("cpuinfo")),
        cpus=int(raw.get("cpu_count") or 0),
        memory_bytes=mem.get("MemTotal", 0),
        memory_available_bytes=mem.get("MemAvailable", mem.get("MemFree", 0)),
        disks=disks,
        gpus=tuple(gpus),
        driver_version=driver,
        cuda_version=cuda,
        infiniband=ib,
        boot_id=raw.get("boot_id", ""),
        uptime_s=float(uptime[0]) if uptime else 0.0,
        python=raw.get("python", ""),
        clock=float(raw.get("time") or 0.0),
    )
