"""SIMULATION: the GPU catalogue, the per-host state file (schema in docs/lab.md) and its pure transforms.

Stdlib only and Python 3.8+: this package is copied into every lab host (/usr/lib/dccli-gpusim/gpusim) and
run there by the system python3 as `nvidia-smi`; the control node imports the same code as dccli.lab.gpusim
to create states, inject faults and apply reboots. No function here does I/O except load/dump helpers.
"""

from __future__ import annotations

import copy
import json

TYPE_CHECKING = False  # not `import typing`: it costs the simulator ~20 ms a call
if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = 1
STATE_DIR = "/var/lib/dccli-gpusim"
STATE_PATH = STATE_DIR + "/state.json"
KMSG_PATH = STATE_DIR + "/kmsg"
DRIVER_OVERRIDE_PATH = STATE_DIR + "/driver_version"
BOOT_DIR = "/var/lib/dccli-lab"
BOOT_PATH = BOOT_DIR + "/boot.json"
BOOT_ID_PATH = BOOT_DIR + "/boot_id"
SIMULATED = "dccli lab: no GPU hardware, values are made up"
DEFAULT_DRIVER = "535.183.01"
DEFAULT_CUDA = "12.2"

THROTTLE_REASONS = (
    "gpu_idle",
    "applications_clocks_setting",
    "sw_power_cap",
    "hw_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "sync_boost",
    "sw_thermal_slowdown",
    "display_clock_setting",
)
# Bit of each reason in clocks_event_reasons.active (NVML's nvmlClocksEventReason* values).
THROTTLE_BITS = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}

# Static attributes per model. Values for H100 follow the 8x H100 captures (535.183.01); A100 the telegraf
# A100-SXM4 capture; H200 is extrapolated from H100 (same board family). All made up where not captured.
MODELS: dict[str, dict[str, Any]] = {
    "H100-SXM5-80GB": {
        "name": "NVIDIA H100 80GB HBM3",
        "architecture": "Hopper",
        "memory_mib": 81559,
        "reserved_mib": 551,
        "power_limit_w": 700.0,
        "power_min_w": 200.0,
        "idle_power_w": 71.0,
        "pcie_gen": 5,
        "vbios": "96.00.74.00.01",
        "board_part": "692-2G520-0200-000",
        "gpu_part": "2330-885-A1",
        "device_id": "0x233010DE",
        "subsystem_id": "0x16C110DE",
        "inforom": ("G520.0200.00.05", "2.1", "7.16"),
        "clocks_idle": (345, 345, 2619, 765),
        "clocks_max": (1980, 1980, 2619, 1545),
        "compute_cap": "9.0",
        "temp_idle": 33,
        "temp_slowdown": 87,
        "temp_shutdown": 92,
        "temp_max_op": 85,
        "temp_mem_max": 95,
        "nvlinks": 18,
        "histogram_max": 2560,
        "bus_ids": ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"),
        "serial_prefix": "16549",
    },
    "A100-SXM4-80GB": {
        "name": "NVIDIA A100-SXM4-80GB",
        "architecture": "Ampere",
        "memory_mib": 81920,
        "reserved_mib": 869,
        "power_limit_w": 400.0,
        "power_min_w": 100.0,
        "idle_power_w": 62.0,
        "pcie_gen": 4,
        "vbios": "92.00.36.00.02",
        "board_part": "692-2G506-0212-002",
        "gpu_part": "20B2-895-A1",
        "device_id": "0x20B210DE",
        "subsystem_id": "0x147F10DE",
        "inforom": ("G506.0212.00.01", "2.0", "6.16"),
        "clocks_idle": (210, 210, 1593, 795),
        "clocks_max": (1410, 1410, 1593, 1290),
        "compute_cap": "8.0",
        "temp_idle": 30,
        "temp_slowdown": 89,
        "temp_shutdown": 92,
        "temp_max_op": 85,
        "temp_mem_max": 95,
        "nvlinks": 12,
        "histogram_max": 640,
        "bus_ids": ("07", "0F", "47", "4E", "87", "90", "B7", "BD"),
        "serial_prefix": "16505",
    },
    "H200": {
        "name": "NVIDIA H200",
        "architecture": "Hopper",
        "memory_mib": 143771,
        "reserved_mib": 621,
        "power_limit_w": 700.0,
        "power_min_w": 200.0,
        "idle_power_w": 76.0,
        "pcie_gen": 5,
        "vbios": "96.00.A5.00.01",
        "board_part": "692-2G520-0280-000",
        "gpu_part": "2335-885-A1",
        "device_id": "0x233510DE",
        "subsystem_id": "0x18BE10DE",
        "inforom": ("G520.0280.00.02", "2.1", "7.16"),
        "clocks_idle": (345, 345, 3201, 765),
        "clocks_max": (1980, 1980, 3201, 1545),
        "compute_cap": "9.0",
        "temp_idle": 32,
        "temp_slowdown": 87,
        "temp_shutdown": 92,
        "temp_max_op": 85,
        "temp_mem_max": 95,
        "nvlinks": 18,
        "histogram_max": 3840,
        "bus_ids": ("19", "3B", "4C", "5D", "9B", "BB", "CB", "DB"),
        "serial_prefix": "16524",
    },
}
MAX_GPUS = 16
# The keys (and which are objects) every GPU entry of a state must have; see healthy_gpu.
GPU_TEMPLATE: dict[str, Any] = {
    "index": 0, "uuid": "", "serial": "", "pci_bus_id": "", "fell_off_bus": False, "persistence_mode": "",
    "temperature_gpu": 0, "temperature_memory": 0, "power_draw_w": 0.0, "power_limit_w": 0.0,
    "memory_total_mib": 0, "memory_reserved_mib": 0, "memory_used_mib": 0, "utilization_gpu": 0,
    "utilization_memory": 0, "pstate": "", "pcie": {}, "ecc": {}, "retired_pages": {}, "row_remap": {},
    "throttle_reasons": [], "processes": [],
}  # fmt: skip


