"""Index sets behind node sets: ClusterShell's RangeSet (1D) and the folding of its RangeSetND (nD).

Indexes are digit strings, as in ClusterShell >= 1.9: "1", "01" and "001" are distinct members, which is
how mixed zero-padding (gpu[1-10] next to gpu[01-10]) survives a round trip. Pure: stdlib only, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator

from dccli.errors import NodeSetParseError

# A typo such as gpu[1-10000000] must fail fast instead of eating memory.
MAX_EXPANSION = 1_000_000

Vector = tuple["RangeSet", ...]


def sort_key(index: str) -> tuple[int, str]:
    """ClusterShell's order: shorter strings first, then by text ("9" < "10" < "01" < "010")."""
    return (len(index), index)


def _is_padded(index: str) -> bool:
    return len(index) > 1 and index[0] == "0"


def _number(text: str, sub: str) -> int:
    # ASCII digits only: int() would also take "+1", "1_0" or non-ASCII digits.
    if not (text.isascii() and text.isdigit()):
        if not sub.strip():
            raise NodeSetParseError("empty range")
        if not text:
            raise NodeSetParseError(f'missing number in range "{sub.strip()}"')
        raise NodeSetParseError(f'not a number "{text}" in range "{sub.strip()}"')
    return int(text)


def parse_subrange(sub: str) -> tuple[int, int, int, int]:
    """Parse one "a", "a-b" or "a-b/step" item into (start, stop inclusive, step, padding length)."""
    text = sub.strip()
    base, step_text = text.split("/", 1) if "/" in text else (text, "1")
    step = _number(step_text.strip(), sub)
    if "-" not in base:
        if step != 1:
            raise NodeSetParseError(f'invalid step "{text}" (a step needs a range a-b/step)')
        begin = end = base.strip()
    else:
        begin, _, end = (part.strip() for part in base.partition("-"))
        if not begin or "-" in end:
            # ClusterShell reads these as negative indexes, which no host name can carry.
            raise NodeSetParseError(f'negative or malformed range "{text}"')
    start, stop = _number(begin, sub), _number(end, sub)
    # Same padding rules as ClusterShell: explicit zero-padding on either bound fixes the width.
    pad = len(begin) if _is_padded(begin) else 0
    endpad = len(end) if _is_padded(end) and stop != 0 else 0
    if (pad or endpad) and len(begin) != len(end):
        raise NodeSetParseError(f'padding length mismatch in range "{text}"')
    if start > stop:
        raise NodeSetParseError(f'invalid range "{text}"')
    if step < 1:
        raise NodeSetParseError(f'invalid step in range "{text}"')
    if (stop - start) // step >= MAX_EXPANSION:
        raise NodeSetParseError(f'range "{text}" has more than {MAX_EXPANSION} elements')
    return start, stop, step, pad


def _format(values: Iterable[int], pad: int) -> list[str]:
    if pad:
        return [str(i).zfill(pad) for i in values]
    return [str(i) for i in values]


def ordered_indexes(text: str) -> list[str]:
    """Indexes of a range string in written order, duplicates kept ("3,1-2" -> 3, 1, 2)."""
    out: list[str] = []
    for sub in text.split(","):
        start, stop, step, pad = parse_subrange(sub)
        out += _format(range(start, stop + 1, step), pad)
        if len(out) > MAX_EXPANSION:
            raise NodeSetParseError(f'range "{text}" has more than {MAX_EXPANSION} elements')
    return out


class RangeSet:
    """Immutable set of node indexes (digit strings), iterated and folded like ClusterShell's RangeSet."""

    __slots__ = ("_items", "_sorted")

    def __init__(self, indexes: Iterable[str | int] = ()) -> None:
        items = frozenset(i if isinstance(i, str) else str(i) for i in indexes)
        bad = next((i for i in items if not (i.isascii() and i.isdigit())), None)
        if bad is not None:
            raise NodeSetParseError(f'invalid index "{bad}"')
        self._items = items
        self._sorted: list[str] | None = None

    @classmethod
    def _trusted(cls, items: frozenset[str]) -> RangeSet:
        inst = cls.__new__(cls)
        inst._items = items
        inst._sorted = None
        return inst

    @classmethod
    def parse(cls, text: str) -> RangeSet:
        """Parse "1-3,5,08-10,1-9/2"; raises NodeSetParseError naming the bad item."""
        items: set[str] = set()
        for sub in text.split(","):
            start, stop, step, pad = parse_subrange(sub)
            items.update(_format(range(start, stop + 1, step), pad))
            if len(items) > MAX_EXPANSION:
                raise NodeSetParseError(f'range "{text}" has more than {MAX_EXPANSION} elements')
        return cls._trusted(frozenset(items))

    @property
    def items(self) -> frozenset[str]:
        return self._items

    def sorted(self) -> list[str]:
        if self._sorted is None:
            # Two C-level sorts (text, then stable by length) equal sorted(key=sort_key), faster.
            self._sorted = sorted(sorted(self._items), key=len)
        return self._sorted

    def __iter__(self) -> Iterator[str]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __contains__(self, index: object) -> bool:
        return (index if isinstance(index, str) else str(index)) in self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __or__(self, other: RangeSet) -> RangeSet:
        return RangeSet._trusted(self._items | other._items)

    def __and__(self, other: RangeSet) -> RangeSet:
        return RangeSet._trusted(self._items & other._items)

    def __sub__(self, other: RangeSet) -> RangeSet:
        return RangeSet._trusted(self._items - other._items)

    def __xor__(self, other: RangeSet) -> RangeSet:
        return RangeSet._trusted(self._items ^ other._items)

    def __str__(self) -> str:
        return ",".join(fold_indexes(self.sorted()))

    def __repr__(self) -> str:
        return f"RangeSet({str(self)!r})"


