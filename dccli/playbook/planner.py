"""Pure planning: a play's host pattern -> hosts, `serial` -> batches, max_fail_percentage -> verdict."""

from __future__ import annotations

import math
import re
from typing import Any

from dccli.errors import UsageError


def nodeset_pattern(hosts: str, groups) -> str:
    """Ansible host pattern (`gpu`, `gpu:&rack01`, `all:!node03`, `node[01-04]`) -> dccli node-set syntax."""
    out = ""
    for i, term in enumerate(t for t in re.split(r"[:,](?![^\[]*\])", hosts.strip()) if t.strip()):
        term = term.strip()
        op = ","
        if term[0] in "&!":
            op, term = term[0], term[1:]
        if "*" in term or term.startswith("~"):
            raise UsageError(f"hosts: {hosts!r}: wildcard and regex host patterns are not supported by dccli")
        name = f"@{term}" if term in groups or term == "all" else term
        out += name if i == 0 else op + name
    return out


def batches(hosts: list, serial: Any) -> list[list]:
    """Ansible's serial: a number, "N%", or a list of them (the last repeats). None: one batch."""
    if serial in (None, 0, "0", [], "") or not hosts:
        return [list(hosts)]
    steps = serial if isinstance(serial, list) else [serial]
    sizes = [_size(s, len(hosts)) for s in steps]
    out: list[list] = []
    i = 0
    k = 0
    while i < len(hosts):
        size = sizes[min(k, len(sizes) - 1)]
        out.append(list(hosts[i : i + size]))
        i += size
        k += 1
    return out


def _size(value: Any, total: int) -> int:
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return max(1, math.floor(total * float(text[:-1]) / 100.0))
        n = int(text)
    except ValueError:
        raise UsageError(f"serial: {value!r} is not a number or a percentage") from None
    return max(1, min(n, total)) if n > 0 else total


def batch_aborts(failed: int, batch_size: int, max_fail_percentage: Any) -> bool:
    """Ansible stops the play when a batch's failures exceed max_fail_percentage (or every host failed)."""
    if batch_size and failed >= batch_size:
        return True
    if max_fail_percentage is None:
        return False
    return failed * 100.0 / batch_size > float(max_fail_percentage)


def tags_selected(tags: set[str], want: frozenset[str], skip: frozenset[str]) -> bool:
    """Ansible's --tags/--skip-tags, with its special tags all, always, never, tagged, untagged."""
    if skip and (tags & skip or ("tagged" in skip and tags) or ("untagged" in skip and not tags)):
        return False
    if "always" in tags and "always" not in skip:
        return True
    if "never" in tags and not (tags - {"never"}) & want:
        return False
    if not want or "all" in want:
        return True
    return bool(tags & want) or ("tagged" in want and bool(tags)) or ("untagged" in want and not tags)
