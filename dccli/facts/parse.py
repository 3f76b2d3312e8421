"""Pure parsers for the raw sources the helper collects; tested against real captures."""

from __future__ import annotations

import csv
import io
import re

_UNIT = re.compile(r"\s*\[[^\]]*\]$")
_NA = {"[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", ""}


def parse_os_release(text: str | None) -> dict[str, str]:
    """/etc/os-release as a dict (shell-style quoting removed)."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def parse_meminfo(text: str | None) -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        value = int(parts[0])
        if len(parts) > 1 and parts[1].lower() == "kb":
            value *= 1024
        out[key.strip()] = value
    return out


def parse_cpu_model(text: str | None) -> str | None:
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model", "Processor"):
            return value.strip() or None
    return None


def parse_query_csv(text: str) -> list[dict[str, str | None]]:
    """`nvidia-smi --query-gpu=... --format=csv` (with header): one dict per GPU.

    Header names lose their unit suffix ("memory.total [MiB]" -> "memory.total"), values lose the
    unit ("81559 MiB" -> "81559"), and N/A-like values become None.
    """
    rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    if not rows:
        return []
    header = [_UNIT.sub("", h.strip()) for h in rows[0]]
    units = [(m.group(0).strip()[1:-1] if (m := _UNIT.search(h.strip())) else None) for h in rows[0]]
    gpus = []
    for row in rows[1:]:
        if not row or len(row) != len(header):
            continue
        item: dict[str, str | None] = {}
        for name, unit, raw in zip(header, units, row, strict=True):
            value = raw.strip()
            if value in _NA or value.startswith("[Requested functionality"):
                item[name] = None
                continue
            if unit and value.endswith(" " + unit):
                value = value[: -len(unit) - 1]
            item[name] = value
        gpus.append(item)
    return gpus


def parse_smi_version(text: str) -> dict[str, str]:
    """`nvidia-smi --version`: driver and CUDA versions ("CUDA Version : 13.1")."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return {"driver_version": out.get("driver version", ""), "cuda_version": out.get("cuda version", "")}


def parse_cuda_from_q(text: str) -> str | None:
    """The CUDA version from the header of `nvidia-smi -q` or the default table."""
    m = re.search(r"CUDA Version\s*:\s*([0-9.]+)", text)
    return m.group(1) if m else None
