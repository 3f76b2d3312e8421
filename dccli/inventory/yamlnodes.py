"""YAML parsed into a tree that remembers where every value came from (file:line:column and key path).

PyYAML's constructors drop positions and silently let a later duplicate key win; an operator who pastes a
host twice deserves an error naming both lines. So we compose (SafeLoader) and walk the node graph
ourselves: duplicate keys are rejected, `<<` merge keys and aliases work, and recursive aliases or
"billion laughs" expansions stop with an error instead of hanging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dccli.errors import InventoryError
from dccli.inventory.fields import one_line, quote_value

_MAX_NODES = 200_000  # far above any real inventory; stops alias bombs
_MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_PLAIN_SCALARS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_RAW_SCALARS = {_TAG + t for t in ("timestamp", "binary")}  # kept as their source text


@dataclass(eq=False, slots=True)
class YNode:
    """One YAML value: `kind` is "map", "seq" or "scalar"; line and column are 1-based."""

    kind: str
    value: Any  # dict[str, YNode] | list[YNode] | str | int | float | bool | None
    line: int
    column: int
    path: str  # key path from the top, e.g. racks.r01.hosts.gpu[01-04].gpus
    keys: dict[str, YNode] = field(default_factory=dict)  # map only: key -> the key's own node (position)

    def describe(self) -> str:
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        return quote_value(self.value)


class Source:
    """The file being read; raises errors that carry its name and a node's position."""

    def __init__(self, name: str) -> None:
        self.name = one_line(name)

    def error(self, message: str, at: YNode | None = None, key: str | None = None) -> InventoryError:
        key = key if key is not None else (at.path if at is not None else None)
        return InventoryError(
            one_line(message),
            path=self.name,
            line=at.line if at is not None else None,
            column=at.column if at is not None else None,
            key=one_line(key) if key else None,
        )

    def error_at(self, message: str, line: int | None, column: int | None) -> InventoryError:
        return InventoryError(one_line(message), path=self.name, line=line, column=column)


def parse(text: str, source: Source) -> YNode | None:
    """Compose `text` and convert it; None for an empty document. Raises InventoryError, one line."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            what = f"{exc.context}: {exc.problem}"
        raise source.error_at(
            f"invalid YAML: {what}", mark.line + 1 if mark else None, mark.column + 1 if mark else None
        ) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        raise source.error_at(
            f"invalid YAML: unacceptable character #x{exc.character:04x}", line, column
        ) from None
    except yaml.YAMLError as exc:
        raise source.error_at(f"invalid YAML: {str(exc).splitlines()[0]}", None, None) from None
    except RecursionError:
        raise source.error_at("invalid YAML: nesting too deep", None, None) from None
    if root is None:
        return None
    return _Walker(source).walk(root, "", 0)


def _position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


class _Walker:
    def __init__(self, source: Source) -> None:
        import yaml

        self.yaml = yaml
        self.source = source
        self.count = 0
        self.active: set[int] = set()  # yaml nodes being walked: seeing one again means a recursive alias
        self.constructor = yaml.SafeLoader("")

    def walk(self, node: Any, path: str, depth: int) -> YNode:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        self.count += 1
        if self.count > _MAX_NODES:
            raise self.source.error_at("too many YAML values (an alias expansion bomb?)", line, column)
        if depth > _MAX_DEPTH:
            raise self.source.error_at("YAML nested too deep", line, column)
        if id(node) in self.active:
            raise self.source.error_at("recursive YAML alias", line, column)
        yaml = self.yaml
        if isinstance(node, yaml.ScalarNode):
            return YNode("scalar", self._scalar(node, path), line, column, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._expect_tag(node, _TAG + "seq", path)
                items = [self.walk(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(node.value)]
                return YNode("seq", items, line, column, path)
            self._expect_tag(node, _TAG + "map", path)
            return self._mapping(node, path, depth, line, column)
        finally:
            self.active.discard(id(node))

    def _expect_tag(self, node: Any, tag: str, path: str) -> None:
        if node.tag != tag:
            raise self.source.error(
                f"unsupported YAML tag {node.tag}", YNode("scalar", None, *_mark(node), path)
            )

    def _scalar(self, node: Any, path: str) -> Any:
        if node.tag in _RAW_SCALARS:
            return node.value
        if node.tag not in _PLAIN_SCALARS:
            raise self.source.error(
                f"unsupported YAML tag {node.tag}", YNode("scalar", None, *_mark(node), path)
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError):
            # Python refuses integers over 4300 digits; nothing in an inventory needs one.
            raise self.source.error("number too large", YNode("scalar", None, *_mark(node), path)) from None
        except self.yaml.YAMLError as exc:
            raise self.source.error(
                f"cannot read value: {str(exc).splitlines()[0]}", YNode("scalar", None, *_mark(node), path)
            ) from None

    def _mapping(self, node: Any, path: str, depth: int, line: int, column: int) -> YNode:
        yaml = self.yaml
        values: dict[str, YNode] = {}
        keys: dict[str, YNode] = {}
        merges: list[Any] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.source.error(
                    "mapping keys must be plain scalars", YNode("scalar", None, *_mark(key_node), path)
                )
            if key_node.tag == _TAG + "merge":
                merges.append(value_node)
                continue
            # Keys are taken as written: `yes`, `22` or `null` as a host name stay the text the operator typed.
            key = key_node.value
            child_path = f"{path}.{key}" if path else key
            if key in keys:
                first = keys[key]
                raise self.source.error(
                    f"duplicate key {key!r} (first defined at line {first.line}, column {first.column})",
                    YNode("scalar", key, *_mark(key_node), child_path),
                )
            keys[key] = YNode("scalar", key, *_mark(key_node), child_path)
            values[key] = self.walk(value_node, child_path, depth + 1)
        # `<<: *base` fills in keys the mapping does not set itself; earlier merge sources win (YAML spec).
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise self.source.error(
                        "a '<<' merge key needs a mapping or a list of mappings",
                        YNode("scalar", None, *_mark(src), path),
                    )
                merged = self.walk(src, path, depth + 1)
                for key, value in merged.value.items():
                    if key not in values:
                        child_path = f"{path}.{key}" if path else key
                        values[key] = _repath(value, child_path)
                        keys[key] = YNode(
                            "scalar", key, merged.keys[key].line, merged.keys[key].column, child_path
                        )
        return YNode("map", values, line, column, path, keys)


def _mark(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _repath(node: YNode, path: str) -> YNode:
    """A merged value reports errors under the key path where it was merged in, at its anchor's position."""
    if node.kind == "map":
        values = {k: _repath(v, f"{path}.{k}") for k, v in node.value.items()}
        keys = {k: YNode("scalar", k, kn.line, kn.column, f"{path}.{k}") for k, kn in node.keys.items()}
        return YNode("map", values, node.line, node.column, path, keys)
    if node.kind == "seq":
        return YNode(
            "seq",
            [_repath(v, f"{path}[{i}]") for i, v in enumerate(node.value)],
            node.line,
            node.column,
            path,
        )
    return YNode("scalar", node.value, node.line, node.column, path)
