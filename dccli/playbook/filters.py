"""The Jinja2 filters and tests playbooks commonly use, with Ansible's semantics (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
from collections.abc import Mapping
from typing import Any

from jinja2.runtime import Undefined

TRUE_STRINGS = {"yes", "on", "1", "true", "y", "t"}
FALSE_STRINGS = {"no", "off", "0", "false", "n", "f", ""}


def to_bool(value: Any) -> bool:
    """Ansible's `bool` filter: yes/on/1/true (any case) are true, everything else false."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value == 1
    return str(value).strip().lower() in TRUE_STRINGS


def to_int(value: Any, default: int = 0, base: int = 10) -> int:
    try:
        if isinstance(value, str):
            return int(value, base) if base != 10 else int(float(value)) if "." in value else int(value)
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def to_float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def regex_replace(
    value: Any,
    pattern: str = "",
    replacement: str = "",
    ignorecase: bool = False,
    multiline: bool = False,
    count: int = 0,
) -> str:
    flags = (re.I if ignorecase else 0) | (re.M if multiline else 0)
    return re.sub(pattern, replacement, str(value), count=count, flags=flags)


def regex_search(value: Any, pattern: str, *groups: str, ignorecase: bool = False, multiline: bool = False):
    flags = (re.I if ignorecase else 0) | (re.M if multiline else 0)
    match = re.search(pattern, str(value), flags)
    if not match:
        return None
    if not groups:
        return match.group(0)
    out = []
    for g in groups:
        if g.startswith("\\g<"):
            out.append(match.group(g[3:-1]))
        elif g.startswith("\\"):
            out.append(match.group(int(g[1:])))
        else:
            raise ValueError(f"regex_search: unknown group {g!r}")
    return out


def regex_findall(value: Any, pattern: str, ignorecase: bool = False, multiline: bool = False) -> list:
    flags = (re.I if ignorecase else 0) | (re.M if multiline else 0)
    return re.findall(pattern, str(value), flags)


def combine(*dicts: Any, recursive: bool = False, list_merge: str = "replace") -> dict:
    result: dict = {}
    for d in dicts:
        for item in d if isinstance(d, list) else [d]:
            result = _merge(result, item, recursive, list_merge)
    return result


def _merge(a: Mapping, b: Mapping, recursive: bool, list_merge: str) -> dict:
    out = dict(a)
    for k, v in b.items():
        if recursive and isinstance(out.get(k), Mapping) and isinstance(v, Mapping):
            out[k] = _merge(out[k], v, recursive, list_merge)
        elif list_merge == "append" and isinstance(out.get(k), list) and isinstance(v, list):
            out[k] = out[k] + v
        elif list_merge == "prepend" and isinstance(out.get(k), list) and isinstance(v, list):
            out[k] = v + out[k]
        else:
            out[k] = v
    return out


def dict2items(value: Mapping, key_name: str = "key", value_name: str = "value") -> list:
    return [{key_name: k, value_name: v} for k, v in value.items()]


def items2dict(value: list, key_name: str = "key", value_name: str = "value") -> dict:
    return {item[key_name]: item[value_name] for item in value}


def to_yaml(value: Any, indent: int = 2, **kw: Any) -> str:
    import yaml

    return yaml.safe_dump(
        _plain(value),
        default_flow_style=kw.get("default_flow_style"),
        indent=indent,
        allow_unicode=True,
        sort_keys=kw.get("sort_keys", True),
    )


def to_nice_yaml(value: Any, indent: int = 4, **kw: Any) -> str:
    import yaml

    return yaml.safe_dump(
        _plain(value),
        default_flow_style=False,
        indent=indent,
        allow_unicode=True,
        sort_keys=kw.get("sort_keys", True),
    )


def from_yaml(value: str) -> Any:
    import yaml

    return yaml.safe_load(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any, **kw: Any) -> str:
    return json.dumps(_plain(value), **kw)


def to_nice_json(value: Any, indent: int = 4, sort_keys: bool = True, **kw: Any) -> str:
    return json.dumps(_plain(value), indent=indent, sort_keys=sort_keys, separators=(",", ": "), **kw)


def hash_filter(value: Any, algorithm: str = "sha1") -> str:
    h = hashlib.new(algorithm)
    h.update(str(value).encode())
    return h.hexdigest()


def unique(value: Any) -> list:
    out: list = []
    for v in value:
        if v not in out:
            out.append(v)
    return out


def flatten(value: Any, levels: int | None = None) -> list:
    out: list = []
    for v in value:
        if isinstance(v, (list, tuple)) and (levels is None or levels > 0):
            out.extend(flatten(v, None if levels is None else levels - 1))
        elif v is not None:
            out.append(v)
    return out


