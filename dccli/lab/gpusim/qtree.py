"""SIMULATION: the GPU block of `nvidia-smi -q` as a tree of (key, value | [children]) nodes. Pure.

Keys, nesting and order are those of the 8x H100 535.183.01 capture
(gpud_nvidia-smi-query.535.183.01.out.0.valid.txt); render_text lays the tree out.
"""

from __future__ import annotations

from .model import MODELS, THROTTLE_REASONS

TYPE_CHECKING = False  # not `import typing` at run time: it costs every nvidia-smi call ~20 ms
if TYPE_CHECKING:
    from typing import Any

THROTTLE_LABELS = {
    "gpu_idle": "Idle",
    "applications_clocks_setting": "Applications Clocks Setting",
    "sw_power_cap": "SW Power Cap",
    "hw_slowdown": "HW Slowdown",
    "hw_thermal_slowdown": "HW Thermal Slowdown",
    "hw_power_brake_slowdown": "HW Power Brake Slowdown",
    "sync_boost": "Sync Boost",
    "sw_thermal_slowdown": "SW Thermal Slowdown",
    "display_clock_setting": "Display Clock Setting",
}

Node = tuple  # (key, value) or (key, [children]) - a section when the value is a list


def yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def active(gpu: dict[str, Any], reason: str) -> str:
    return "Active" if reason in gpu["throttle_reasons"] else "Not Active"


