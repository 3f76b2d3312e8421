"""SIMULATION: text renderings of nvidia-smi (-q, -q -d, the default table, -L, --version, topo -m). Pure.

Layouts are copied from real captures in ../shared/fixtures/real: `-q` from the 8x H100 535.183.01 capture
(gpud_nvidia-smi-query.535.183.01.out.0.valid.txt: key column 42 wide, 4-space indent), the table from
gpud_nvidia-smi.550.90.07.out.0.valid.txt, topo -m from the nvgpuexp H100 capture (tabs, underlined header).
"""

from __future__ import annotations

from .model import MODELS
from .qtree import Node, gpu_tree

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
