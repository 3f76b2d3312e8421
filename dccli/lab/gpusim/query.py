"""SIMULATION: `--query-gpu=... --format=csv[,noheader][,nounits]` and the other --query-* forms. Pure.

Header cells are `name [unit]` and value cells `value unit` exactly as the real captures print them
(`memory.total [MiB]` / `81559 MiB`); a field the simulator has no value for prints `[N/A]`, as real
nvidia-smi does for unsupported fields.
"""

from __future__ import annotations

from .fields import COMPUTE_APP_FIELDS, GPU_FIELDS, REMAPPED_ROW_FIELDS, RETIRED_PAGE_FIELDS
from .model import MODELS, THROTTLE_BITS, THROTTLE_REASONS

TYPE_CHECKING = False  # not `import typing`: it costs the simulator ~20 ms a call
if TYPE_CHECKING:
    from typing import Any


class FieldError(ValueError):
    """An unknown field name: the real message is `Field "x" is not a valid field to query.`"""


def _index(table: tuple) -> dict[str, tuple[str, str]]:
    """alias or name -> (canonical name, unit)."""
    out = {}
    for name, aliases, unit in table:
        for key in (name, *aliases):
            out[key] = (name, unit)
    return out


GPU_INDEX = _index(GPU_FIELDS)
TABLES = {
    "gpu": GPU_INDEX,
    "compute-apps": _index(COMPUTE_APP_FIELDS),
    "retired-pages": _index(RETIRED_PAGE_FIELDS),
    "remapped-rows": _index(REMAPPED_ROW_FIELDS),
}


def resolve(kind: str, spec: str) -> list[tuple[str, str, str]]:
    """'a,b' -> [(as requested, canonical, unit)]; FieldError on the first unknown name."""
    index = TABLES[kind]
    out = []
    for raw in spec.split(","):
        name = raw.strip()
        if name not in index:
            raise FieldError(f'Field "{name}" is not a valid field to query.')
        canonical, unit = index[name]
        out.append((name, canonical, unit))
    return out


