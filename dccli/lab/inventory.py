"""The inventory a lab writes: racks of 8 hosts, node-set ranges, one group "gpu" with every host.

Written by hand (no YAML library): the layout is fixed and strings are emitted as JSON strings,
which are valid YAML double-quoted scalars (paths with spaces or quotes stay correct).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dccli.lab.model import LabInfo

RACK_SIZE = 8


def _range(prefix: str, first: int, last: int, width: int, suffix: str = "") -> str:
    """prefix[first-last] in node-set syntax, or prefix+number for a single element."""
    if first == last:
        return f"{prefix}{first:0{width}d}{suffix}"
    return f"{prefix}[{first:0{width}d}-{last:0{width}d}]{suffix}"


def _runs(lab: LabInfo, numbers: list[int]) -> list[tuple[int, int]]:
    """Split host numbers into runs whose addresses differ only in the last octet (a 250-host boundary)."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        third = lab.hosts[number - 1].address.split(".")[2]
        if runs and lab.hosts[runs[-1][1] - 1].address.split(".")[2] == third and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def render(lab: LabInfo, variables: dict[str, object] | None = None) -> str:
    count = len(lab.hosts)
    width = len(lab.hosts[0].name) - len("node")
    port = lab.hosts[0].port
    out = [
        f"# Written by `dccli lab up` for lab {lab.name!r}: simulated hosts on loopback addresses.",
        "# Rewritten on every `lab up`; copy it elsewhere before editing.",
        f"cluster: {json.dumps('lab-' + lab.name)}",
        # Block style, one key a line: a user (or a test) can drop or edit one setting with a line edit.
        "defaults:",
        "  user: root",
        f"  port: {port}",
        f"  identity_file: {json.dumps(str(lab.key_path))}",
        f"  known_hosts: {json.dumps(str(lab.known_hosts_path))}",
        "racks:",
    ]
    racks = (count + RACK_SIZE - 1) // RACK_SIZE
    rack_width = max(2, len(str(racks)))
    for rack in range(racks):
        numbers = list(range(rack * RACK_SIZE + 1, min(count, (rack + 1) * RACK_SIZE) + 1))
        out += [
            f"  rack{rack + 1:0{rack_width}d}:",
            f"    location: {json.dumps('lab ' + lab.name)}",
            "    hosts:",
        ]
        for first, last in _runs(lab, numbers):
            a_first = lab.hosts[first - 1].address
            a_last = lab.hosts[last - 1].address
            net = a_first.rsplit(".", 1)[0] + "."
            address = _range(net, int(a_first.rsplit(".", 1)[1]), int(a_last.rsplit(".", 1)[1]), 1)
            model = f", gpu_model: {json.dumps(lab.gpu_model)}" if lab.gpus_per_host and lab.gpu_model else ""
            out.append(
                f"      {_range('node', first, last, width)}: {{address: {json.dumps(address)}, gpus: {lab.gpus_per_host}{model}}}"
            )
    out += ["groups:", f"  gpu: {json.dumps(_range('node', 1, count, width))}"]
    # Cluster-wide vars for playbooks (e.g. the lab's apt repository, see dccli/lab/aptrepo.py); JSON is YAML.
    out += (
        ["vars:", *(f"  {k}: {json.dumps(v)}" for k, v in variables.items())] if variables else ["vars: {}"]
    )
    return "\n".join(out) + "\n"


def write(lab: LabInfo, variables: dict[str, object] | None = None) -> Path:
    tmp = lab.inventory_path.with_suffix(".yml.tmp")
    tmp.write_text(render(lab, variables))
    os.replace(tmp, lab.inventory_path)
    return lab.inventory_path
