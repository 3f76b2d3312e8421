"""Health values: the facts parsed from raw sources, and CheckResult, the verdict of one check on one host.

Facts are frozen dataclasses built by the pure parsers (parse_smi, parse_logs); checks turn facts into
CheckResults. Every value has to_dict() for --json and for the state DB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dccli.health.verdicts import CRIT, NAGIOS_CODE, OK, UNKNOWN, WARN, worst  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class CheckResult:
    host: str
    check: str  # stable id, e.g. "gpu.ecc", "host.disk"
    verdict: str  # OK | WARN | CRIT | UNKNOWN
    value: str = ""  # what was measured, human-readable ("GPU1 DBE=2")
    threshold: str = ""  # what it was compared with ("DBE > 0")
    action: str = ""  # what an operator should do
    source: str = ""  # where the threshold comes from (DCGM, NHC, a cloud operator's health check)
    subject: str = ""  # the GPU / mount / port / service the result is about, "" for the host as a whole

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        return cls(**{k: d.get(k, "") for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_mib: float | None


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    bus_id: str = ""
    uuid: str = ""
    persistence_mode: str | None = None  # "Enabled" | "Disabled"
    temperature_c: float | None = None
    slowdown_temp_c: float | None = None  # the GPU's own HW slowdown threshold, when reported
    utilization_pct: float | None = None
    memory_total_mib: float | None = None
    memory_used_mib: float | None = None
    ecc_volatile_sbe: int | None = None  # corrected (single-bit) errors, all memories
    ecc_volatile_dbe: int | None = None  # uncorrected (double-bit) errors
    ecc_aggregate_sbe: int | None = None
    ecc_aggregate_dbe: int | None = None
    retired_sbe: int | None = None
    retired_dbe: int | None = None
    retired_pending: bool | None = None
    remap_correctable: int | None = None
    remap_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    throttle_active: tuple[
        str, ...
    ] = ()  # active clock event reasons (hw_slowdown, sw_thermal_slowdown, ...)
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    fabric_state: str | None = None  # NVSwitch fabric (NVLink) registration: Completed, In Progress, ...
    fabric_status: str | None = None  # Success, or the failure

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SmiReport:
    """What one nvidia-smi output says: versions and GPUs (any of -q -x, -q, --query-gpu CSV)."""

    form: str  # "xml" | "text" | "csv"
    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: tuple[Gpu, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "driver_version": self.driver_version,
            "cuda_version": self.cuda_version,
            "attached_gpus": self.attached_gpus,
            "gpu_count": len(self.gpus),
            "models": sorted({g.name for g in self.gpus}),
            "gpus": [g.to_dict() for g in self.gpus],
        }


@dataclass(frozen=True)
class XidEvent:
    xid: int
    pci: str  # "0000:19:00"
    text: str  # the message after the code
    time: float | None = None  # epoch seconds when the log line carries an absolute time
    line: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IbPort:
    device: str  # "mlx5_0"
    port: int
    state: str  # "Active", "Down", "Initializing", ...
    physical_state: str = ""
    rate_gbps: float | None = None
    link_layer: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Mount:
    path: str
    fstype: str
    size: int
    free: int
    inodes: int
    inodes_free: int  # for unprivileged users (f_favail)
    used: int | None = None  # bytes in use (blocks - bfree): with it, df's Use% (reserved blocks left out)
    reported_pct: float | None = None  # a tool's own Use% (findmnt, df), when that is what we have

    @property
    def used_pct(self) -> float:
        if self.reported_pct is not None:
            return self.reported_pct
        if self.used is not None and self.used + self.free:
            return 100.0 * self.used / (self.used + self.free)  # df: used / (used + available)
        return 100.0 * (self.size - self.free) / self.size if self.size else 0.0

    @property
    def inodes_used_pct(self) -> float:
        return 100.0 * (self.inodes - self.inodes_free) / self.inodes if self.inodes else 0.0


@dataclass(frozen=True)
class NvLink:
    gpu: int
    link: int
    up: bool
    speed: str = ""


@dataclass(frozen=True)
class HostFacts:
    """Everything one probe brought back from a host, parsed. None = the source was absent."""

    host: str
    smi: SmiReport | None = None
    smi_error: str | None = None  # nvidia-smi present but failing (rc 9: driver not loaded, ...)
    xids: tuple[XidEvent, ...] = ()
    ib_ports: tuple[IbPort, ...] | None = None
    mounts: tuple[Mount, ...] = ()
    mem_total: int | None = None
    mem_available: int | None = None
    load1: float | None = None
    cpus: int | None = None
    clock_offset_s: float | None = None  # chrony/timedatectl's own estimate, None when unknown
    clock_skew_s: float | None = None  # host clock minus control node's midpoint, measured by dccli
    ntp_synchronized: bool | None = None  # timedatectl's NTPSynchronized, where systemd runs
    services: dict[str, bool] = field(default_factory=dict)
    defunct: int | None = None
    reboot_required: bool | None = None
    foreign_pids: tuple[int, ...] = ()  # GPU processes without DCCLI_RUN_ID in their environ
    nvlinks: tuple[NvLink, ...] | None = None
    host_time: float | None = None
    boot_id: str | None = None