def fold_indexes(ordered: list[str]) -> list[str]:
    """Fold sorted indexes into "a-b" runs, as ClusterShell does with autostep off.

    A run is consecutive integers of one padding class: a padded run keeps its width ("08-10"),
    an unpadded run takes no padded member ("9-10" but "9,010").
    """
    pieces: list[str] = []
    if not ordered:
        return pieces
    first = ordered[0]
    start = last = int(first)
    pad = len(first) if _is_padded(first) else 0
    for index in ordered[1:]:
        value = int(index)
        if value == last + 1 and (len(index) == pad if pad else not _is_padded(index)):
            last = value
            continue
        pieces.append(_run(start, last, pad))
        start = last = value
        pad = len(index) if _is_padded(index) else 0
    pieces.append(_run(start, last, pad))
    return pieces


def _run(start: int, stop: int, pad: int) -> str:
    if start == stop:
        return str(start).zfill(pad)
    return f"{str(start).zfill(pad)}-{str(stop).zfill(pad)}"


def fold_vectors(points: Collection[tuple[str, ...]]) -> list[Vector]:
    """Fold nD index tuples into RangeSet vectors, in the order ClusterShell's RangeSetND keeps them.

    Both the vectors and their order decide `nodeset -f` and `nodeset -e` output, so this reproduces
    RangeSetND's folding: a product set is one vector; anything else goes through its greedy merge
    of single points (_fold_multivariate), whose result depends only on the set of points.
    """
    if not points:
        return []
    dim = len(next(iter(points)))
    axes = [frozenset(p[k] for p in points) for k in range(dim)]
    if math.prod(len(a) for a in axes) == len(points):
        return [tuple(RangeSet._trusted(a) for a in axes)]
    # Mutable sets, merged in place: a vector absorbed by another is dropped, so nothing is shared.
    # Single points sort by _vec_key exactly as the tuples themselves sort (text order, no ties).
    veclist = _merge([[{i} for i in p] for p in sorted(points)], presorted=True)
    return [tuple(RangeSet._trusted(frozenset(rg)) for rg in vec) for vec in veclist]


def _vec_key(vec: list[set[str]]) -> tuple[object, ...]:
    # RangeSetND._sort: bigger vectors first, then per axis bigger, lower first and last index (as text).
    axes = []
    size = 1
    for rg in vec:
        size *= len(rg)
        if len(rg) == 1:
            (only,) = rg
            axes.append((-1, only, only))
        else:
            axes.append((-len(rg), min(rg, key=sort_key), max(rg, key=sort_key)))
    return (-size, tuple(axes))


def _merge_into(v1: list[set[str]], v2: list[set[str]]) -> bool:
    """Merge v2 into v1 if they differ on one axis only (disjoint or nested there), as RangeSetND does."""
    pos = -1
    nested = False
    for k, (rg1, rg2) in enumerate(zip(v1, v2, strict=True)):
        if rg1 == rg2:
            continue
        if pos >= 0:
            return False
        pos = k
        if rg1.isdisjoint(rg2):
            nested = False
        elif rg1 > rg2 or rg1 < rg2:
            nested = True
        else:
            return False
    if pos >= 0:
        if not nested:
            v1[pos] |= v2[pos]
        elif v2[pos] > v1[pos]:
            v1[pos] = v2[pos]
    return True


def _merge(veclist: list[list[set[str]]], presorted: bool = False) -> list[list[set[str]]]:
    """RangeSetND._fold_multivariate_merge, with the same pass structure and hence the same result.

    Quick passes merge each vector with the run of vectors that follow it until one does not merge;
    when a quick pass changes nothing, full passes compare every pair until nothing changes.
    """
    full = False
    changed = True
    while changed:
        changed = False
        if not presorted:
            veclist.sort(key=_vec_key)
        presorted = False
        if not full:
            out: list[list[set[str]]] = []
            current = veclist[0]
            for vec in veclist[1:]:
                if _merge_into(current, vec):
                    changed = True
                else:
                    out.append(current)
                    current = vec
            out.append(current)
            veclist = out
            if not changed:
                changed = full = True
        else:
            alive = [True] * len(veclist)
            for i, current in enumerate(veclist):
                if not alive[i]:
                    continue
                for j in range(i + 1, len(veclist)):
                    if alive[j] and _merge_into(current, veclist[j]):
                        alive[j] = False
                        changed = True
            veclist = [v for v, keep in zip(veclist, alive, strict=True) if keep]
    return veclist
