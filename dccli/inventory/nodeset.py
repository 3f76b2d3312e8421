"""ClusterShell/Slurm node-set syntax as real, immutable sets: gpu[001-128], r[1-2]n[01-16], @group, ! & ^.

Parsing, ordering and folding follow ClusterShell's NodeSet (checked by a differential test), so
`expand`, `fold` and `str(NodeSet)` match `nodeset -e` / `nodeset -f` byte for byte. Pure: no I/O.

A name is split on its digit runs: "r1n07" is pattern "r%sn%s" with indexes ("1", "07"). ClusterShell's
`%s` patterns are kept verbatim (a literal "%" doubled) because output is sorted by that exact text.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator

from dccli.errors import NodeSetParseError
from dccli.inventory.rangeset import MAX_EXPANSION, RangeSet, fold_vectors, ordered_indexes

__all__ = [
    "MAX_EXPANSION",
    "NodeSet",
    "NodeSetParseError",
    "RangeSet",
    "Resolver",
    "count",
    "expand",
    "expand_ordered",
    "fold",
]

# Group name (without "@") -> node names or node-set strings; raises KeyError for an unknown group.
Resolver = Callable[[str], Iterable[str]]

# One pattern's members: () for a name without digits, an index string (1D) or a tuple of them (nD).
Index = str | tuple[str, ...]
Patterns = dict[str, frozenset[Index]]

_DIGITS = re.compile(r"([0-9]+)")
_OPERATOR = re.compile(r"[,!&^]")
# Characters a literal node name may not hold: they would not read back as the same name.
_NOT_IN_NAME = re.compile(r"[\s,!&^\[\]*?]|^@")
_MAX_GROUP_DEPTH = 32


def _scan_single(text: str) -> tuple[str, list[str]]:
    """Split an (escaped) name into its pattern and digit runs: "r1n07" -> ("r%sn%s", ["1", "07"])."""
    parts = _DIGITS.split(text)
    return "%s".join(parts[0::2]), parts[1::2]


def _member(indexes: list[str]) -> Index:
    if len(indexes) == 1:
        return indexes[0]
    return tuple(indexes)


def _escape(text: str) -> str:
    return text.replace("%", "%%")


class NodeSet:
    """Immutable set of node names with ClusterShell's order (iteration) and folding (str)."""

    __slots__ = ("_folded", "_hash", "_len", "_patterns")

    def __init__(self, expr: str = "") -> None:
        """NodeSet("gpu[1-4]") is NodeSet.parse("gpu[1-4]") (no groups); NodeSet() is empty."""
        self._set(_Parser(None).parse(expr) if expr else {})

    def _set(self, patterns: Patterns) -> None:
        self._patterns = patterns
        self._len = sum(len(m) for m in patterns.values())
        self._hash: int | None = None
        self._folded: dict[str, list[tuple[RangeSet, ...]]] = {}

    @classmethod
    def _of(cls, patterns: Patterns) -> NodeSet:
        inst = cls.__new__(cls)
        inst._set(patterns)
        return inst

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, expr: str, resolver: Resolver | None = None) -> NodeSet:
        """Parse a node-set expression; operators apply left to right, as in ClusterShell."""
        return cls._of(_Parser(resolver).parse(expr))

    @classmethod
    def from_names(cls, names: Iterable[str]) -> NodeSet:
        """Build from literal node names (no brackets or operators)."""
        acc: dict[str, set[Index]] = {}
        invalid, split = _NOT_IN_NAME.search, _DIGITS.split  # hot loop: 100k names must stay fast
        for raw in names:
            name = raw.strip()
            if not name or invalid(name):
                raise NodeSetParseError(f'invalid node name "{raw}"')
            parts = split(name.replace("%", "%%") if "%" in name else name)
            idx = parts[1::2]
            member: Index = idx[0] if len(idx) == 1 else tuple(idx)
            pat = "%s".join(parts[0::2])
            if pat in acc:
                acc[pat].add(member)
            else:
                acc[pat] = {member}
        return cls._of({p: frozenset(m) for p, m in acc.items()})

    # -- set protocol -------------------------------------------------------------------------------

    def _iter_pattern(self, pat: str) -> Iterator[str]:
        members = self._patterns[pat]
        sample = next(iter(members))
        if isinstance(sample, str):
            for idx in RangeSet._trusted(members).sorted():  # type: ignore[arg-type]
                yield pat % idx
        elif not sample:
            yield pat % ()
        else:
            for vec in self._vectors(pat):
                for combo in itertools.product(*(rg.sorted() for rg in vec)):
                    yield pat % combo

    def _vectors(self, pat: str) -> list[tuple[RangeSet, ...]]:
        vectors = self._folded.get(pat)
        if vectors is None:
            vectors = self._folded[pat] = fold_vectors(self._patterns[pat])  # type: ignore[arg-type]
        return vectors

    def __iter__(self) -> Iterator[str]:
        for pat in sorted(self._patterns):
            yield from self._iter_pattern(pat)

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __contains__(self, name: object) -> bool:
        if isinstance(name, NodeSet):
            return name.issubset(self)
        if not isinstance(name, str) or _NOT_IN_NAME.search(name):
            return False
        pat, idx = _scan_single(_escape(name))
        members = self._patterns.get(pat)
        return members is not None and _member(idx) in members

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NodeSet):
            return NotImplemented
        return self._patterns == other._patterns

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._patterns.items()))
        return self._hash

    def issubset(self, other: NodeSet) -> bool:
        return all(p in other._patterns and m <= other._patterns[p] for p, m in self._patterns.items())

    def issuperset(self, other: NodeSet) -> bool:
        return other.issubset(self)

    __le__ = issubset
    __ge__ = issuperset

    def __or__(self, other: object) -> NodeSet:
        if not isinstance(other, NodeSet):
            return NotImplemented
        return NodeSet._of(_combine(self._patterns, other._patterns, ","))

    def __and__(self, other: object) -> NodeSet:
        if not isinstance(other, NodeSet):
            return NotImplemented
        return NodeSet._of(_combine(self._patterns, other._patterns, "&"))

    def __sub__(self, other: object) -> NodeSet:
        if not isinstance(other, NodeSet):
            return NotImplemented
        return NodeSet._of(_combine(self._patterns, other._patterns, "!"))

    def __xor__(self, other: object) -> NodeSet:
        if not isinstance(other, NodeSet):
            return NotImplemented
        return NodeSet._of(_combine(self._patterns, other._patterns, "^"))

    # -- folding ------------------------------------------------------------------------------------

    def __str__(self) -> str:
        out: list[str] = []
        for pat in sorted(self._patterns):
            members = self._patterns[pat]
            sample = next(iter(members))
            if isinstance(sample, str):
                rs = RangeSet._trusted(members)  # type: ignore[arg-type]
                out.append(pat % (f"[{rs}]" if len(rs) > 1 else str(rs)))
            elif not sample:
                out.append(pat % ())
            else:
                for vec in self._vectors(pat):
                    out.append(pat % tuple(f"[{rg}]" if len(rg) > 1 else str(rg) for rg in vec))
        return ",".join(out)

    def __repr__(self) -> str:
        return f"NodeSet({str(self)!r})"