def gpu_values(state: dict[str, Any], gpu: dict[str, Any], timestamp: str) -> dict[str, str]:
    """canonical field -> value without unit (the unit is added by the formatter)."""
    spec = MODELS[state["model"]]
    bus = gpu["pci_bus_id"]
    pcie = gpu["pcie"]
    ev, ea = gpu["ecc"]["volatile"], gpu["ecc"]["aggregate"]
    rp, rr = gpu["retired_pages"], gpu["row_remap"]
    idle = gpu["utilization_gpu"] == 0
    clocks = spec["clocks_idle"] if idle else spec["clocks_max"]
    mask = sum(THROTTLE_BITS[r] for r in gpu["throttle_reasons"])
    used = gpu["memory_used_mib"]
    values = {
        "timestamp": timestamp,
        "driver_version": state["driver_version"],
        "count": str(len(state["gpus"])),
        "name": spec["name"],
        "serial": gpu["serial"],
        "uuid": gpu["uuid"],
        "pci.bus_id": bus,
        "pci.domain": "0x" + bus[4:8],
        "pci.bus": "0x" + bus[9:11],
        "pci.device": "0x" + bus[12:14],
        "pci.baseClass": "0x3",
        "pci.subClass": "0x2",
        "pci.device_id": spec["device_id"],
        "pci.sub_device_id": spec["subsystem_id"],
        "pcie.link.gen.current": str(pcie["gen_current"]),
        "pcie.link.gen.gpucurrent": str(pcie["gen_current"]),
        "pcie.link.gen.max": str(pcie["gen_max"]),
        "pcie.link.gen.gpumax": str(pcie["gen_max"]),
        "pcie.link.width.current": str(pcie["width_current"]),
        "pcie.link.width.max": str(pcie["width_max"]),
        "index": str(gpu["index"]),
        "display_mode": "Disabled",
        "display_active": "Disabled",
        "persistence_mode": gpu["persistence_mode"],
        "addressing_mode": "None",
        "accounting.mode": "Disabled",
        "accounting.buffer_size": "4000",
        "vbios_version": spec["vbios"],
        "inforom.img": spec["inforom"][0],
        "inforom.oem": spec["inforom"][1],
        "inforom.ecc": spec["inforom"][2],
        "inforom.checksum_validation": "valid",
        "pstate": gpu["pstate"],
        "clocks_event_reasons.supported": "0x00000000000001FF",
        "clocks_event_reasons.active": f"0x{mask:016X}",
        "memory.total": str(gpu["memory_total_mib"]),
        "memory.reserved": str(gpu["memory_reserved_mib"]),
        "memory.used": str(used),
        "memory.free": str(gpu["memory_total_mib"] - gpu["memory_reserved_mib"] - used),
        "compute_mode": "Default",
        "compute_cap": spec["compute_cap"],
        "utilization.gpu": str(gpu["utilization_gpu"]),
        "utilization.memory": str(gpu["utilization_memory"]),
        "utilization.encoder": "0",
        "utilization.decoder": "0",
        "utilization.jpeg": "0",
        "utilization.ofa": "0",
        "encoder.stats.sessionCount": "0",
        "encoder.stats.averageFps": "0",
        "encoder.stats.averageLatency": "0",
        "ecc.mode.current": "Enabled",
        "ecc.mode.pending": "Enabled",
        "ecc.errors.corrected.volatile.dram": str(ev["sbe"]),
        "ecc.errors.corrected.volatile.sram": "0",
        "ecc.errors.corrected.volatile.total": str(ev["sbe"]),
        "ecc.errors.corrected.aggregate.dram": str(ea["sbe"]),
        "ecc.errors.corrected.aggregate.sram": "0",
        "ecc.errors.corrected.aggregate.total": str(ea["sbe"]),
        "ecc.errors.uncorrected.volatile.dram": str(ev["dbe"]),
        "ecc.errors.uncorrected.volatile.sram": "0",
        "ecc.errors.uncorrected.volatile.total": str(ev["dbe"]),
        "ecc.errors.uncorrected.aggregate.dram": str(ea["dbe"]),
        "ecc.errors.uncorrected.aggregate.sram": "0",
        "ecc.errors.uncorrected.aggregate.total": str(ea["dbe"]),
        "retired_pages.single_bit_ecc.count": str(rp["sbe"]),
        "retired_pages.double_bit.count": str(rp["dbe"]),
        "retired_pages.pending": "Yes" if rp["pending"] else "No",
        "remapped_rows.correctable": str(rr["correctable"]),
        "remapped_rows.uncorrectable": str(rr["uncorrectable"]),
        "remapped_rows.pending": "Yes" if rr["pending"] else "No",
        "remapped_rows.failure": "Yes" if rr["failure"] else "No",
        "remapped_rows.histogram.max": str(spec["histogram_max"] - rr["correctable"] - rr["uncorrectable"]),
        "remapped_rows.histogram.high": str(min(rr["correctable"] + rr["uncorrectable"], 1)),
        "remapped_rows.histogram.partial": "0",
        "remapped_rows.histogram.low": "0",
        "remapped_rows.histogram.none": "0",
        "temperature.gpu": str(gpu["temperature_gpu"]),
        "temperature.gpu.tlimit": str(spec["temp_max_op"] - gpu["temperature_gpu"]),
        "temperature.memory": str(gpu["temperature_memory"]),
        "power.management": "Enabled",
        "power.draw": f"{gpu['power_draw_w']:.2f}",
        "power.draw.average": f"{gpu['power_draw_w']:.2f}",
        "power.draw.instant": f"{gpu['power_draw_w']:.2f}",
        "power.limit": f"{gpu['power_limit_w']:.2f}",
        "enforced.power.limit": f"{gpu['power_limit_w']:.2f}",
        "power.default_limit": f"{spec['power_limit_w']:.2f}",
        "power.min_limit": f"{spec['power_min_w']:.2f}",
        "power.max_limit": f"{spec['power_limit_w']:.2f}",
        "clocks.current.graphics": str(clocks[0]),
        "clocks.current.sm": str(clocks[1]),
        "clocks.current.memory": str(clocks[2]),
        "clocks.current.video": str(clocks[3]),
        "clocks.applications.graphics": str(spec["clocks_max"][0]),
        "clocks.applications.memory": str(spec["clocks_max"][2]),
        "clocks.default_applications.graphics": str(spec["clocks_max"][0]),
        "clocks.default_applications.memory": str(spec["clocks_max"][2]),
        "clocks.max.graphics": str(spec["clocks_max"][0]),
        "clocks.max.sm": str(spec["clocks_max"][1]),
        "clocks.max.memory": str(spec["clocks_max"][2]),
        "mig.mode.current": "Disabled",
        "mig.mode.pending": "Disabled",
        "gsp.mode.current": "Enabled",
        "gsp.mode.default": "Enabled",
        "c2c.mode": "Disabled",
        "protected_memory.total": "0",
        "protected_memory.used": "0",
        "protected_memory.free": "0",
        "fabric.state": "Completed",
        "fabric.status": "Success",
    }
    for reason in THROTTLE_REASONS:
        values["clocks_event_reasons." + reason] = (
            "Active" if reason in gpu["throttle_reasons"] else "Not Active"
        )
    values.pop("clocks_event_reasons.display_clock_setting")  # not a query field
    for reason in (
        "sw_power_cap",
        "sync_boost",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    ):
        values["clocks_event_reasons_counters." + reason] = "0"
    return values