class StateError(ValueError):
    """A state file that cannot be used (named key, one line)."""


def _digest(*parts: object) -> str:
    import hashlib  # here: only state creation needs it, not every nvidia-smi call

    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()


def bus_id(model: str, index: int) -> str:
    ids = MODELS[model]["bus_ids"]
    bus = ids[index] if index < len(ids) else f"{0xC0 + index:02X}"
    return f"00000000:{bus}:00.0"


def healthy_gpu(model: str, index: int, seed: str) -> dict[str, Any]:
    """A GPU as it is after a clean boot: identity derived from (seed, index), every counter zero."""
    spec = MODELS[model]
    h = _digest(seed, model, index)
    temp = spec["temp_idle"] + int(h[0], 16) % 5
    return {
        "index": index,
        "uuid": f"GPU-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
        "serial": spec["serial_prefix"] + str(int(h[32:40], 16) % 10**8).zfill(8),
        "pci_bus_id": bus_id(model, index),
        "fell_off_bus": False,
        "persistence_mode": "Enabled",
        "temperature_gpu": temp,
        "temperature_memory": temp + 8,
        "power_draw_w": round(spec["idle_power_w"] + (int(h[1], 16) % 6) + int(h[2], 16) / 16, 2),
        "power_limit_w": spec["power_limit_w"],
        "memory_total_mib": spec["memory_mib"],
        "memory_reserved_mib": spec["reserved_mib"],
        "memory_used_mib": 0,
        "utilization_gpu": 0,
        "utilization_memory": 0,
        "pstate": "P0",
        "pcie": {
            "gen_current": spec["pcie_gen"],
            "gen_max": spec["pcie_gen"],
            "width_current": 16,
            "width_max": 16,
        },
        "ecc": {"volatile": {"sbe": 0, "dbe": 0}, "aggregate": {"sbe": 0, "dbe": 0}},
        "retired_pages": {"sbe": 0, "dbe": 0, "pending": False},
        "row_remap": {"correctable": 0, "uncorrectable": 0, "pending": False, "failure": False},
        "throttle_reasons": ["gpu_idle"],
        "processes": [],
    }


def new_state(model: str, count: int, seed: str) -> dict[str, Any]:
    if model not in MODELS:
        raise StateError(f"unknown GPU model {model!r} (known: {', '.join(MODELS)})")
    if not 0 < count <= MAX_GPUS:
        raise StateError(f"GPU count must be 1..{MAX_GPUS}, not {count}")
    return {
        "schema_version": SCHEMA_VERSION,
        "simulated": SIMULATED,
        "model": model,
        "seed": seed,
        "driver_loaded": True,
        "driver_version": DEFAULT_DRIVER,
        "cuda_version": DEFAULT_CUDA,
        "gpus": [healthy_gpu(model, i, seed) for i in range(count)],
    }


def validate(state: Any, where: str = STATE_PATH) -> dict[str, Any]:
    """Check the keys the renderers need; raise StateError naming the first bad one."""
    if not isinstance(state, dict):
        raise StateError(f"{where}: not a JSON object")
    if state.get("schema_version") != SCHEMA_VERSION:
        raise StateError(
            f"{where}: schema_version: expected {SCHEMA_VERSION}, got {state.get('schema_version')!r}"
        )
    if state.get("model") not in MODELS:
        raise StateError(f"{where}: model: unknown GPU model {state.get('model')!r}")
    gpus = state.get("gpus")
    if not isinstance(gpus, list):
        raise StateError(f"{where}: gpus: expected a list")
    for i, gpu in enumerate(gpus):
        for key, value in GPU_TEMPLATE.items():
            if not isinstance(gpu, dict) or key not in gpu:
                raise StateError(f"{where}: gpus[{i}].{key}: missing")
            if isinstance(value, dict) and not isinstance(gpu[key], dict):
                raise StateError(f"{where}: gpus[{i}].{key}: expected an object")
    return state


