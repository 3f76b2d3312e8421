"""Pure edits of sshd_config text: make sure a few global directives carry dccli's values.

sshd takes the FIRST value it reads for most keywords, and everything after a `Match` line belongs
to that Match block; so dccli's lines go in one marked block before the first Match (at the end when
there is none). A directive that is already set to something else is never overridden silently:
that host keeps its configuration and the caller reports why (its TrustedUserCAKeys may hold the
organisation's CA).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

BEGIN = "# BEGIN dccli user CA (managed by dccli keys; docs/keys.md)"
END = "# END dccli user CA"
_MATCH = re.compile(r"^\s*match\s", re.IGNORECASE)


class ConflictError(ValueError):
    """A directive is already set, before any Match, to another value."""


def global_values(text: str) -> dict[str, str]:
    """keyword (lower case) -> its first value, for lines before the first Match (Include not followed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if _MATCH.match(line):
            break
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = re.split(r"\s*=\s*|\s+", stripped, maxsplit=1)
        if len(parts) == 2:
            values.setdefault(parts[0].lower(), parts[1].strip().strip('"'))
    return values


def _without_block(text: str) -> str:
    """The text with dccli's own block removed (it is rewritten whole)."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == BEGIN:
            inside = True
            continue
        if inside:
            if line.rstrip("\r\n") == END:
                inside = False
            continue
        out.append(line)
    return "".join(out)


def ensure(text: str, directives: Mapping[str, str]) -> str:
    """The config with `directives` in dccli's block; unchanged text if they are already in effect."""
    base = _without_block(text)
    current = global_values(base)
    for key, value in directives.items():
        have = current.get(key.lower())
        if have is not None and have != value:
            raise ConflictError(f"sshd_config already sets {key} {have}; dccli will not override it")
    in_block = global_values(text)
    if all(in_block.get(k.lower()) == v for k, v in directives.items()) and BEGIN in text:
        return text
    block = BEGIN + "\n" + "".join(f"{k} {v}\n" for k, v in directives.items()) + END + "\n"
    lines = base.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if _MATCH.match(line):
            return "".join(lines[:i]) + block + "".join(lines[i:])
    if base and not base.endswith("\n"):
        base += "\n"
    return base + block