def gpu_tree(state: dict[str, Any], gpu: dict[str, Any]) -> list[Node]:
    """The GPU block of `nvidia-smi -q` as (key, value | [children]) nodes."""
    spec = MODELS[state["model"]]
    bus = gpu["pci_bus_id"]
    pcie = gpu["pcie"]
    ecc_v, ecc_a = gpu["ecc"]["volatile"], gpu["ecc"]["aggregate"]
    rp, rr = gpu["retired_pages"], gpu["row_remap"]
    free = gpu["memory_total_mib"] - gpu["memory_reserved_mib"] - gpu["memory_used_mib"]
    idle = gpu["utilization_gpu"] == 0
    clocks = spec["clocks_idle"] if idle else spec["clocks_max"]
    reasons = [
        (THROTTLE_LABELS[r], active(gpu, r))
        for r in THROTTLE_REASONS
        if r not in ("hw_thermal_slowdown", "hw_power_brake_slowdown")
    ]
    event_reasons: list[Node] = []
    for label, value in reasons:
        event_reasons.append((label, value))
        if label == "HW Slowdown":
            event_reasons += [
                ("    HW Thermal Slowdown", active(gpu, "hw_thermal_slowdown")),
                ("    HW Power Brake Slowdown", active(gpu, "hw_power_brake_slowdown")),
            ]
    if gpu["processes"]:
        procs: Any = []
        for p in gpu["processes"]:
            procs += [
                ("GPU instance ID", "N/A"),
                ("Compute instance ID", "N/A"),
                ("Process ID", str(p["pid"])),
                ("    Type", "C"),
                ("    Name", p["name"]),
                ("    Used GPU Memory", f"{p['used_memory_mib']} MiB"),
            ]
    else:
        procs = "None"
    power_limit = f"{gpu['power_limit_w']:.2f} W"
    return [
        ("Product Name", spec["name"]),
        ("Product Brand", "NVIDIA"),
        ("Product Architecture", spec["architecture"]),
        ("Display Mode", "Disabled"),
        ("Display Active", "Disabled"),
        ("Persistence Mode", gpu["persistence_mode"]),
        ("Addressing Mode", "None"),
        ("MIG Mode", [("Current", "Disabled"), ("Pending", "Disabled")]),
        ("Accounting Mode", "Disabled"),
        ("Accounting Mode Buffer Size", "4000"),
        ("Driver Model", [("Current", "N/A"), ("Pending", "N/A")]),
        ("Serial Number", gpu["serial"]),
        ("GPU UUID", gpu["uuid"]),
        ("Minor Number", str(gpu["index"])),
        ("VBIOS Version", spec["vbios"]),
        ("MultiGPU Board", "No"),
        ("Board ID", "0x" + bus[9:11].lower() + "00"),
        ("Board Part Number", spec["board_part"]),
        ("GPU Part Number", spec["gpu_part"]),
        ("FRU Part Number", "N/A"),
        ("Module ID", str(gpu["index"] + 1)),
        (
            "Inforom Version",
            [
                ("Image Version", spec["inforom"][0]),
                ("OEM Object", spec["inforom"][1]),
                ("ECC Object", spec["inforom"][2]),
                ("Power Management Object", "N/A"),
            ],
        ),
        ("Inforom BBX Object Flush", [("Latest Timestamp", "N/A"), ("Latest Duration", "N/A")]),
        ("GPU Operation Mode", [("Current", "N/A"), ("Pending", "N/A")]),
        ("GSP Firmware Version", state["driver_version"]),
        ("GPU Virtualization Mode", [("Virtualization Mode", "Pass-Through"), ("Host VGPU Mode", "N/A")]),
        ("GPU Reset Status", [("Reset Required", "No"), ("Drain and Reset Recommended", "No")]),
        ("IBMNPU", [("Relaxed Ordering Mode", "N/A")]),
        (
            "PCI",
            [
                ("Bus", "0x" + bus[9:11]),
                ("Device", "0x" + bus[12:14]),
                ("Domain", "0x" + bus[4:8]),
                ("Device Id", spec["device_id"]),
                ("Bus Id", bus),
                ("Sub System Id", spec["subsystem_id"]),
                (
                    "GPU Link Info",
                    [
                        (
                            "PCIe Generation",
                            [
                                ("Max", str(pcie["gen_max"])),
                                ("Current", str(pcie["gen_current"])),
                                ("Device Current", str(pcie["gen_current"])),
                                ("Device Max", str(pcie["gen_max"])),
                                ("Host Max", "N/A"),
                            ],
                        ),
                        (
                            "Link Width",
                            [("Max", f"{pcie['width_max']}x"), ("Current", f"{pcie['width_current']}x")],
                        ),
                    ],
                ),
                ("Bridge Chip", [("Type", "N/A"), ("Firmware", "N/A")]),
                ("Replays Since Reset", "0"),
                ("Replay Number Rollovers", "0"),
                ("Tx Throughput", "0 KB/s"),
                ("Rx Throughput", "0 KB/s"),
                ("Atomic Caps Inbound", "N/A"),
                ("Atomic Caps Outbound", "N/A"),
            ],
        ),
        ("Fan Speed", "N/A"),
        ("Performance State", gpu["pstate"]),
        ("Clocks Event Reasons", event_reasons),
        ("Sparse Operation Mode", "Disabled"),
        (
            "FB Memory Usage",
            [
                ("Total", f"{gpu['memory_total_mib']} MiB"),
                ("Reserved", f"{gpu['memory_reserved_mib']} MiB"),
                ("Used", f"{gpu['memory_used_mib']} MiB"),
                ("Free", f"{free} MiB"),
            ],
        ),
        ("BAR1 Memory Usage", [("Total", "131072 MiB"), ("Used", "1 MiB"), ("Free", "131071 MiB")]),
        ("Conf Compute Protected Memory Usage", [("Total", "0 MiB"), ("Used", "0 MiB"), ("Free", "0 MiB")]),
        ("Compute Mode", "Default"),
        (
            "Utilization",
            [
                ("Gpu", f"{gpu['utilization_gpu']} %"),
                ("Memory", f"{gpu['utilization_memory']} %"),
                ("Encoder", "0 %"),
                ("Decoder", "0 %"),
                ("JPEG", "0 %"),
                ("OFA", "0 %"),
            ],
        ),
        ("Encoder Stats", [("Active Sessions", "0"), ("Average FPS", "0"), ("Average Latency", "0")]),
        ("FBC Stats", [("Active Sessions", "0"), ("Average FPS", "0"), ("Average Latency", "0")]),
        ("ECC Mode", [("Current", "Enabled"), ("Pending", "Enabled")]),
        (
            "ECC Errors",
            [
                ("Volatile", _ecc_rows(ecc_v, aggregate=False)),
                ("Aggregate", _ecc_rows(ecc_a, aggregate=True)),
                (
                    "Aggregate Uncorrectable SRAM Sources",
                    [
                        ("SRAM L2", "0"),
                        ("SRAM SM", "0"),
                        ("SRAM Microcontroller", "0"),
                        ("SRAM PCIE", "0"),
                        ("SRAM Other", "0"),
                    ],
                ),
            ],
        ),
        (
            "Retired Pages",
            [
                ("Single Bit ECC", str(rp["sbe"])),
                ("Double Bit ECC", str(rp["dbe"])),
                ("Pending Page Blacklist", yes_no(rp["pending"])),
            ],
        ),
        (
            "Remapped Rows",
            [
                ("Correctable Error", str(rr["correctable"])),
                ("Uncorrectable Error", str(rr["uncorrectable"])),
                ("Pending", yes_no(rr["pending"])),
                ("Remapping Failure Occurred", yes_no(rr["failure"])),
                (
                    "Bank Remap Availability Histogram",
                    [
                        ("Max", f"{spec['histogram_max'] - rr['uncorrectable'] - rr['correctable']} bank(s)"),
                        ("High", f"{min(rr['uncorrectable'] + rr['correctable'], 1)} bank(s)"),
                        ("Partial", "0 bank(s)"),
                        ("Low", "0 bank(s)"),
                        ("None", "0 bank(s)"),
                    ],
                ),
            ],
        ),
        (
            "Temperature",
            [
                ("GPU Current Temp", f"{gpu['temperature_gpu']} C"),
                ("GPU T.Limit Temp", f"{spec['temp_max_op'] - gpu['temperature_gpu']} C"),
                ("GPU Shutdown T.Limit Temp", f"{gpu['temperature_gpu'] - spec['temp_shutdown']} C"),
                ("GPU Slowdown T.Limit Temp", f"{gpu['temperature_gpu'] - spec['temp_slowdown']} C"),
                ("GPU Max Operating T.Limit Temp", "0 C"),
                ("GPU Target Temperature", "N/A"),
                ("Memory Current Temp", f"{gpu['temperature_memory']} C"),
                ("Memory Max Operating T.Limit Temp", "0 C"),
            ],
        ),
        (
            "GPU Power Readings",
            [
                ("Power Draw", f"{gpu['power_draw_w']:.2f} W"),
                ("Current Power Limit", power_limit),
                ("Requested Power Limit", power_limit),
                ("Default Power Limit", f"{spec['power_limit_w']:.2f} W"),
                ("Min Power Limit", f"{spec['power_min_w']:.2f} W"),
                ("Max Power Limit", f"{spec['power_limit_w']:.2f} W"),
            ],
        ),
        (
            "Module Power Readings",
            [
                ("Power Draw", "N/A"),
                ("Current Power Limit", "N/A"),
                ("Requested Power Limit", "N/A"),
                ("Default Power Limit", "N/A"),
                ("Min Power Limit", "N/A"),
                ("Max Power Limit", "N/A"),
            ],
        ),
        ("Clocks", _clock_rows(clocks)),
        (
            "Applications Clocks",
            [("Graphics", f"{spec['clocks_max'][0]} MHz"), ("Memory", f"{spec['clocks_max'][2]} MHz")],
        ),
        (
            "Default Applications Clocks",
            [("Graphics", f"{spec['clocks_max'][0]} MHz"), ("Memory", f"{spec['clocks_max'][2]} MHz")],
        ),
        ("Deferred Clocks", [("Memory", "N/A")]),
        ("Max Clocks", _clock_rows(spec["clocks_max"])),
        ("Max Customer Boost Clocks", [("Graphics", f"{spec['clocks_max'][0]} MHz")]),
        ("Clock Policy", [("Auto Boost", "N/A"), ("Auto Boost Default", "N/A")]),
        ("Voltage", [("Graphics", "670.000 mV")]),
        ("Fabric", [("State", "Completed"), ("Status", "Success")]),
        ("Processes", procs),
    ]


def _ecc_rows(counts: dict[str, int], aggregate: bool) -> list[Node]:
    rows = [
        ("SRAM Correctable", "0"),
        ("SRAM Uncorrectable Parity", "0"),
        ("SRAM Uncorrectable SEC-DED", "0"),
        ("DRAM Correctable", str(counts["sbe"])),
        ("DRAM Uncorrectable", str(counts["dbe"])),
    ]
    return [*rows, ("SRAM Threshold Exceeded", "No")] if aggregate else rows


def _clock_rows(clocks: tuple) -> list[Node]:
    graphics, sm, memory, video = clocks
    return [
        ("Graphics", f"{graphics} MHz"),
        ("SM", f"{sm} MHz"),
        ("Memory", f"{memory} MHz"),
        ("Video", f"{video} MHz"),
    ]
