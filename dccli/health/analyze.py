"""`dccli health analyze FILE...`: the same checks on captured outputs, offline.

Reads nvidia-smi `-q -x` XML, `-q` text, `--query-gpu` CSV, capture bundles (nvidia_gpu_exporter's
collect.sh: sections headed `# $ nvidia-smi ...`), kernel logs (dmesg, journalctl -k, /dev/kmsg, syslog),
ibstat/ibstatus and `nvidia-smi nvlink -s`. No inventory: the expected GPU count is the capture's own
"Attached GPUs", and every Xid in the log counts as new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dccli.health import parse_logs, parse_smi
from dccli.health.checks_gpu import gpu_checks, xid_check
from dccli.health.checks_host import host_checks
from dccli.health.model import CheckResult, HostFacts, NvLink, SmiReport
from dccli.health.thresholds import Limits, defaults

KINDS = (
    "nvidia-smi-xml",
    "nvidia-smi-q",
    "nvidia-smi-csv",
    "capture-bundle",
    "kernel-log",
    "ibstat",
    "nvlink-status",
)


class AnalyzeError(ValueError):
    """A file that is none of the kinds analyze reads (or cannot be read)."""


@dataclass(frozen=True)
class Analysis:
    path: str
    kind: str
    facts: dict[str, Any]
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "kind": self.kind,
            "facts": self.facts,
            "results": [r.to_dict() for r in self.results],
        }


_SECTION = re.compile(r"^# (?P<title>[^\n]*::[^\n]*)\n# \$ (?P<cmd>[^\n]*)\n#{20,}\n", re.M)


def bundle_sections(text: str) -> list[tuple[str, str, str]]:
    """(title, command, body) per section of a collect.sh capture bundle."""
    marks = list(_SECTION.finditer(text))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end() : end]
        body = re.sub(r"\n#{20,}\n?$", "\n", body.rstrip("\n") + "\n")
        out.append((m.group("title").strip(), m.group("cmd").strip(), body))
    return out


def detect(text: str) -> str:
    head = text.lstrip()[:300]
    if head.startswith("<?xml") or "<nvidia_smi_log" in text[:2000]:
        return "nvidia-smi-xml"
    if "# nvidia_gpu_exporter GPU capture" in text[:400] or _SECTION.search(text[:5000]):
        return "capture-bundle"
    if "NVSMI LOG" in text[:400]:
        return "nvidia-smi-q"
    if re.search(r"^CA '[^']+'$", text, re.M) or re.search(
        r"^Infiniband device '[^']+' port \d+ status:", text, re.M
    ):
        return "ibstat"
    if re.search(r"^GPU \d+: .*\(UUID: ", text[:1000], re.M) and ("Link 0:" in text or "NVLink" in text):
        return "nvlink-status"
    if head.startswith("{") and '"filesystems"' in text[:200]:
        return "findmnt-json"
    if re.match(r"^\d+ \d+ \d+:\d+ \S+ \S+ .* - \S+", head):
        return "mountinfo"
    if parse_logs.looks_like_kernel_log(text):
        return "kernel-log"
    first = head.splitlines()[0] if head else ""
    if "," in first and re.search(
        r"\b(name|index|uuid|pci\.bus_id|driver_version|temperature\.gpu)\b", first
    ):
        return "nvidia-smi-csv"
    raise AnalyzeError(
        "not a capture dccli reads (nvidia-smi -q/-q -x/--query-gpu CSV, dmesg/journalctl/kmsg, "
        "ibstat, nvlink -s)"
    )


def _smi_facts(rep: SmiReport) -> dict[str, Any]:
    return {
        "gpu_count": len(rep.gpus),
        "attached_gpus": rep.attached_gpus,
        "models": sorted({g.name for g in rep.gpus if g.name}),
        "driver_version": rep.driver_version,
        "cuda_version": rep.cuda_version,
        "form": rep.form,
    }


def _smi_results(name: str, rep: SmiReport, lim: Limits) -> list[CheckResult]:
    facts = HostFacts(host=name, smi=rep)
    expected = rep.attached_gpus if rep.attached_gpus is not None else len(rep.gpus)
    return [
        r
        for r in gpu_checks(facts, expected, None, lim, None, expected_from="the capture's Attached GPUs")
        if r.check not in ("gpu.xid", "gpu.processes")
    ]


def analyze_text(name: str, text: str, lim: Limits | None = None) -> Analysis:
    lim = lim or defaults()
    kind = detect(text)
    if kind in ("nvidia-smi-xml", "nvidia-smi-q", "nvidia-smi-csv"):
        rep = {
            "nvidia-smi-xml": parse_smi.parse_xml,
            "nvidia-smi-q": parse_smi.parse_text,
            "nvidia-smi-csv": parse_smi.parse_csv,
        }[kind](text)
        return Analysis(name, kind, _smi_facts(rep), tuple(_smi_results(name, rep, lim)))
    if kind == "capture-bundle":
        sections = bundle_sections(text)
        q = next((b for t, c, b in sections if c.strip() == "nvidia-smi -q"), None)
        csv_body = next((b for t, c, b in sections if "--query-gpu=" in c), None)
        version = next((b for t, c, b in sections if c.strip() == "nvidia-smi --version"), "")
        if q is None:
            raise AnalyzeError("capture bundle without an `nvidia-smi -q` section")
        rep = parse_smi.parse_text(q)
        facts = _smi_facts(rep)
        if csv_body is not None:
            facts["csv_gpu_count"] = len(parse_smi.parse_csv(csv_body).gpus)
        facts["version_section_driver"] = _section_driver(version)
        return Analysis(name, kind, facts, tuple(_smi_results(name, rep, lim)))
    if kind == "kernel-log":
        xids = tuple(parse_logs.parse_xids(text))
        facts = {
            "lines": len(text.splitlines()),
            "xid_codes": sorted({e.xid for e in xids}),
            "xid_events": len(xids),
            "gpus_with_xid": sorted({e.pci for e in xids}),
        }
        return Analysis(name, kind, facts, tuple(xid_check(HostFacts(host=name, xids=xids), None)))
    if kind == "ibstat":
        ports = tuple(parse_logs.parse_ibstat(text))
        facts = {
            "ports": [
                {
                    "device": p.device,
                    "port": p.port,
                    "state": p.state,
                    "rate_gbps": p.rate_gbps,
                    "link_layer": p.link_layer,
                }
                for p in ports
            ],
            "states": {s: sum(1 for p in ports if p.state == s) for s in sorted({p.state for p in ports})},
        }
        return Analysis(name, kind, facts, tuple(host_checks(HostFacts(host=name, ib_ports=ports), lim)))
    if kind == "findmnt-json":
        mounts = tuple(parse_logs.parse_findmnt_json(text))
        facts = {
            "mounts": [
                {
                    "target": m.path,
                    "fstype": m.fstype,
                    "size": m.size,
                    "free": m.free,
                    "used_pct": round(m.used_pct, 1),
                }
                for m in mounts
            ]
        }
        return Analysis(name, kind, facts, tuple(host_checks(HostFacts(host=name, mounts=mounts), lim)))
    if kind == "mountinfo":
        entries = parse_logs.parse_mountinfo(text)
        fstypes = sorted({t for _, t, _ in entries})
        facts = {"mounts": len(entries), "fstypes": fstypes, "targets": [p for p, _, _ in entries]}
        return Analysis(name, kind, facts, ())  # no sizes in mountinfo: nothing to judge
    links = tuple(NvLink(g, ln, up, sp) for g, ln, up, sp in parse_smi.parse_nvlink_status(text))
    facts = {
        "links": len(links),
        "down": sum(1 for x in links if not x.up),
        "gpus": sorted({x.gpu for x in links}),
    }
    smi = SmiReport("text", None, None, None, ())
    res = [
        r
        for r in gpu_checks(HostFacts(host=name, smi=smi, nvlinks=links), 0, None, lim, None)
        if r.check == "gpu.nvlink"
    ]
    if not links:
        raise AnalyzeError("nvlink status without any GPU link line")
    return Analysis(name, kind, facts, tuple(res))


def _section_driver(text: str) -> str | None:
    """`nvidia-smi --version`: 'DRIVER version : 590.48.01', or from 610 on 'KMD version : 610.57.04'."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        m = re.match(r"\s*(\d+(?:\.\d+)+)", value)
        if m:
            found[key.strip().lower()] = m.group(1)
    return found.get("kmd version") or found.get("driver version")


def analyze_file(path: Path, lim: Limits | None = None) -> Analysis:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnalyzeError(f"cannot read: {exc.strerror or exc}") from None
    text = data.decode("utf-8", "replace")
    try:
        return analyze_text(path.name, text, lim)
    except parse_smi.SmiParseError as exc:
        raise AnalyzeError(str(exc)) from None
