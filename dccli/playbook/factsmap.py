"""dccli facts -> the ansible_* names playbooks use (a documented subset) plus dccli_* GPU facts."""

from __future__ import annotations

from typing import Any

from dccli.facts import parse
from dccli.facts.model import build

_DISTRIBUTIONS = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "rhel": "RedHat",
    "centos": "CentOS",
    "rocky": "Rocky",
    "almalinux": "AlmaLinux",
    "fedora": "Fedora",
    "sles": "SLES",
}
_FAMILIES = {
    "debian": "Debian",
    "ubuntu": "Debian",
    "rhel": "RedHat",
    "centos": "RedHat",
    "rocky": "RedHat",
    "almalinux": "RedHat",
    "fedora": "RedHat",
    "sles": "Suse",
}


def ansible_facts(host: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Facts without the ansible_ prefix (the `ansible_facts` dict); see as_vars for the prefixed names."""
    f = build(host, raw)
    osr = parse.parse_os_release(raw.get("os_release"))
    family = _FAMILIES.get(f.os_id, osr.get("ID_LIKE", "").split(" ")[0].capitalize() or "unknown")
    return {
        "hostname": f.hostname.split(".")[0],
        "nodename": f.hostname,
        "fqdn": f.hostname,
        "kernel": f.kernel,
        "architecture": f.arch,
        "machine": f.arch,
        "distribution": _DISTRIBUTIONS.get(f.os_id, f.os_id.capitalize()),
        "distribution_version": f.os_version,
        "distribution_major_version": f.os_version.split(".")[0],
        "distribution_release": osr.get("VERSION_CODENAME", ""),
        "os_family": family,
        "pkg_mgr": "apt" if family == "Debian" else "dnf" if family == "RedHat" else "unknown",
        "service_mgr": raw.get("service_mgr", "unknown"),
        "user_id": raw.get("user", ""),
        "processor_vcpus": f.cpus,
        "processor_nproc": f.cpus,
        "processor_count": f.cpus,
        "memtotal_mb": f.memory_bytes // 1048576,
        "memfree_mb": f.memory_available_bytes // 1048576,
        "python_version": f.python,
        "system": "Linux",
        "mounts": [
            {"mount": d.mount, "fstype": d.fstype, "size_total": d.size_bytes, "size_available": d.free_bytes}
            for d in f.disks
        ],
        # dccli's own: the GPU view that DeepOps-style playbooks gate on
        "dccli_gpus": [
            {
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "driver_version": g.driver_version,
                "memory_total_mib": g.memory_total_mib,
            }
            for g in f.gpus
        ],
        "dccli_gpu_count": len(f.gpus),
        "dccli_driver_version": f.driver_version,
        "dccli_cuda_version": f.cuda_version,
        "dccli_boot_id": f.boot_id,
    }


def as_vars(facts: dict[str, Any]) -> dict[str, Any]:
    out = {f"ansible_{k}" if not k.startswith("dccli_") else k: v for k, v in facts.items()}
    out["ansible_facts"] = dict(facts)
    return out