def _combine(left: Patterns, right: Patterns, op: str) -> Patterns:
    """One ClusterShell operator (, ! & ^) applied pattern by pattern; empty patterns are dropped."""
    if op == ",":
        out = dict(left)
        for pat, members in right.items():
            out[pat] = out[pat] | members if pat in out else members
        return out
    if op == "&":
        out = {p: left[p] & m for p, m in right.items() if p in left}
    elif op == "!":
        out = dict(left)
        for pat, members in right.items():
            if pat in out:
                out[pat] = out[pat] - members
    else:
        out = dict(left)
        for pat, members in right.items():
            out[pat] = out[pat] ^ members if pat in out else members
    return {p: m for p, m in out.items() if m}


class _Parser:
    """ClusterShell's ParsingEngine._scan_string, with our error messages and limits."""

    def __init__(self, resolver: Resolver | None, stack: tuple[str, ...] = ()) -> None:
        self.resolver = resolver
        self.stack = stack  # groups being resolved, to report cycles instead of recursing forever

    def parse(self, expr: str) -> Patterns:
        result: Patterns = {}
        for op, pat, rsets in self._scan(expr):
            if "*" in pat or "?" in pat:
                raise NodeSetParseError(f'wildcards are not supported in "{expr}"')
            if pat.startswith("@"):
                term = self._resolve(pat, rsets, expr)
            else:
                term = {pat: _term_members(pat, rsets, expr)}
            result = _combine(result, term, op)
        return result

    def _resolve(self, pat: str, rsets: list[RangeSet], expr: str) -> Patterns:
        group_set: Patterns = {}
        for group_ref in NodeSet._of({pat: _term_members(pat, rsets, expr)}):
            name = group_ref[1:]
            if name in self.stack or len(self.stack) >= _MAX_GROUP_DEPTH:
                chain = " -> ".join(f"@{g}" for g in (*self.stack, name))
                what = "group cycle" if name in self.stack else f"groups nested over {_MAX_GROUP_DEPTH} deep"
                raise NodeSetParseError(f"{what}: {chain}")
            if self.resolver is None:
                raise NodeSetParseError(f'unknown group "@{name}" in "{expr}" (no groups defined)')
            try:
                members = ",".join(self.resolver(name))
            except KeyError:
                raise NodeSetParseError(f'unknown group "@{name}" in "{expr}"') from None
            if members:
                try:
                    sub = _Parser(self.resolver, (*self.stack, name)).parse(members)
                except NodeSetParseError as exc:
                    if str(exc).startswith(("group cycle", "groups nested")):
                        raise
                    raise NodeSetParseError(f'group "@{name}": {exc}') from None
                group_set = _combine(group_set, sub, ",")
        return group_set

    def _scan(self, expr: str) -> Iterator[tuple[str, str, list[RangeSet]]]:
        """Yield (operator, pattern, per-%s RangeSets) for each operand, left to right."""
        text = _escape(expr.strip())
        next_op = ","
        while text:
            text = text.lstrip()
            rsets: list[RangeSet] = []
            op = next_op
            op_idx, next_op = _next_op(text)
            bracket = text.find("[")
            if bracket >= 0 and (op_idx < 0 or op_idx > bracket):
                # One operand with brackets, e.g. "r[1-2]n[01-16]-ib": up to the first operator after them.
                newpat = ""
                sfx = text
                while bracket >= 0 and (op_idx < 0 or op_idx > bracket):
                    pfx, sfx = sfx.split("[", 1)
                    if "]" not in sfx:
                        raise NodeSetParseError(f'missing "]" in "{expr}"')
                    rng, sfx = sfx.split("]", 1)
                    if "]" in pfx:
                        raise NodeSetParseError(f'unexpected "]" in "{expr}"')
                    if sfx:
                        close, reopen = sfx.find("]"), sfx.find("[")
                        if close >= 0 and (reopen < 0 or close < reopen):
                            raise NodeSetParseError(f'unexpected "]" in "{expr}"')
                        sfx, rng = _amend_trailing(sfx, rng, expr)
                    if pfx:
                        pfx, rng = _amend_leading(pfx, rng, expr)
                        if pfx:
                            pfx, idx = _scan_single(pfx)
                            rsets += [RangeSet._trusted(frozenset((i,))) for i in idx]
                    bracket = sfx.find("[")
                    op_idx, next_op = _next_op(sfx)
                    if sfx.startswith("["):
                        raise NodeSetParseError(f'"[" right after "]" in "{expr}"')
                    newpat += pfx + "%s"
                    rsets.append(_parse_range(rng, expr))
                op_idx, next_op = _next_op(sfx)
                if op_idx < 0:
                    text = ""
                else:
                    sfx, text = sfx[:op_idx], sfx[op_idx + 1 :]
                    if not text.strip():
                        raise NodeSetParseError(f'missing operand after "{next_op}" in "{expr}"')
                sfx = sfx.rstrip()
                if sfx:
                    sfx, idx = _scan_single(sfx)
                    newpat += sfx
                    rsets += [RangeSet._trusted(frozenset((i,))) for i in idx]
            else:
                if op_idx < 0:
                    node, text = text, ""
                else:
                    node, text = text[:op_idx], text[op_idx + 1 :]
                    if not node or not text.strip():
                        where = "before" if not node else "after"
                        raise NodeSetParseError(f'missing operand {where} "{next_op}" in "{expr}"')
                if "]" in node:
                    raise NodeSetParseError(f'unexpected "]" in "{expr}"')
                newpat, idx = _scan_single(node.rstrip())
                rsets = [RangeSet._trusted(frozenset((i,))) for i in idx]
            yield op, newpat, rsets


