"""SIMULATION: text renderings of nvidia-smi (-q, -q -d, the default table, -L, --version, topo -m). Pure.

Layouts are copied from real captures in ../shared/fixtures/real: `-q` from the 8x H100 535.183.01 capture
(gpud_nvidia-smi-query.535.183.01.out.0.valid.txt: key column 42 wide, 4-space indent), the table from
gpud_nvidia-smi.550.90.07.out.0.valid.txt, topo -m from the nvgpuexp H100 capture (tabs, underlined header).
"""

from __future__ import annotations

from .model import MODELS, THROTTLE_REASONS

TYPE_CHECKING = False  # not `import typing`: it costs the simulator ~20 ms a call
if TYPE_CHECKING:
    from typing import Any

KEY_WIDTH = 42
# -d display type -> the top-level sections of a GPU block it shows (order as in the full -q).
DISPLAY_SECTIONS = {
    "MEMORY": ("FB Memory Usage", "BAR1 Memory Usage", "Conf Compute Protected Memory Usage"),
    "UTILIZATION": ("Utilization",),
    "ECC": ("ECC Mode", "ECC Errors"),
    "TEMPERATURE": ("Temperature",),
    "POWER": ("GPU Power Readings", "Module Power Readings"),
    "CLOCK": (
        "Clocks",
        "Applications Clocks",
        "Default Applications Clocks",
        "Deferred Clocks",
        "Max Clocks",
        "Max Customer Boost Clocks",
        "Clock Policy",
    ),
    "COMPUTE": ("Compute Mode",),
    "PIDS": ("Processes",),
    "PERFORMANCE": ("Performance State", "Clocks Event Reasons"),
    "PAGE_RETIREMENT": ("Retired Pages",),
    "ROW_REMAPPER": ("Remapped Rows",),
    "VOLTAGE": ("Voltage",),
    "ACCOUNTING": ("Accounting Mode", "Accounting Mode Buffer Size"),
    "ENCODER_STATS": ("Encoder Stats",),
    "FBC_STATS": ("FBC Stats",),
    "GSP_FIRMWARE_VERSION": ("GSP Firmware Version",),
}
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


def _lines(nodes: list[Node], level: int, out: list[str]) -> None:
    for key, value in nodes:
        # A key with leading spaces (e.g. "    Type") is one level deeper without being a section,
        # as real nvidia-smi prints HW Thermal Slowdown under HW Slowdown and Type under Process ID.
        indent = "    " * level
        if isinstance(value, list):
            out.append(indent + key)
            _lines(value, level + 1, out)
        else:
            out.append(f"{(indent + key).ljust(KEY_WIDTH)}: {value}")


def gpu_lost_line(gpu: dict[str, Any]) -> str:
    return f"Unable to determine the device handle for GPU {gpu['pci_bus_id'][4:]}: GPU is lost.  Reboot the system to recover this GPU"


def query_text(
    state: dict[str, Any], gpus: list[dict[str, Any]], timestamp: str, displays: list[str] | None = None
) -> str:
    """`nvidia-smi -q [-d X,Y]`: the header, then one block per GPU (only the sections of the -d types)."""
    out = [
        "",
        "==============NVSMI LOG==============",
        "",
        f"{'Timestamp'.ljust(KEY_WIDTH)}: {timestamp}",
        f"{'Driver Version'.ljust(KEY_WIDTH)}: {state['driver_version']}",
        f"{'CUDA Version'.ljust(KEY_WIDTH)}: {state['cuda_version']}",
        "",
        f"{'Attached GPUs'.ljust(KEY_WIDTH)}: {len(state['gpus'])}",
    ]
    wanted = None
    if displays:
        wanted = {section for d in displays for section in DISPLAY_SECTIONS[d]}
    for number, gpu in enumerate(gpus):
        if number:
            out.append("")
        out.append(f"GPU {gpu['pci_bus_id']}")
        nodes = gpu_tree(state, gpu)
        if wanted is not None:
            nodes = [n for n in nodes if n[0] in wanted]
        _lines(nodes, 1, out)
    return "\n".join(out) + "\n"


