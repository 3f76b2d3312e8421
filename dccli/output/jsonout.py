"""JSON documents for --json: one document with a schema_version, or JSON lines for streams."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_VERSION = 1


def document(**payload: Any) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **payload}, indent=2, sort_keys=False, default=_default)


def line(**payload: Any) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **payload}, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