def cell(value: str | None, unit: str, nounits: bool) -> str:
    if value is None:
        return "[N/A]"
    return value if nounits or not unit else f"{value} {unit}"


def header(fields: list[tuple[str, str, str]], nounits: bool) -> str:
    return ", ".join(name if nounits or not unit else f"{name} [{unit}]" for name, _, unit in fields)


def csv_rows(
    fields: list[tuple[str, str, str]], rows: list[dict[str, str] | str], noheader: bool, nounits: bool
) -> str:
    """rows: value dicts, or a ready line (the 'GPU is lost' message printed in place of a lost GPU's row)."""
    out = [] if noheader else [header(fields, nounits)]
    for row in rows:
        if isinstance(row, str):
            out.append(row)
        else:
            out.append(", ".join(cell(row.get(canonical), unit, nounits) for _, canonical, unit in fields))
    return "".join(line + "\n" for line in out)


def compute_app_rows(
    state: dict[str, Any], gpus: list[dict[str, Any]], timestamp: str
) -> list[dict[str, str] | str]:
    name = MODELS[state["model"]]["name"]
    return [
        {
            "timestamp": timestamp,
            "gpu_name": name,
            "gpu_bus_id": g["pci_bus_id"],
            "gpu_serial": g["serial"],
            "gpu_uuid": g["uuid"],
            "pid": str(p["pid"]),
            "process_name": p["name"],
            "used_gpu_memory": str(p["used_memory_mib"]),
        }
        for g in gpus
        for p in g["processes"]
    ]


def retired_page_rows(
    state: dict[str, Any], gpus: list[dict[str, Any]], timestamp: str
) -> list[dict[str, str] | str]:
    name = MODELS[state["model"]]["name"]
    rows: list[dict[str, str] | str] = []
    for g in gpus:
        base = {
            "timestamp": timestamp,
            "gpu_name": name,
            "gpu_bus_id": g["pci_bus_id"],
            "gpu_serial": g["serial"],
            "gpu_uuid": g["uuid"],
        }
        for cause, count in (
            ("Single Bit ECC", g["retired_pages"]["sbe"]),
            ("Double Bit ECC", g["retired_pages"]["dbe"]),
        ):
            for n in range(count):
                # Page addresses are made up but stable: one distinct page per retirement.
                rows.append(
                    dict(
                        base,
                        **{
                            "retired_pages.address": f"0x{0x12BAC1C + n * 0x40 + g['index']:012x}",
                            "retired_pages.timestamp": timestamp,
                            "retired_pages.cause": cause,
                        },
                    )
                )
    return rows


def remapped_row_rows(gpus: list[dict[str, Any]]) -> list[dict[str, str] | str]:
    return [
        {
            "gpu_bus_id": g["pci_bus_id"],
            "gpu_uuid": g["uuid"],
            "remapped_rows.correctable": str(g["row_remap"]["correctable"]),
            "remapped_rows.uncorrectable": str(g["row_remap"]["uncorrectable"]),
            "remapped_rows.pending": "1" if g["row_remap"]["pending"] else "0",
            "remapped_rows.failure": "1" if g["row_remap"]["failure"] else "0",
        }
        for g in gpus
    ]
