"""Verdicts and their order, in a module of their own: `dccli status` needs them without the fact dataclasses."""

from __future__ import annotations

from collections.abc import Iterable

OK, WARN, CRIT, UNKNOWN = "OK", "WARN", "CRIT", "UNKNOWN"
# Nagios order (0/1/2/3) is the exit code of --format nagios; "worst" follows severity, UNKNOWN below WARN.
NAGIOS_CODE = {OK: 0, WARN: 1, CRIT: 2, UNKNOWN: 3}
_RANK = {OK: 0, UNKNOWN: 1, WARN: 2, CRIT: 3}


def worst(verdicts: Iterable[str]) -> str:
    """The most serious verdict (CRIT > WARN > UNKNOWN > OK); OK for none."""
    best = OK
    for v in verdicts:
        if _RANK[v] > _RANK[best]:
            best = v
    return best
