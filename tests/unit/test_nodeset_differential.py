"""Differential tests: dccli's node sets against ClusterShell, the reference for ordering and folding.

Thousands of generated expressions (ranges, padding, steps, digits next to brackets, several bracket
groups, operators) must give the same `nodeset -e` / `-f` / `-c` strings through ClusterShell's Python
API, and a smaller sample the same bytes from the real `nodeset` binary and from `dccli nodeset`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

cs_nodeset = pytest.importorskip(
    "ClusterShell.NodeSet", reason="ClusterShell (the reference implementation) is not installed"
)

from dccli.inventory.nodeset import NodeSet, NodeSetParseError, fold  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NODESET_BIN = "/usr/bin/nodeset" if os.access("/usr/bin/nodeset", os.X_OK) else shutil.which("nodeset")
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- expression generator -------------------------------------------------------------------------------

PREFIXES = ["n", "gpu", "r", "c", "node-", "x.", "10.1.0.", "1", "n0", "a_b", ""]
# Digits next to a bracket exercise ClusterShell's amendment (n[1-2]0 is n[10,20]); kept rare as they
# cannot follow a range with a /step.
BETWEEN = ["n", "c", "-", "-ib", ".", "p"] * 2 + ["0"]
SUFFIXES = [""] * 8 + ["-ib", ".e", "-ib", ".e", "0", "5"]
BROKEN_RANGES = ["5-2", "01-100", "", "1-3/0", "3/2", "a", "1-", "08-9"]


@st.composite
def subranges(draw: st.DrawFn, width: int) -> str:
    if draw(st.integers(0, 250)) == 123:  # now and then an invalid one: both sides must reject it
        return draw(st.sampled_from(BROKEN_RANGES))
    if draw(st.integers(0, 5)) == 0:  # mixed padding in one set: gpu[1-10] next to gpu[01-10]
        width = draw(st.sampled_from([0, 2, 3]))
    start = draw(st.integers(0, 12))
    stop = draw(st.integers(start, start + 8))

    def fmt(v: int) -> str:
        return str(v).zfill(width) if width else str(v)

    kind = draw(st.sampled_from(["one", "one", "range", "range", "range", "step"]))
    if kind == "one":
        return fmt(start)
    text = f"{fmt(start)}-{fmt(stop)}"
    return text + f"/{draw(st.integers(1, 3))}" if kind == "step" else text


@st.composite
def skeletons(draw: st.DrawFn) -> tuple[list[str], list[int]]:
    """Literal parts and per-bracket padding width: operands built on one skeleton share a pattern."""
    brackets = draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3]))
    literals = [draw(st.sampled_from(PREFIXES))]
    literals += [draw(st.sampled_from(BETWEEN)) for _ in range(brackets - 1)]
    literals.append(
        draw(st.sampled_from(SUFFIXES)) if brackets else draw(st.sampled_from(["", "1", "01", "x"]))
    )
    if not brackets and not literals[0] + literals[1]:
        literals[0] = "n"
    widths = [draw(st.sampled_from([0, 0, 2, 3])) for _ in range(brackets)]
    return literals, widths


@st.composite
def operands(draw: st.DrawFn, skeleton: tuple[list[str], list[int]]) -> str:
    literals, widths = skeleton
    out = literals[0]
    for k, width in enumerate(widths):
        ranges = draw(st.lists(subranges(width), min_size=1, max_size=3))
        out += "[" + ",".join(ranges) + "]" + literals[k + 1]
    return out if widths else "".join(literals)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    # One or two skeletons per expression so that , ! & ^ really overlap and nD sets fold into
    # several vectors; "," dominates as in real use.
    shapes = draw(st.lists(skeletons(), min_size=1, max_size=2))
    expr = draw(operands(draw(st.sampled_from(shapes))))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from([",", ",", "!", "&", "^"]))
        pad = draw(st.sampled_from(["", "", "", "", " "]))  # ClusterShell ignores blanks around operands
        expr += pad + op + pad + draw(operands(draw(st.sampled_from(shapes))))
    return expr


# -- helpers ------------------------------------------------------------------------------------------


def reference(expr: str) -> tuple[str, list[str], int] | None:
    """ClusterShell's answer, or None when it rejects the expression."""
    try:
        ns = cs_nodeset.NodeSet(expr, resolver=cs_nodeset.RESOLVER_NOGROUP)
        return str(ns), list(ns), len(ns)
    except (cs_nodeset.NodeSetException, cs_nodeset.RangeSetParseError, ValueError, AssertionError):
        return None


def ours(expr: str) -> tuple[str, list[str], int] | None:
    try:
        ns = NodeSet.parse(expr)
    except NodeSetParseError:
        return None
    return str(ns), list(ns), len(ns)


# -- Python API ---------------------------------------------------------------------------------------


@settings(FAST, max_examples=1200)
@given(expressions())
def test_parse_fold_expand_count_match_clustershell(expr: str) -> None:
    assert ours(expr) == reference(expr), expr