def list_gpus(state: dict[str, Any], gpus: list[dict[str, Any]]) -> str:
    name = MODELS[state["model"]]["name"]
    return "".join(
        (gpu_lost_line(g) if g["fell_off_bus"] else f"GPU {g['index']}: {name} (UUID: {g['uuid']})") + "\n"
        for g in gpus
    )


def version_text(state: dict[str, Any]) -> str:
    driver = state["driver_version"]
    nvml = ".".join(driver.split(".")[:2])
    return (
        f"NVIDIA-SMI version  : {driver}\n"
        f"NVML version        : {nvml}\n"
        f"DRIVER version      : {driver}\n"
        f"CUDA Version        : {state['cuda_version']}\n"
        "Simulated           : dccli lab (no GPU hardware)\n"
    )


def table(state: dict[str, Any], gpus: list[dict[str, Any]], clock: str) -> str:
    """The default `nvidia-smi` summary, in the layout of the 550.90.07 capture (91 columns)."""
    spec = MODELS[state["model"]]
    rule = "+-----------------------------------------+------------------------+----------------------+"
    driver, cuda = state["driver_version"], state["cuda_version"]
    out = [
        clock,
        "+-----------------------------------------------------------------------------------------+",
        f"| NVIDIA-SMI {driver:<23}Driver Version: {driver:<15}CUDA Version: {cuda:<9}|",
        "|-----------------------------------------+------------------------+----------------------+",
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
        "|                                         |                        |               MIG M. |",
        "|=========================================+========================+======================|",
    ]
    for gpu in gpus:
        pm = "On" if gpu["persistence_mode"] == "Enabled" else "Off"
        out += [
            f"| {gpu['index']:>3}  {spec['name'][:28]:<29}{pm:>4}  | {gpu['pci_bus_id']:>18} Off | {gpu['ecc']['volatile']['dbe']:>20} |",
            f"| N/A  {gpu['temperature_gpu']:>3}C    {gpu['pstate']:<2}{round(gpu['power_draw_w']):>15}W / "
            f"{round(gpu['power_limit_w']):>4}W | {gpu['memory_used_mib']:>7}MiB / {gpu['memory_total_mib']:>6}MiB "
            f"| {gpu['utilization_gpu']:>6}%      Default |",
            "|                                         |                        |             Disabled |",
            rule,
        ]
    out += [
        "",
        "+-----------------------------------------------------------------------------------------+",
        "| Processes:                                                                              |",
        "|  GPU   GI   CI        PID   Type   Process name                              GPU Memory |",
        "|        ID   ID                                                               Usage      |",
        "|=========================================================================================|",
    ]
    rows = [(g["index"], p) for g in gpus for p in g["processes"]]
    if not rows:
        out.append(
            "|  No running processes found                                                             |"
        )
    for index, p in rows:
        out.append(
            f"| {index:>4}  N/A  N/A{p['pid']:>11}      C   {p['name'][:38]:<38}{p['used_memory_mib']:>11}MiB |"
        )
    out.append("+-----------------------------------------------------------------------------------------+")
    return "\n".join(out) + "\n"


def topo_matrix(state: dict[str, Any], gpus: list[dict[str, Any]]) -> str:
    """`nvidia-smi topo -m`: every GPU pair on NVLink (NV<links>), two NUMA nodes split by GPU index."""
    links = MODELS[state["model"]]["nvlinks"]
    count = len(gpus)
    header = (
        "\t\x1b[4m"
        + "\t".join(f"GPU{g['index']}" for g in gpus)
        + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m"
    )
    out = [header]
    for g in gpus:
        cells = [" X " if h is g else f"NV{links}" for h in gpus]
        numa = 0 if g["index"] < max(count, 2) // 2 else 1
        affinity = "0-47,96-143" if numa == 0 else "48-95,144-191"
        out.append(f"GPU{g['index']}\t" + "\t".join(cells) + f"\t{affinity}\t{numa}\t\tN/A")
    out += [
        "",
        "Legend:",
        "",
        "  X    = Self",
        "  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)",
        "  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges within a NUMA node",
        "  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)",
        "  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)",
        "  PIX  = Connection traversing at most a single PCIe bridge",
        "  NV#  = Connection traversing a bonded set of # NVLinks",
    ]
    return "\n".join(out) + "\n"