def ternary(value: Any, true_val: Any, false_val: Any, none_val: Any = None) -> Any:
    if value is None and none_val is not None:
        return none_val
    return true_val if value else false_val


def mandatory(value: Any, msg: str | None = None) -> Any:
    if isinstance(value, Undefined):
        from jinja2 import UndefinedError

        raise UndefinedError(msg or f"Mandatory variable {value._undefined_name!r} not defined.")
    return value


def _version_key(text: str) -> list:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[a-zA-Z]+", str(text))]


def version_compare(value: Any, other: Any, operator: str = "eq", strict: bool = False) -> bool:
    a, b = _version_key(value), _version_key(other)
    ops = {
        "==": "eq",
        "=": "eq",
        "eq": "eq",
        "<": "lt",
        "lt": "lt",
        "<=": "le",
        "le": "le",
        ">": "gt",
        "gt": "gt",
        ">=": "ge",
        "ge": "ge",
        "!=": "ne",
        "<>": "ne",
        "ne": "ne",
    }
    op = ops.get(operator)
    if op is None:
        raise ValueError(f"version: invalid operator {operator!r}")
    return {"eq": a == b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "ne": a != b}[op]


def _result_test(key: str):
    def test(value: Any) -> bool:
        if not isinstance(value, Mapping):
            raise ValueError(f"the '{key}' test expects a registered result (a dictionary)")
        if key == "failed":
            return bool(value.get("failed"))
        if key == "succeeded":
            return not value.get("failed")
        return bool(value.get(key))

    return test


FILTERS = {
    "bool": to_bool,
    "int": to_int,
    "float": to_float,
    "string": str,
    "regex_replace": regex_replace,
    "regex_search": regex_search,
    "regex_findall": regex_findall,
    "regex_escape": re.escape,
    "basename": os.path.basename,
    "dirname": os.path.dirname,
    "expanduser": os.path.expanduser,
    "realpath": os.path.realpath,
    "splitext": lambda v: list(os.path.splitext(v)),
    "to_json": to_json,
    "to_nice_json": to_nice_json,
    "from_json": json.loads,
    "to_yaml": to_yaml,
    "to_nice_yaml": to_nice_yaml,
    "from_yaml": from_yaml,
    "combine": combine,
    "dict2items": dict2items,
    "items2dict": items2dict,
    "quote": lambda v: shlex.quote(str(v)),
    "b64encode": lambda v: base64.b64encode(str(v).encode()).decode(),
    "b64decode": lambda v: base64.b64decode(str(v)).decode("utf-8", "replace"),
    "hash": hash_filter,
    "checksum": lambda v: hash_filter(v, "sha1"),
    "md5": lambda v: hash_filter(v, "md5"),
    "sha1": lambda v: hash_filter(v, "sha1"),
    "unique": unique,
    "flatten": flatten,
    "ternary": ternary,
    "mandatory": mandatory,
    "type_debug": lambda v: type(v).__name__,
    "difference": lambda a, b: [x for x in unique(a) if x not in b],
    "intersect": lambda a, b: [x for x in unique(a) if x in b],
    "union": lambda a, b: unique(list(a) + list(b)),
    "symmetric_difference": lambda a, b: [x for x in unique(list(a) + list(b)) if (x in a) != (x in b)],
    "version_compare": version_compare,
    "zip": lambda a, *b: [list(t) for t in zip(a, *b, strict=False)],
}

TESTS = {
    "version": version_compare,
    "version_compare": version_compare,
    "match": lambda v, p, ignorecase=False, multiline=False: (
        re.match(p, str(v), (re.I if ignorecase else 0) | (re.M if multiline else 0)) is not None
    ),
    "search": lambda v, p, ignorecase=False, multiline=False: (
        re.search(p, str(v), (re.I if ignorecase else 0) | (re.M if multiline else 0)) is not None
    ),
    "regex": lambda v, p, ignorecase=False, multiline=False, match_type="search": (
        getattr(re, match_type)(p, str(v), (re.I if ignorecase else 0) | (re.M if multiline else 0))
        is not None
    ),
    "failed": _result_test("failed"),
    "failure": _result_test("failed"),
    "succeeded": _result_test("succeeded"),
    "success": _result_test("succeeded"),
    "successful": _result_test("succeeded"),
    "changed": _result_test("changed"),
    "change": _result_test("changed"),
    "skipped": _result_test("skipped"),
    "skip": _result_test("skipped"),
    "truthy": lambda v: bool(v),
    "falsy": lambda v: not v,
    "contains": lambda seq, item: item in seq,
    "subset": lambda a, b: set(a) <= set(b),
    "superset": lambda a, b: set(a) >= set(b),
    "file": os.path.isfile,
    "directory": os.path.isdir,
    "exists": os.path.exists,
    "link": os.path.islink,
    "abs": os.path.isabs,
}