@settings(FAST, max_examples=300)
@given(st.lists(expressions(), min_size=1, max_size=3), st.randoms(use_true_random=False))
def test_fold_of_shuffled_names_matches_clustershell(exprs: list[str], rnd) -> None:
    names: list[str] = []
    for expr in exprs:
        ref = reference(expr)
        if ref is not None:
            names += ref[1]
    rnd.shuffle(names)
    expected = cs_nodeset.NodeSet.fromlist(names, resolver=cs_nodeset.RESOLVER_NOGROUP)
    assert fold(names) == str(expected)
    assert list(NodeSet.from_names(names)) == list(expected)


_INDEX = st.sampled_from(["0", "1", "2", "3", "4", "5", "7", "8", "9", "10", "11", "01", "02", "03", "010"])


@settings(FAST, max_examples=600)
@given(st.sets(st.tuples(_INDEX, _INDEX) | st.tuples(_INDEX, _INDEX, st.sampled_from("123")), max_size=40))
def test_fold_of_sparse_nd_points_matches_clustershell(points: set[tuple[str, ...]]) -> None:
    # Arbitrary (not expression-shaped) point sets drive RangeSetND's greedy merge and its tie-breaks.
    names = ["r{}n{}".format(*p) if len(p) == 2 else "r{}n{}c{}".format(*p) for p in points]
    expected = cs_nodeset.NodeSet.fromlist(names, resolver=cs_nodeset.RESOLVER_NOGROUP)
    assert fold(names) == str(expected)
    assert list(NodeSet.from_names(names)) == list(expected)


@settings(FAST, max_examples=200)
@given(expressions(), expressions())
def test_set_operators_match_clustershell(left: str, right: str) -> None:
    try:
        ca = cs_nodeset.NodeSet(left, resolver=cs_nodeset.RESOLVER_NOGROUP)
        cb = cs_nodeset.NodeSet(right, resolver=cs_nodeset.RESOLVER_NOGROUP)
    except (cs_nodeset.NodeSetException, cs_nodeset.RangeSetParseError):
        return
    a = NodeSet.parse(left)
    b = NodeSet.parse(right)
    for mine, theirs in ((a | b, ca | cb), (a & b, ca & cb), (a - b, ca - cb), (a ^ b, ca ^ cb)):
        assert (str(mine), list(mine)) == (str(theirs), list(theirs))


def test_groups_match_clustershell_resolver() -> None:
    from ClusterShell.NodeUtils import GroupResolver, GroupSource

    groups = {
        "rack1": "r1n[01-16]",
        "rack2": "r2n[01-16]",
        "gpu": "@rack[1-2]!r[1-2]n[15-16]",
        "bad": "r1n[05-06],r2n07",
    }
    cs_resolver = GroupResolver(GroupSource("local", {k: v for k, v in groups.items()}))
    cases = ["@rack1", "@rack[1-2]", "@gpu!@bad", "@gpu&r[1-2]n[1-9]", "@gpu^@rack2,x1", "a,@rack2!r2n0[1-9]"]
    for expr in cases:
        ref = cs_nodeset.NodeSet(expr, resolver=cs_resolver)
        mine = NodeSet.parse(expr, lambda g: [groups[g]])
        assert (str(mine), list(mine)) == (str(ref), list(ref)), expr


# -- command lines: the real nodeset binary and dccli nodeset ------------------------------------------


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    mode = draw(st.sampled_from(["-e", "-f", "-c"]))
    args = [mode]
    if mode == "-e" and draw(st.booleans()):
        args += ["-S", draw(st.sampled_from([",", "\\n", ":", " + "]))]
    exprs = draw(st.lists(expressions().filter(lambda e: reference(e) is not None), min_size=1, max_size=3))
    return args + exprs


def _app():
    import typer

    from dccli.cli.nodeset import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # a callback keeps `nodeset` a subcommand, as under the real root app
        pass

    register(app)
    return app


@pytest.mark.skipif(NODESET_BIN is None, reason="ClusterShell's nodeset command is not installed")
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(command_lines())
def test_cli_output_is_byte_identical_to_nodeset_binary(argv: list[str]) -> None:
    from typer.testing import CliRunner

    expected = subprocess.run([NODESET_BIN, *argv], capture_output=True, text=True, check=True).stdout
    result = CliRunner().invoke(_app(), ["nodeset", *argv])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


@pytest.mark.skipif(NODESET_BIN is None, reason="ClusterShell's nodeset command is not installed")
def test_python_m_dccli_nodeset_entry_point() -> None:
    argv = ["-f", "r[1-2]n[01-16]!r2n[03-04]", "r3n[01-15]", "10.1.0.[11-14]"]
    expected = subprocess.run([NODESET_BIN, *argv], capture_output=True, text=True, check=True).stdout
    done = subprocess.run(
        [sys.executable, "-m", "dccli", "nodeset", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, expected), done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "dccli", "nodeset", "-e", "gpu[5-2]"], capture_output=True, text=True, cwd=ROOT
    )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == 'dccli: error: invalid range "5-2" in "gpu[5-2]"\n'