def loads(text: str, where: str = STATE_PATH) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(f"{where}: not valid JSON: {exc}") from None
    return validate(data, where)


def dumps(state: dict[str, Any]) -> str:
    return json.dumps(state, indent=1, sort_keys=False) + "\n"


# ---------------------------------------------------------------- faults (pure: state in, new state out)


def _gpu(state: dict[str, Any], index: int) -> dict[str, Any]:
    for gpu in state["gpus"]:
        if gpu["index"] == index:
            return gpu
    raise StateError(f"no GPU {index} (this host has {len(state['gpus'])}: 0-{len(state['gpus']) - 1})")


def set_temperature(gpu: dict[str, Any], model: str, celsius: int) -> None:
    """Temperature plus the clock-event reasons a real GPU raises at that temperature."""
    spec = MODELS[model]
    gpu["temperature_gpu"] = celsius
    gpu["temperature_memory"] = celsius + 8
    reasons = [
        r
        for r in gpu["throttle_reasons"]
        if r not in ("hw_slowdown", "hw_thermal_slowdown", "sw_thermal_slowdown")
    ]
    if celsius >= spec["temp_max_op"]:
        reasons.append("sw_thermal_slowdown")
    if celsius >= spec["temp_slowdown"]:
        reasons += ["hw_slowdown", "hw_thermal_slowdown"]
    if celsius > spec["temp_idle"] + 20 and "gpu_idle" in reasons:
        reasons.remove("gpu_idle")
    gpu["throttle_reasons"] = [r for r in THROTTLE_REASONS if r in reasons]


def apply_fault(state: dict[str, Any], kind: str, gpu_index: int, value: int = 0) -> dict[str, Any]:
    """kind: xid79 | fell_off_bus | ecc_dbe | row_remap_pending | retired_pages | temp. Returns a new state."""
    new = copy.deepcopy(state)
    gpu = _gpu(new, gpu_index)
    if kind in ("fell_off_bus", "xid79"):
        gpu["fell_off_bus"] = True
    elif kind == "ecc_dbe":
        gpu["ecc"]["volatile"]["dbe"] += value
        gpu["ecc"]["aggregate"]["dbe"] += value
    elif kind == "row_remap_pending":
        gpu["row_remap"]["uncorrectable"] += 1
        gpu["row_remap"]["pending"] = True
    elif kind == "retired_pages":
        gpu["retired_pages"]["dbe"] += value
        gpu["retired_pages"]["pending"] = True
    elif kind == "temp":
        set_temperature(gpu, new["model"], value)
    else:
        raise StateError(f"unknown fault kind {kind!r}")
    return new


def clear(state: dict[str, Any], gpu_index: int | None = None) -> dict[str, Any]:
    """Every GPU (or one) back to healthy, keeping only its identity (uuid, serial, bus id)."""
    new = copy.deepcopy(state)
    seed = new.get("seed", "")
    for i, gpu in enumerate(new["gpus"]):
        if gpu_index is None or gpu["index"] == gpu_index:
            fresh = healthy_gpu(new["model"], gpu["index"], seed)
            for key in ("uuid", "serial", "pci_bus_id"):
                fresh[key] = gpu[key]
            new["gpus"][i] = fresh
    if gpu_index is not None:
        _gpu(new, gpu_index)  # an unknown index is an error, not a silent no-op
    return new


def after_reboot(state: dict[str, Any]) -> dict[str, Any]:
    """What a reboot (GPU reset) keeps: aggregate ECC (InfoROM), retired pages (pending ones get retired),
    row remaps (pending ones get applied) and a remap failure. It resets volatile ECC counters, temperature,
    clock-event reasons and processes, and a GPU that fell off the bus comes back."""
    new = copy.deepcopy(state)
    seed = new.get("seed", "")
    for i, gpu in enumerate(new["gpus"]):
        fresh = healthy_gpu(new["model"], gpu["index"], seed)
        for key in ("uuid", "serial", "pci_bus_id", "persistence_mode"):
            fresh[key] = gpu[key]
        fresh["ecc"]["aggregate"] = dict(gpu["ecc"]["aggregate"])
        fresh["retired_pages"] = dict(gpu["retired_pages"], pending=False)
        fresh["row_remap"] = dict(gpu["row_remap"], pending=False)
        new["gpus"][i] = fresh
    return new
