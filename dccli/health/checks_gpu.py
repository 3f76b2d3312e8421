"""GPU checks: pure functions from HostFacts (+ what the inventory expects) to CheckResults.

One result per check per host; when several GPUs fail the same check, the value names each of them and the
verdict is the worst. A check whose source was not reported (no NVLink info, no ECC support) gives no result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from dccli.health.model import CRIT, OK, UNKNOWN, WARN, CheckResult, Gpu, HostFacts, worst
from dccli.health.thresholds import DCGM, GPUD, NV_DPR, Limits
from dccli.health.xid import SOURCE as XID_SOURCE
from dccli.health.xid import lookup

_FORM_TOKENS = re.compile(r"^(sxm\d*|pcie|nvl|hbm\d*e?|nvidia|tesla)$")


def model_matches(expected: str, name: str) -> bool:
    """'H100-SXM5-80GB' matches 'NVIDIA H100 80GB HBM3': every token but form-factor ones must appear."""
    have = set(re.split(r"[\s\-_/]+", name.lower()))
    want = [t for t in re.split(r"[\s\-_/]+", expected.lower()) if t and not _FORM_TOKENS.match(t)]
    return all(t in have for t in want)


def _per_gpu(
    host: str,
    check: str,
    gpus: Iterable[Gpu],
    judge: Callable[[Gpu], tuple[str, str] | None],
    threshold: str,
    action: str,
    source: str,
) -> CheckResult | None:
    """Run judge(gpu) -> (verdict, value) | None on each GPU; None when no GPU reports the source."""
    seen, bad = 0, []
    for g in gpus:
        got = judge(g)
        if got is None:
            continue
        seen += 1
        if got[0] != OK:
            bad.append((got[0], f"GPU{g.index}: {got[1]}"))
    if not seen:
        return None
    if not bad:
        return CheckResult(host, check, OK, f"{seen} GPUs ok", threshold, "", source)
    return CheckResult(
        host, check, worst(v for v, _ in bad), "; ".join(t for _, t in bad), threshold, action, source
    )


def gpu_checks(
    facts: HostFacts,
    expected_gpus: int,
    expected_model: str | None,
    limits: Limits,
    xids_since: float | None,
    *,
    expected_from: str = "inventory gpus",
) -> list[CheckResult]:
    h = facts.host
    out: list[CheckResult] = []
    if facts.smi is None:
        if expected_gpus > 0:
            why = facts.smi_error or "nvidia-smi not found"
            action = (
                "drain the node; a GPU fell off the bus: reboot (power cycle), RMA if it stays lost"
                if "lost" in why.lower() or "rc 15" in why
                else "check the driver (nvidia-smi rc 9: driver not loaded); reload it, reboot or reinstall"
            )
            out.append(
                CheckResult(
                    h, "gpu.count", CRIT, f"0 of {expected_gpus} ({why})", f"== {expected_gpus}", action, DCGM
                )
            )
        out += xid_check(facts, xids_since)
        return out
    gpus = facts.smi.gpus
    n = len(gpus)
    if expected_gpus or n:
        verdict = OK if n == expected_gpus else (CRIT if n < expected_gpus else WARN)
        action = {
            CRIT: "drain the node; a GPU is missing (fallen off the bus?): reboot, then RMA if it stays "
            "missing",
            WARN: "update the inventory's gpus count",
        }.get(verdict, "")
        out.append(
            CheckResult(
                h,
                "gpu.count",
                verdict,
                f"{n} GPUs",
                f"== {expected_gpus} ({expected_from})",
                action,
                AZHC_COUNT,
            )
        )
    if expected_model and gpus:
        wrong = sorted({g.name for g in gpus if not model_matches(expected_model, g.name)})
        out.append(
            CheckResult(
                h,
                "gpu.model",
                WARN if wrong else OK,
                ", ".join(wrong) or gpus[0].name,
                f"== {expected_model} (inventory gpu_model)",
                "fix the inventory's gpu_model or the host" if wrong else "",
                "inventory",
            )
        )
    out += xid_check(facts, xids_since)
    out += [
        r
        for r in (
            _ecc(h, gpus, limits),
            _retired(h, gpus, limits),
            _remap(h, gpus, limits),
            _temperature(h, gpus, limits),
            _throttle(h, gpus, limits),
            _persistence(h, gpus, limits),
            _pcie(h, gpus, limits),
            _nvlink(facts),
            _foreign(facts),
        )
        if r is not None
    ]
    return out


AZHC_COUNT = "Azure HPC health checks: check_gpu_count; " + DCGM


def xid_check(facts: HostFacts, since: float | None) -> list[CheckResult]:
    """Xid events newer than the last check (all of them on a first check, or when lines carry no time)."""
    if facts.smi is None and not facts.xids:
        return []
    new = [e for e in facts.xids if since is None or e.time is None or e.time > since]
    if not new:
        return [
            CheckResult(
                facts.host, "gpu.xid", OK, "no new Xid events", "no Xid of severity WARN/CRIT", "", XID_SOURCE
            )
        ]
    counts: dict[tuple[int, str], int] = {}
    for e in new:
        counts[(e.xid, e.pci)] = counts.get((e.xid, e.pci), 0) + 1
    parts, verdicts, actions = [], [], []
    for (code, pci), k in sorted(counts.items()):
        info = lookup(code)
        parts.append(f"Xid {code} on {pci} x{k} ({info.description}; {info.severity})")
        verdicts.append(info.severity)
        if info.severity != OK:
            actions.append((info.severity, info.action))
    verdict = worst(verdicts)
    action = max(actions, key=lambda a: a[0] == CRIT)[1] if actions else ""
    return [
        CheckResult(
            facts.host,
            "gpu.xid",
            verdict,
            "; ".join(parts),
            "no Xid of severity WARN/CRIT",
            action,
            XID_SOURCE,
        )
    ]


def _ecc(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    def judge(g: Gpu) -> tuple[str, str] | None:
        if g.ecc_volatile_dbe is None and g.ecc_aggregate_dbe is None and g.ecc_volatile_sbe is None:
            return None
        vd, ad = g.ecc_volatile_dbe or 0, g.ecc_aggregate_dbe or 0
        vs, as_ = g.ecc_volatile_sbe or 0, g.ecc_aggregate_sbe or 0
        text = f"volatile SBE={vs} DBE={vd}, aggregate SBE={as_} DBE={ad}"
        if vd >= lim["ecc_dbe_volatile_crit"]:
            return CRIT, text
        if (
            ad >= lim["ecc_dbe_aggregate_warn"]
            or vs >= lim["ecc_sbe_volatile_warn"]
            or as_ >= lim["ecc_sbe_aggregate_warn"]
        ):
            return WARN, text
        return OK, text

    return _per_gpu(
        h,
        "gpu.ecc",
        gpus,
        judge,
        f"volatile DBE >= {lim['ecc_dbe_volatile_crit']} CRIT; aggregate DBE >= "
        f"{lim['ecc_dbe_aggregate_warn']}, SBE >= {lim['ecc_sbe_volatile_warn']} (volatile) / "
        f"{lim['ecc_sbe_aggregate_warn']} (aggregate) WARN",
        "drain the node and reset the GPU; RMA if double-bit errors return",
        lim.source("ecc_dbe_volatile_crit"),
    )


def _retired(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    def judge(g: Gpu) -> tuple[str, str] | None:
        if g.retired_sbe is None and g.retired_dbe is None and g.retired_pending is None:
            return None
        total = (g.retired_sbe or 0) + (g.retired_dbe or 0)
        text = f"{total} retired (SBE {g.retired_sbe or 0}, DBE {g.retired_dbe or 0})" + (
            ", retirement pending" if g.retired_pending else ""
        )
        if total >= lim["retired_pages_crit"]:
            return CRIT, text
        if g.retired_pending or total >= lim["retired_pages_warn"]:
            return WARN, text
        return OK, text

    return _per_gpu(
        h,
        "gpu.retired_pages",
        gpus,
        judge,
        f">= {lim['retired_pages_crit']} CRIT, >= {lim['retired_pages_warn']} or pending WARN",
        "pending: reset the GPU or reboot to retire the pages; at the RMA point: open a hardware ticket",
        NV_DPR,
    )


def _remap(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    def judge(g: Gpu) -> tuple[str, str] | None:
        if g.remap_pending is None and g.remap_failure is None and g.remap_uncorrectable is None:
            return None
        text = (
            f"uncorrectable {g.remap_uncorrectable or 0}, correctable {g.remap_correctable or 0}"
            + (", pending" if g.remap_pending else "")
            + (", FAILURE" if g.remap_failure else "")
        )
        if g.remap_failure:
            return CRIT, text
        if g.remap_pending or (g.remap_uncorrectable or 0) >= lim["remap_uncorrectable_warn"]:
            return WARN, text
        return OK, text

    return _per_gpu(
        h,
        "gpu.row_remap",
        gpus,
        judge,
        f"failure CRIT; pending or uncorrectable >= {lim['remap_uncorrectable_warn']} WARN",
        "pending: reset the GPU (nvidia-smi -r) or reboot to apply the remap; failure: RMA",
        NV_DPR + "; " + GPUD,
    )


def _temperature(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    def judge(g: Gpu) -> tuple[str, str] | None:
        t = g.temperature_c
        if t is None:
            return None
        if t >= lim["temp_crit_c"] or (g.slowdown_temp_c is not None and t >= g.slowdown_temp_c):
            return CRIT, f"{t:g} C"
        return (WARN if t >= lim["temp_warn_c"] else OK), f"{t:g} C"

    return _per_gpu(
        h,
        "gpu.temperature",
        gpus,
        judge,
        f">= {lim['temp_warn_c']} C WARN, >= {lim['temp_crit_c']} C or slowdown temp CRIT",
        "check airflow, fans and inlet temperature; drain if it keeps throttling",
        lim.source("temp_crit_c"),
    )


def _throttle(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    bad = set(lim["throttle_reasons"])

    def judge(g: Gpu) -> tuple[str, str] | None:
        if g.temperature_c is None and not g.throttle_active:
            return None
        hit = [r for r in g.throttle_active if r in bad]
        return (WARN, ", ".join(hit)) if hit else (OK, ", ".join(g.throttle_active) or "none")

    return _per_gpu(
        h,
        "gpu.throttle",
        gpus,
        judge,
        "none of " + ", ".join(sorted(bad)),
        "thermal: check cooling; power brake: check PSUs and power capping",
        lim.source("throttle_reasons"),
    )


def _persistence(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    if not lim["require_persistence"]:
        return None

    def judge(g: Gpu) -> tuple[str, str] | None:
        if g.persistence_mode not in ("Enabled", "Disabled"):
            return None
        return (OK if g.persistence_mode == "Enabled" else WARN), g.persistence_mode

    return _per_gpu(
        h,
        "gpu.persistence",
        gpus,
        judge,
        "Enabled",
        "enable nvidia-persistenced (or nvidia-smi -pm 1)",
        lim.source("require_persistence"),
    )


def _pcie(h: str, gpus: tuple[Gpu, ...], lim: Limits) -> CheckResult | None:
    def judge(g: Gpu) -> tuple[str, str] | None:
        if g.pcie_width_current is None and g.pcie_gen_current is None:
            return None
        problems = []
        if g.pcie_width_current is not None and g.pcie_width_max and g.pcie_width_current < g.pcie_width_max:
            problems.append(f"width x{g.pcie_width_current} < x{g.pcie_width_max}")
        busy = (g.utilization_pct or 0) >= lim["pcie_gen_busy_pct"]
        if busy and g.pcie_gen_current is not None and g.pcie_gen_max and g.pcie_gen_current < g.pcie_gen_max:
            problems.append(f"gen {g.pcie_gen_current} < {g.pcie_gen_max} while busy")
        text = "; ".join(problems) or f"gen {g.pcie_gen_current}/{g.pcie_gen_max} x{g.pcie_width_current}"
        return (WARN if problems else OK), text

    return _per_gpu(
        h,
        "gpu.pcie",
        gpus,
        judge,
        "link width == max; gen == max when busy",
        "reseat the GPU/riser, check the slot; drain if bandwidth-bound",
        lim.source("pcie_gen_busy_pct"),
    )


def _nvlink(facts: HostFacts) -> CheckResult | None:
    """Per-link state from `nvidia-smi nvlink -s` when probed, else the NVSwitch fabric state of -q -x."""
    if not facts.nvlinks:
        return _fabric(facts)
    down = [f"GPU{n.gpu} link {n.link if n.link >= 0 else 'all'}" for n in facts.nvlinks if not n.up]
    return CheckResult(
        facts.host,
        "gpu.nvlink",
        CRIT if down else OK,
        ", ".join(down) or f"{len(facts.nvlinks)} links up",
        "every link up",
        "drain the node; check NVLink (nvidia-smi nvlink -e), reset, RMA if it repeats" if down else "",
        "Azure HPC health checks: check_nvlink_status; " + DCGM,
    )


def _fabric(facts: HostFacts) -> CheckResult | None:
    gpus = [g for g in (facts.smi.gpus if facts.smi else ()) if g.fabric_state]
    if not gpus:
        return None
    bad = []
    for g in gpus:
        if g.fabric_state == "Completed" and (g.fabric_status or "Success") == "Success":
            continue
        failed = g.fabric_state == "Completed" or "fail" in (g.fabric_status or "").lower()
        bad.append(
            (CRIT if failed else WARN, f"GPU{g.index}: fabric {g.fabric_state}/{g.fabric_status or '-'}")
        )
    return CheckResult(
        facts.host,
        "gpu.nvlink",
        worst(v for v, _ in bad),
        "; ".join(t for _, t in bad) or f"NVLink fabric Completed/Success on {len(gpus)} GPUs",
        "fabric state Completed, status Success",
        "drain the node; check nvidia-fabricmanager and NVSwitches, then reset" if bad else "",
        "NVIDIA Fabric Manager user guide; " + DCGM + " (NVLink/NVSwitch watches)",
    )


def _foreign(facts: HostFacts) -> CheckResult | None:
    if facts.smi is None:
        return None
    procs = [(g.index, p) for g in facts.smi.gpus for p in g.processes if p.pid in facts.foreign_pids]
    if not procs:
        return CheckResult(
            facts.host,
            "gpu.processes",
            OK,
            "no GPU memory held outside dccli runs",
            "no process without DCCLI_RUN_ID",
            "",
            "dccli",
        )
    text = "; ".join(f"GPU{i}: pid {p.pid} {p.name} {p.used_mib or 0:g} MiB" for i, p in procs)
    return CheckResult(
        facts.host,
        "gpu.processes",
        WARN,
        text,
        "no process without DCCLI_RUN_ID",
        "find the owner (ps -o user,args -p PID); stop stray jobs before scheduling",
        "dccli",
    )


__all__ = ["UNKNOWN", "gpu_checks", "model_matches", "xid_check"]
