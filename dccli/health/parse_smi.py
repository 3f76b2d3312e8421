"""Pure parsers for nvidia-smi: `-q -x` (XML), `-q` (text), `--query-gpu ... --format=csv`.

All three give the same SmiReport, so checks do not care which form a host (or a capture) produced.
Tested on every real capture in ../shared/fixtures/real (tests/unit/test_health_parsers.py).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from functools import lru_cache

from dccli.health.model import Gpu, GpuProcess, SmiReport

_NUM = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")
_NA = {"", "n/a", "[n/a]", "not supported", "[not supported]", "unknown error", "[unknown error]", "none"}


class SmiParseError(ValueError):
    pass


def number(text: str | None) -> float | None:
    """'27 C' -> 27.0, '16x' -> 16.0, '0 %' -> 0.0; N/A and friends -> None."""
    if text is None or text.strip().lower() in _NA:
        return None
    m = _NUM.match(text)
    return float(m.group(1)) if m else None


def integer(text: str | None) -> int | None:
    v = number(text)
    return int(v) if v is not None else None


def yes_no(text: str | None) -> bool | None:
    t = (text or "").strip().lower()
    if t in ("yes", "true", "active", "enabled"):
        return True
    if t in ("no", "false", "not active", "disabled"):
        return False
    return None


def _sum(values: Iterable[int | None]) -> int | None:
    vals = [v for v in values if v is not None]
    return sum(vals) if vals else None


# ---- XML (-q -x) ----------------------------------------------------------------------------------------

# Sections of a <gpu> that parse_xml never reads. The health probe cuts them out (strip_elements) before
# parsing: two thirds of -q -x, which ElementTree would build for nothing. Keep in step with _gpu_xml: a test
# parses every real capture with and without them and wants the same report.
XML_UNREAD = (
    "supported_clocks",
    "clocks",
    "max_clocks",
    "max_customer_boost_clocks",
    "applications_clocks",
    "default_applications_clocks",
    "deferred_clocks",
    "clock_policy",
    "gpu_power_readings",
    "module_power_readings",
    "power_readings",
    "voltage",
    "encoder_stats",
    "fbc_stats",
    "supported_gpu_target_temp",
    "inforom_version",
    "gpu_virtualization_mode",
    "gpu_reset_status",
    "bar1_memory_usage",
    "cc_protected_memory_usage",
    "mig_mode",
    "mig_devices",
    "gpu_operation_mode",
    "ibmnpu",
    "accounted_processes",
)


def _find(el: ET.Element | None, path: str) -> ET.Element | None:
    """el.find(path) for a plain a/b/c path, one child tag at a time: Element.find takes its C fast path for
    a bare tag, while a path with "/" goes through ElementPath in Python (most of parse_xml's time)."""
    for tag in path.split("/"):
        if el is None:
            return None
        el = el.find(tag)
    return el


def _t(el: ET.Element | None, path: str) -> str | None:
    found = _find(el, path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _ecc_xml(section: ET.Element | None) -> tuple[int | None, int | None]:
    """(corrected, uncorrected) over every memory of an ecc_errors/volatile|aggregate section.

    Old schemas (<=v10) nest single_bit/double_bit with a total; v11+ list sram_/dram_ counters.
    """
    if section is None:
        return None, None
    if section.find("single_bit") is not None:
        return integer(_t(section, "single_bit/total")), integer(_t(section, "double_bit/total"))
    sbe, dbe = [], []
    for child in section:
        tag = child.tag.lower()
        if "threshold" in tag or len(child):
            continue
        if "uncorrectable" in tag:
            dbe.append(integer(child.text))
        elif "correctable" in tag:
            sbe.append(integer(child.text))
    return _sum(sbe), _sum(dbe)


def _reasons_xml(gpu: ET.Element) -> tuple[str, ...]:
    block = gpu.find("clocks_event_reasons")
    if block is None:
        block = gpu.find("clocks_throttle_reasons")
    if block is None:
        return ()
    out = []
    for child in block.iter():
        if child is block or child.text is None or child.text.strip() != "Active":
            continue
        out.append(re.sub(r"^clocks_(event|throttle)_reason_", "", child.tag))
    return tuple(out)


def _gpu_xml(index: int, gpu: ET.Element) -> Gpu:
    vol_sbe, vol_dbe = _ecc_xml(_find(gpu, "ecc_errors/volatile"))
    agg_sbe, agg_dbe = _ecc_xml(_find(gpu, "ecc_errors/aggregate"))
    procs = []
    for p in gpu.findall("processes/process_info"):
        pid = integer(_t(p, "pid"))
        if pid is not None:
            procs.append(GpuProcess(pid, _t(p, "process_name") or "", number(_t(p, "used_memory"))))
    link = _find(gpu, "pci/pci_gpu_link_info")
    pending = _t(gpu, "retired_pages/pending_retirement") or _t(gpu, "retired_pages/pending_blacklist")
    return Gpu(
        index=index,  # position in the report: minor numbers need not be dense
        name=_t(gpu, "product_name") or "",
        bus_id=gpu.get("id", ""),
        uuid=_t(gpu, "uuid") or "",
        persistence_mode=_t(gpu, "persistence_mode"),
        temperature_c=number(_t(gpu, "temperature/gpu_temp")),
        slowdown_temp_c=number(_t(gpu, "temperature/gpu_temp_slow_threshold")),
        utilization_pct=number(_t(gpu, "utilization/gpu_util")),
        memory_total_mib=number(_t(gpu, "fb_memory_usage/total")),
        memory_used_mib=number(_t(gpu, "fb_memory_usage/used")),
        ecc_volatile_sbe=vol_sbe,
        ecc_volatile_dbe=vol_dbe,
        ecc_aggregate_sbe=agg_sbe,
        ecc_aggregate_dbe=agg_dbe,
        retired_sbe=integer(_t(gpu, "retired_pages/multiple_single_bit_retirement/retired_count")),
        retired_dbe=integer(_t(gpu, "retired_pages/double_bit_retirement/retired_count")),
        retired_pending=yes_no(pending),
        remap_correctable=integer(_t(gpu, "remapped_rows/remapped_row_corr")),
        remap_uncorrectable=integer(_t(gpu, "remapped_rows/remapped_row_unc")),
        remap_pending=yes_no(_t(gpu, "remapped_rows/remapped_row_pending")),
        remap_failure=yes_no(_t(gpu, "remapped_rows/remapped_row_failure")),
        throttle_active=_reasons_xml(gpu),
        pcie_gen_current=integer(_t(link, "pcie_gen/current_link_gen")),
        pcie_gen_max=integer(_t(link, "pcie_gen/max_link_gen")),
        pcie_width_current=integer(_t(link, "link_widths/current_link_width")),
        pcie_width_max=integer(_t(link, "link_widths/max_link_width")),
        processes=tuple(procs),
        fabric_state=_known(_t(gpu, "fabric/state")),
        fabric_status=_known(_t(gpu, "fabric/status")),
    )


def _known(text: str | None) -> str | None:
    return None if text is None or text.strip().lower() in _NA else text.strip()


def strip_elements(text: str, tags: Iterable[str]) -> str:
    """text less every <tag>...</tag> element of tags (leaving its line's indentation). One regex pass, no
    parse: the point is to hand ElementTree a third of the text (30 str.find scans cost as much as parsing)."""
    return _unread_pattern(tuple(tags)).sub("", text)


@lru_cache(maxsize=4)
def _unread_pattern(tags: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(map(re.escape, tags))
    return re.compile(rf"<({names})>.*?</\1>\n?", re.S)


def parse_xml(text: str) -> SmiReport:
    """`nvidia-smi -q -x`. The DOCTYPE names an external DTD, which ElementTree never fetches."""
    try:
        root = ET.fromstring(text.strip().encode())
    except ET.ParseError as exc:
        raise SmiParseError(f"not nvidia-smi XML: {exc}") from None
    if root.tag != "nvidia_smi_log":
        raise SmiParseError(f"not nvidia-smi XML: root element <{root.tag}>")
    gpus = tuple(_gpu_xml(i, g) for i, g in enumerate(root.findall("gpu")))
    driver = _t(root, "driver_version")
    return SmiReport(
        "xml",
        None if (driver or "").upper() == "N/A" else driver,
        _t(root, "cuda_version"),
        integer(_t(root, "attached_gpus")),
        gpus,
    )


# ---- text (-q) ------------------------------------------------------------------------------------------


class _Node:
    __slots__ = ("children", "key", "value")

    def __init__(self, key: str, value: str | None) -> None:
        self.key, self.value, self.children = key, value, []

    def get(self, *path: str) -> _Node | None:
        node: _Node | None = self
        for part in path:
            node = next((c for c in node.children if c.key == part), None) if node else None
        return node

    def val(self, *path: str) -> str | None:
        node = self.get(*path)
        return node.value if node else None


_GPU_HEADER = re.compile(r"^GPU [0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f.]+$")


def _tree(text: str) -> _Node:
    """Indentation tree of `Key : Value` lines; a line with deeper lines below it is their parent."""
    root = _Node("", None)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("=====") or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" \t"))
        if _GPU_HEADER.match(raw.strip()):  # "GPU 00000000:19:00.0": the colons belong to the bus id
            node = _Node(raw.strip(), None)
        else:
            key, sep, value = raw.strip().partition(":")
            node = _Node(key.strip(), value.strip() if sep else None)
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def _ecc_text(node: _Node | None) -> tuple[int | None, int | None]:
    if node is None:
        return None, None
    if node.get("Single Bit") is not None:
        return integer(node.val("Single Bit", "Total")), integer(node.val("Double Bit", "Total"))
    sbe, dbe = [], []
    for c in node.children:
        k = c.key.lower()
        if "threshold" in k or c.children:
            continue
        if "uncorrectable" in k:
            dbe.append(integer(c.value))
        elif "correctable" in k:
            sbe.append(integer(c.value))
    return _sum(sbe), _sum(dbe)


def _flatten(node: _Node | None) -> list[_Node]:
    out: list[_Node] = []
    for c in node.children if node else []:
        out.append(c)
        out.extend(_flatten(c))
    return out


def _reason_name(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def _gpu_text(index: int, g: _Node) -> Gpu:
    vol_sbe, vol_dbe = _ecc_text(g.get("ECC Errors", "Volatile"))
    agg_sbe, agg_dbe = _ecc_text(g.get("ECC Errors", "Aggregate"))
    reasons = g.get("Clocks Event Reasons") or g.get("Clocks Throttle Reasons")
    procs = []
    for p in g.get("Processes").children if g.get("Processes") else []:
        if p.key == "Process ID" and integer(p.value) is not None:
            procs.append(
                GpuProcess(int(number(p.value) or 0), p.val("Name") or "", number(p.val("Used GPU Memory")))
            )
    link = g.get("PCI", "GPU Link Info")
    pending = g.val("Retired Pages", "Pending Page Retirement") or g.val(
        "Retired Pages", "Pending Page Blacklist"
    )
    return Gpu(
        index=index,
        name=g.val("Product Name") or "",
        bus_id=g.key.split(" ", 1)[1] if " " in g.key else "",
        uuid=g.val("GPU UUID") or "",
        persistence_mode=g.val("Persistence Mode"),
        temperature_c=number(g.val("Temperature", "GPU Current Temp")),
        slowdown_temp_c=number(g.val("Temperature", "GPU Slowdown Temp")),
        utilization_pct=number(g.val("Utilization", "Gpu")),
        memory_total_mib=number(g.val("FB Memory Usage", "Total")),
        memory_used_mib=number(g.val("FB Memory Usage", "Used")),
        ecc_volatile_sbe=vol_sbe,
        ecc_volatile_dbe=vol_dbe,
        ecc_aggregate_sbe=agg_sbe,
        ecc_aggregate_dbe=agg_dbe,
        retired_sbe=integer(g.val("Retired Pages", "Single Bit ECC")),
        retired_dbe=integer(g.val("Retired Pages", "Double Bit ECC")),
        retired_pending=yes_no(pending),
        remap_correctable=integer(g.val("Remapped Rows", "Correctable Error")),
        remap_uncorrectable=integer(g.val("Remapped Rows", "Uncorrectable Error")),
        remap_pending=yes_no(g.val("Remapped Rows", "Pending")),
        remap_failure=yes_no(g.val("Remapped Rows", "Remapping Failure Occurred")),
        throttle_active=tuple(_reason_name(n.key) for n in _flatten(reasons) if n.value == "Active"),
        pcie_gen_current=integer(link.val("PCIe Generation", "Current")) if link else None,
        pcie_gen_max=integer(link.val("PCIe Generation", "Max")) if link else None,
        pcie_width_current=integer(link.val("Link Width", "Current")) if link else None,
        pcie_width_max=integer(link.val("Link Width", "Max")) if link else None,
        processes=tuple(procs),
        fabric_state=_known(g.val("Fabric", "State")),
        fabric_status=_known(g.val("Fabric", "Status")),
    )


_VERSION = re.compile(r"^\s*(\d+(?:\.\d+)+)")


def _version(text: str | None) -> str | None:
    """'610.57.04 [Deprecated; ... Use KMD Version instead]' -> '610.57.04' (drivers >= 610 add the note)."""
    m = _VERSION.match(text or "")
    return m.group(1) if m else None


def parse_text(text: str) -> SmiReport:
    """`nvidia-smi -q` (any -d selection): the NVSMI LOG header, then one `GPU <bus id>` section each."""
    if "NVSMI LOG" not in text and "Attached GPUs" not in text:
        raise SmiParseError("not `nvidia-smi -q` output (no NVSMI LOG header)")
    root = _tree(text)
    gpus = [c for c in root.children if _GPU_HEADER.match(c.key)]
    driver = _version(root.val("KMD Version")) or _version(root.val("Driver Version"))
    cuda = _version(root.val("CUDA UMD Version")) or _version(root.val("CUDA Version"))
    return SmiReport(
        "text",
        driver,
        cuda,
        integer(root.val("Attached GPUs")),
        tuple(_gpu_text(i, g) for i, g in enumerate(gpus)),
    )


# ---- CSV (--query-gpu) ----------------------------------------------------------------------------------

# Fields the probe asks for; the simulator and real nvidia-smi both answer them.
QUERY_FIELDS = (
    "index",
    "name",
    "pci.bus_id",
    "uuid",
    "driver_version",
    "persistence_mode",
    "temperature.gpu",
    "utilization.gpu",
    "memory.total",
    "memory.used",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "pcie.link.width.max",
)


def _first(row: dict[str, str | None], *names: str) -> str | None:
    for n in names:
        if row.get(n) is not None:
            return row[n]
    return None


def parse_csv(text: str) -> SmiReport:
    """`--query-gpu=...--format=csv` with its header (units stripped by facts.parse.parse_query_csv)."""
    from dccli.facts.parse import parse_query_csv

    first = text.strip().splitlines()[0] if text.strip() else ""
    if "," not in first and first.strip() not in ("name", "index"):
        raise SmiParseError("not --query-gpu CSV with a header line")
    rows = parse_query_csv(text)
    gpus = []
    for i, r in enumerate(rows):
        reasons = tuple(
            k.split(".", 1)[1]
            for k, v in r.items()
            if k.startswith(("clocks_event_reasons.", "clocks_throttle_reasons.")) and v == "Active"
        )
        gpus.append(
            Gpu(
                index=integer(r.get("index")) if r.get("index") is not None else i,
                name=r.get("name") or "",
                bus_id=r.get("pci.bus_id") or "",
                uuid=r.get("uuid") or "",
                persistence_mode=r.get("persistence_mode"),
                temperature_c=number(r.get("temperature.gpu")),
                utilization_pct=number(r.get("utilization.gpu")),
                memory_total_mib=number(r.get("memory.total")),
                memory_used_mib=number(r.get("memory.used")),
                ecc_volatile_sbe=integer(r.get("ecc.errors.corrected.volatile.total")),
                ecc_volatile_dbe=integer(r.get("ecc.errors.uncorrected.volatile.total")),
                ecc_aggregate_sbe=integer(r.get("ecc.errors.corrected.aggregate.total")),
                ecc_aggregate_dbe=integer(r.get("ecc.errors.uncorrected.aggregate.total")),
                retired_sbe=integer(_first(r, "retired_pages.single_bit_ecc.count", "retired_pages.sbe")),
                retired_dbe=integer(_first(r, "retired_pages.double_bit.count", "retired_pages.dbe")),
                retired_pending=yes_no(r.get("retired_pages.pending")),
                remap_correctable=integer(r.get("remapped_rows.correctable")),
                remap_uncorrectable=integer(r.get("remapped_rows.uncorrectable")),
                remap_pending=yes_no(r.get("remapped_rows.pending")),
                remap_failure=yes_no(r.get("remapped_rows.failure")),
                throttle_active=reasons,
                pcie_gen_current=integer(r.get("pcie.link.gen.current")),
                pcie_gen_max=integer(r.get("pcie.link.gen.max")),
                pcie_width_current=integer(r.get("pcie.link.width.current")),
                pcie_width_max=integer(r.get("pcie.link.width.max")),
            )
        )
    drivers = {r.get("driver_version") for r in rows if r.get("driver_version")}
    return SmiReport("csv", drivers.pop() if len(drivers) == 1 else None, None, len(rows), tuple(gpus))


def parse_any(text: str) -> SmiReport:
    """Whichever form `text` is in."""
    head = text.lstrip()[:200]
    if head.startswith("<?xml") or head.startswith("<nvidia_smi_log") or "<!DOCTYPE nvidia_smi_log" in head:
        return parse_xml(text)
    if "NVSMI LOG" in text[:400] or "Attached GPUs" in text[:2000]:
        return parse_text(text)
    return parse_csv(text)


def parse_nvlink_status(text: str) -> list[tuple[int, int, bool, str]]:
    """`nvidia-smi nvlink -s`: (gpu, link, up, speed) per link; `<inactive>` links are down."""
    out: list[tuple[int, int, bool, str]] = []
    gpu = -1
    for line in text.splitlines():
        m = re.match(r"GPU (\d+):", line.strip())
        if m:
            gpu = int(m.group(1))
            continue
        if gpu >= 0 and "all links are inactive" in line:
            out.append((gpu, -1, False, "all links inactive"))
            continue
        m = re.match(r"Link (\d+):\s*(.*)$", line.strip())
        if m and gpu >= 0:
            speed = m.group(2).strip()
            out.append((gpu, int(m.group(1)), "inactive" not in speed.lower() and bool(speed), speed))
    return out
