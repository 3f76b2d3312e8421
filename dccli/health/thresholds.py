"""Thresholds: documented defaults, each with where it comes from; overridden per group in the inventory.

Inventory (docs/health.md):  `health:` at the top level and in any group or rack, e.g.
    groups:
      trainers: {hosts: "gpu[01-16]", health: {temp_warn_c: 80, required_services: [nvidia-fabricmanager]}}
Precedence, lowest first: these defaults, the top-level `health:`, racks, then groups in file order.
The inventory loader validates the keys and types (dccli/inventory/loader.py HEALTH table mirrors TABLE).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

DCGM = "DCGM health watches (docs.nvidia.com/datacenter/dcgm, dcgmHealthWatch)"
NHC = "LBNL Node Health Check (github.com/mej/nhc)"
AZHC = "Azure HPC health checks (github.com/Azure/azurehpc-health-checks, ND H100 v5 conf)"
NV_DPR = (
    "NVIDIA Dynamic Page Retirement / Row Remapping docs (docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt)"
)
GPUD = "leptonai/gpud components"


@dataclass(frozen=True)
class Threshold:
    name: str
    default: Any
    kind: str  # "number" | "list" | "bool"
    doc: str
    source: str


TABLE: tuple[Threshold, ...] = (
    Threshold(
        "temp_warn_c",
        85,
        "number",
        "GPU temperature (C) that is WARN",
        DCGM + " thermal watch; number: dccli's, below the 87-92 C slowdown point of A100/H100",
    ),
    Threshold(
        "temp_crit_c",
        90,
        "number",
        "GPU temperature (C) that is CRIT (also: at the GPU's own slowdown temperature when it reports one)",
        DCGM + " (thermal watch: slowdown = failure)",
    ),
    Threshold(
        "throttle_reasons",
        ["hw_slowdown", "hw_thermal_slowdown", "sw_thermal_slowdown", "hw_power_brake_slowdown"],
        "list",
        "active clock event reasons that are WARN",
        AZHC + ": check_gpu_clock_throttling",
    ),
    Threshold(
        "ecc_sbe_volatile_warn",
        10000,
        "number",
        "volatile corrected (SBE) ECC count that is WARN",
        AZHC + ": check_gpu_ecc (its conf passes 20000000 10000 as error-count limits); number: dccli's",
    ),
    Threshold(
        "ecc_sbe_aggregate_warn",
        20000000,
        "number",
        "aggregate corrected (SBE) ECC count that is WARN",
        AZHC + ": check_gpu_ecc 20000000 10000",
    ),
    Threshold(
        "ecc_dbe_volatile_crit",
        1,
        "number",
        "volatile uncorrected (DBE) ECC count that is CRIT",
        DCGM + " (memory watch: any DBE fails); Xid 48",
    ),
    Threshold(
        "ecc_dbe_aggregate_warn", 1, "number", "aggregate uncorrected (DBE) ECC count that is WARN", DCGM
    ),
    Threshold(
        "retired_pages_warn",
        10,
        "number",
        "retired pages (SBE+DBE) that are WARN",
        NV_DPR + "; number: dccli's early warning",
    ),
    Threshold(
        "retired_pages_crit",
        60,
        "number",
        "retired pages (SBE+DBE) that are CRIT (RMA)",
        NV_DPR + ": 60 retired pages is the RMA point",
    ),
    Threshold(
        "remap_uncorrectable_warn",
        8,
        "number",
        "rows remapped for uncorrectable errors that are WARN",
        NV_DPR + "; number: dccli's",
    ),
    Threshold(
        "require_persistence",
        True,
        "bool",
        "persistence mode disabled is WARN",
        "NVIDIA driver persistence docs (docs.nvidia.com/deploy/driver-persistence)",
    ),
    Threshold(
        "pcie_gen_busy_pct",
        50,
        "number",
        "PCIe generation below max is WARN only when the GPU is at "
        "least this busy (idle GPUs lower their link speed to save power)",
        DCGM + " (PCIe watch)",
    ),
    Threshold(
        "nvlink_links",
        False,
        "bool",
        "also run `nvidia-smi nvlink -s` on each host for per-link state "
        "(one more NVML start-up per host); without it NVLink is judged from the NVSwitch fabric state of -q -x",
        "Azure HPC health checks: check_nvlink_status",
    ),
    Threshold(
        "disk_warn_pct",
        90,
        "number",
        "used space (%) per mount that is WARN",
        NHC + ": check_fs_used (site-chosen limit; number: dccli's)",
    ),
    Threshold(
        "disk_crit_pct", 95, "number", "used space (%) per mount that is CRIT", NHC + ": check_fs_used"
    ),
    Threshold(
        "inodes_warn_pct", 90, "number", "used inodes (%) per mount that is WARN", NHC + ": check_fs_iused"
    ),
    Threshold(
        "inodes_crit_pct", 95, "number", "used inodes (%) per mount that is CRIT", NHC + ": check_fs_iused"
    ),
    Threshold(
        "mem_available_warn_pct",
        10,
        "number",
        "available memory (%) below which it is WARN",
        NHC + ": check_hw_mem_free (site-chosen limit; number: dccli's)",
    ),
    Threshold(
        "mem_available_crit_pct",
        5,
        "number",
        "available memory (%) below which it is CRIT",
        NHC + ": check_hw_mem_free (number: dccli's)",
    ),
    Threshold(
        "load_per_cpu_warn",
        4.0,
        "number",
        "1-minute load per CPU that is WARN",
        NHC + ": check_ps_loadavg (site-chosen limit; number: dccli's)",
    ),
    Threshold(
        "clock_offset_warn_s",
        0.1,
        "number",
        "NTP offset (chrony) in seconds that is WARN",
        "chrony docs (chronyc tracking 'System time'); dccli default",
    ),
    Threshold(
        "clock_skew_warn_s",
        0.5,
        "number",
        "clock skew against the control node (s, beyond the measurement's half round trip) that is WARN",
        "dccli default: NCCL/torch logs and cron need sub-second agreement",
    ),
    Threshold("clock_skew_crit_s", 5.0, "number", "clock skew (s) that is CRIT", "dccli default"),
    Threshold(
        "required_services",
        [],
        "list",
        "services that must be active (systemd unit, else a process of that name)",
        NHC + ": check_ps_service",
    ),
    Threshold(
        "ib_rate_gbps",
        None,
        "number",
        "expected InfiniBand port rate (Gb/s); lower is WARN",
        AZHC + ": check_hw_ib 400 mlx5_ib0:1",
    ),
    Threshold(
        "defunct_warn",
        5,
        "number",
        "defunct (zombie) processes that are WARN",
        "dccli default (NHC's process checks are the model)",
    ),
)

BY_NAME: Mapping[str, Threshold] = MappingProxyType({t.name: t for t in TABLE})


@dataclass(frozen=True)
class Limits:
    """The thresholds in force for one host."""

    values: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def source(self, name: str) -> str:
        return BY_NAME[name].source


def defaults() -> Limits:
    return Limits(MappingProxyType({t.name: t.default for t in TABLE}))


def for_host(inventory, host) -> Limits:
    """Defaults < top-level `health:` < the host's rack < its groups in file order."""
    merged = {t.name: t.default for t in TABLE}
    health = getattr(inventory, "health", None) or {}
    merged.update(health.get("", {}))
    for group in [host.rack] + [g for g in inventory.groups if g in host.groups and g != host.rack]:
        if group and group in health:
            merged.update(health[group])
    return Limits(MappingProxyType(merged))
