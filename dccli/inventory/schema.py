"""Small schema tables for YAML sections: each key maps to a check that turns a YNode into a value or fails.

A section is a dict `{key: Field(check, required)}`; `section(table)` is itself a check, so sections nest.
Adding a validated section (say `backup:`) is one table plus one entry in the parent table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dccli.inventory import fields
from dccli.inventory.yamlnodes import Source, YNode

Check = Callable[[YNode, Source], Any]


@dataclass(frozen=True)
class Field:
    check: Check
    required: bool = False
    doc: str = ""  # one line, for docs/inventory.md and error hints


Schema = Mapping[str, Field]


@dataclass(frozen=True)
class Record:
    """A checked section: values by key, plus the nodes they came from (for later cross-checks)."""

    values: dict[str, Any]
    nodes: dict[str, YNode]
    node: YNode

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values


def expect(node: YNode, src: Source, kind: str, what: str) -> None:
    if node.kind != kind:
        raise src.error(f"expected {what}, got {node.describe()}", node)


def section(schema: Schema, *, allow_null: bool = False, extensions: bool = False) -> Check:
    """A mapping whose keys come from `schema`; unknown keys get a did-you-mean.

    With `extensions`, keys starting with `x-` are ignored (docker-compose's convention): a place to
    define YAML anchors that other entries merge in with `<<: *name`.
    """

    def check(node: YNode, src: Source) -> Record:
        if allow_null and node.kind == "scalar" and node.value is None:
            node = YNode("map", {}, node.line, node.column, node.path)
        expect(node, src, "map", "a mapping")
        values: dict[str, Any] = {}
        for key, key_node in node.keys.items():
            if key not in schema and not (extensions and key.startswith("x-")):
                hint = fields.did_you_mean(key, schema)
                known = "" if hint else f" (known keys: {', '.join(schema)})"
                raise src.error(f"unknown key {key!r}{hint}{known}", key_node)
        for key, spec in schema.items():
            if key in node.value:
                values[key] = spec.check(node.value[key], src)
            elif spec.required:
                raise src.error(f"missing required key {key!r}", node)
        return Record(values, dict(node.value), node)

    return check


def mapping_of(key_problem: Callable[[str], str | None], value: Check, what: str) -> Check:
    """A mapping with free keys (rack names, group names): each key checked, each value by `value`.

    Returns {key: (key_node, checked value)} in file order.
    """

    def check(node: YNode, src: Source) -> dict[str, tuple[YNode, Any]]:
        if node.kind == "scalar" and node.value is None:
            return {}
        expect(node, src, "map", "a mapping")
        out: dict[str, tuple[YNode, Any]] = {}
        for key, child in node.value.items():
            key_node = node.keys[key]
            problem = key_problem(key)
            if problem:
                raise src.error(f"{what} {fields.quote_value(key)} {problem}", key_node)
            out[key] = (key_node, value(child, src))
        return out

    return check


def string(problem: Callable[[str], str | None] | None = None, what: str = "a string") -> Check:
    def check(node: YNode, src: Source) -> str:
        if node.kind != "scalar" or not isinstance(node.value, str):
            raise src.error(f"expected {what}, got {node.describe()}", node)
        reason = problem(node.value) if problem else None
        if reason:
            raise src.error(f"{fields.quote_value(node.value)} {reason}", node)
        return node.value

    return check


def integer(low: int, high: int | None = None, what: str | None = None) -> Check:
    what = what or (f"an integer >= {low}" if high is None else f"an integer from {low} to {high}")

    def check(node: YNode, src: Source) -> int:
        value = node.value
        # bool is an int in Python, but `gpus: yes` is a mistake, not 1.
        if node.kind != "scalar" or not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise src.error(f"expected {what}, got {node.describe()}", node)
        if high is not None and value > high:
            limit = "" if str(high) in what else f" (at most {high})"
            raise src.error(f"expected {what}{limit}, got {node.describe()}", node)
        return value

    return check


def positive_number(node: YNode, src: Source) -> float:
    value = node.value
    ok = node.kind == "scalar" and isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 < value < 1e6:
        raise src.error(f"expected a number of seconds > 0, got {node.describe()}", node)
    return float(value)


def choice(*options: str) -> Check:
    def check(node: YNode, src: Source) -> str:
        if node.kind != "scalar" or node.value not in options or not isinstance(node.value, str):
            hint = fields.did_you_mean(node.value, options) if isinstance(node.value, str) else ""
            raise src.error(f"expected one of {', '.join(options)}, got {node.describe()}{hint}", node)
        return node.value

    return check


def list_of(item: Check, what: str = "a list") -> Check:
    def check(node: YNode, src: Source) -> list[Any]:
        expect(node, src, "seq", what)
        return [item(child, src) for child in node.value]

    return check


def string_or_list(item: Check, what: str) -> Check:
    """One string, or a list of them (group expressions): always returns [(node, value), ...]."""

    def check(node: YNode, src: Source) -> list[tuple[YNode, Any]]:
        if node.kind == "seq":
            return [(child, item(child, src)) for child in node.value]
        if node.kind == "scalar" and isinstance(node.value, str):
            return [(node, item(node, src))]
        raise src.error(f"expected {what}, got {node.describe()}", node)

    return check


def plain_data(node: YNode, src: Source) -> Any:
    """Any YAML data (vars values); strings must not carry NUL, which no argv or file format survives."""
    if node.kind == "map":
        return {k: plain_data(v, src) for k, v in node.value.items()}
    if node.kind == "seq":
        return [plain_data(v, src) for v in node.value]
    if isinstance(node.value, str) and "\x00" in node.value:
        raise src.error("strings must not contain NUL characters", node)
    return node.value