def _next_op(text: str) -> tuple[int, str]:
    m = _OPERATOR.search(text)
    return (m.start(), m.group()) if m else (-1, ",")


def _parse_range(rng: str, expr: str) -> RangeSet:
    try:
        return RangeSet.parse(rng)
    except NodeSetParseError as exc:
        raise NodeSetParseError(f'{exc} in "{expr}"') from None


def _amend_leading(outer: str, inner: str, expr: str) -> tuple[str, str]:
    """Move digits just before "[" into the range, as ClusterShell does: "n1[0-2]" -> "n[10-12]"."""
    stripped = outer.rstrip("0123456789")
    if len(stripped) < len(outer):
        digits = outer[len(stripped) :]
        pieces = str(_parse_range(inner, expr)).split(",")
        inner = ",".join("-".join(digits + b for b in piece.split("-")) for piece in pieces)
    return stripped, inner


def _amend_trailing(outer: str, inner: str, expr: str) -> tuple[str, str]:
    """Move digits just after "]" into the range: "n[1-2]0" -> "n[10-20/10]"."""
    stripped = outer.lstrip("0123456789")
    if len(stripped) < len(outer):
        if "/" in inner:
            raise NodeSetParseError(f'digits after a range with a step in "{expr}"')
        digits = outer[: len(outer) - len(stripped)]
        step = "/1" + "0" * len(digits)
        items = ("-".join(b + digits for b in elem.split("-")) for elem in inner.split(","))
        inner = ",".join(item + step if "-" in item else item for item in items)
    return stripped, inner


def _term_members(pat: str, rsets: list[RangeSet], expr: str) -> frozenset[Index]:
    if not rsets:
        if not pat:
            raise NodeSetParseError(f'empty node name in "{expr}"')
        return frozenset(((),))
    if len(rsets) == 1:
        return rsets[0].items  # type: ignore[return-value]
    if math.prod(len(r) for r in rsets) > MAX_EXPANSION:
        raise NodeSetParseError(f'"{expr}" expands to more than {MAX_EXPANSION} nodes')
    return frozenset(itertools.product(*(r.items for r in rsets)))


# -- module API ---------------------------------------------------------------------------------------


def expand(expr: str, resolver: Resolver | None = None) -> list[str]:
    """Node names of `expr`, in `nodeset -e` order."""
    return list(NodeSet.parse(expr, resolver))


def count(expr: str, resolver: Resolver | None = None) -> int:
    return len(NodeSet.parse(expr, resolver))


def fold(names: Iterable[str]) -> str:
    """`nodeset -f NAME...`: each item may be a name or an expression; a single str is one expression."""
    if isinstance(names, str):
        return str(NodeSet.parse(names))
    items = list(names)
    try:
        return str(NodeSet.from_names(items))
    except NodeSetParseError:
        pass  # some items are expressions: parse those one by one, like `nodeset -f A B`
    plain = [name for name in items if name.strip() and not _NOT_IN_NAME.search(name.strip())]
    result = NodeSet.from_names(plain)
    for expr in items:
        if not expr.strip() or _NOT_IN_NAME.search(expr.strip()):
            result = result | NodeSet.parse(expr)
    return str(result)


def expand_ordered(expr: str) -> list[str]:
    """Names of ONE bracket pattern in written order, duplicates kept: "n[3,1-2]" -> n3, n1, n2.

    Used to zip parallel patterns (gpu[01-04] with 10.1.0.[11-14]) element by element.
    """
    text = expr.strip()
    if not text:
        raise NodeSetParseError("empty node-set pattern")
    outside = re.sub(r"\[[^\]]*\]", "", text)
    if _OPERATOR.search(outside) or text.startswith("@"):
        raise NodeSetParseError(f'expected a single pattern without operators or groups: "{expr}"')
    NodeSet.parse(text)  # same validation (and errors) as parse
    # Written order is plain concatenation; it yields the same names as ClusterShell's digit amendment.
    parts = re.split(r"\[([^\]]*)\]", text)
    choices: list[list[str]] = []
    for k, part in enumerate(parts):
        choices.append([part] if k % 2 == 0 else ordered_indexes(part))
    return ["".join(combo) for combo in itertools.product(*choices)]
