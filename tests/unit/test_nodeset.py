"""Node sets: examples (checked against ClusterShell's nodeset), errors, @groups, the CLI, and set laws."""

from __future__ import annotations

import itertools

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dccli.errors import ExitCode, NodeSetParseError
from dccli.inventory.nodeset import (
    MAX_EXPANSION,
    NodeSet,
    RangeSet,
    count,
    expand,
    expand_ordered,
    fold,
)

# expression, `nodeset -f`, `nodeset -e` (outputs of ClusterShell 1.9/1.10)
EXAMPLES = [
    ("gpu[001-004]", "gpu[001-004]", "gpu001 gpu002 gpu003 gpu004"),
    ("gpu[1,3,5-7]", "gpu[1,3,5-7]", "gpu1 gpu3 gpu5 gpu6 gpu7"),
    ("n[1-9/2]", "n[1,3,5,7,9]", "n1 n3 n5 n7 n9"),
    ("n[01-10/3]", "n[01,04,07,10]", "n01 n04 n07 n10"),
    ("10.1.0.[11-14]", "10.1.0.[11-14]", "10.1.0.11 10.1.0.12 10.1.0.13 10.1.0.14"),
    ("gpu[1-3]-ib", "gpu[1-3]-ib", "gpu1-ib gpu2-ib gpu3-ib"),
    ("r[1-2]n[1-2],r3n1", "r[1-2]n[1-2],r3n1", "r1n1 r1n2 r2n1 r2n2 r3n1"),
    ("r[1-3]n[1-3]!r2n2", "r[1,3]n[1-3],r2n[1,3]", "r1n1 r1n2 r1n3 r3n1 r3n2 r3n3 r2n1 r2n3"),
    (
        "a[1-10],a[01-10]",
        "a[1-9,01-10]",
        "a1 a2 a3 a4 a5 a6 a7 a8 a9 a01 a02 a03 a04 a05 a06 a07 a08 a09 a10",
    ),
    ("n[8-10],n[008-010],n[08-10]", "n[8-9,08-10,008-010]", "n8 n9 n08 n09 n10 n008 n009 n010"),
    ("x1,x,x01,x[2-3]-ib", "x,x[1,01],x[2-3]-ib", "x x1 x01 x2-ib x3-ib"),
    ("n[1-10]!n[3-4]", "n[1-2,5-10]", "n1 n2 n5 n6 n7 n8 n9 n10"),
    ("n[1-10]&n[5-15]", "n[5-10]", "n5 n6 n7 n8 n9 n10"),
    ("n[1-5]^n[4-8]", "n[1-3,6-8]", "n1 n2 n3 n6 n7 n8"),
    ("a,b!b,c", "a,c", "a c"),  # left to right: ((a,b)!b),c
    ("n1[0-2]", "n[10-12]", "n10 n11 n12"),  # digits before "[" join the range
    ("n[1-2]0", "n[10,20]", "n10 n20"),  # digits after "]" too
    (" n[ 1 - 3 ] , m ", "m,n[1-3]", "m n1 n2 n3"),
    ("", "", ""),
]


@pytest.mark.parametrize(("expr", "folded", "expanded"), EXAMPLES)
def test_examples(expr: str, folded: str, expanded: str) -> None:
    ns = NodeSet.parse(expr)
    assert str(ns) == folded
    assert " ".join(ns) == expanded == " ".join(expand(expr))
    assert len(ns) == count(expr) == len(expanded.split())
    assert fold(expanded.split()) == folded


def test_2d_fold_and_order() -> None:
    ns = NodeSet.parse("r[1-2]n[01-16]!r2n[03-04]")
    assert str(ns) == "r1n[01-16],r2n[01-02,05-16]"
    assert list(ns)[14:19] == ["r1n15", "r1n16", "r2n01", "r2n02", "r2n05"]
    assert str(NodeSet.parse("r[1-2]n[01-16]") | NodeSet.parse("r3n[01-16]")) == "r[1-3]n[01-16]"


ERRORS = [
    ("gpu[5-2]", 'invalid range "5-2" in "gpu[5-2]"'),
    ("gpu[1-2", 'missing "]" in "gpu[1-2"'),
    ("gpu1-2]", 'unexpected "]" in "gpu1-2]"'),
    ("gpu[1]]", 'unexpected "]" in "gpu[1]]"'),
    ("n[1][2]", '"[" right after "]" in "n[1][2]"'),
    ("n[1-9/0]", 'invalid step in range "1-9/0" in "n[1-9/0]"'),
    ("n[5/2]", 'invalid step "5/2" (a step needs a range a-b/step) in "n[5/2]"'),
    ("n[1-9/x]", 'not a number "x" in range "1-9/x" in "n[1-9/x]"'),
    ("n[01-100]", 'padding length mismatch in range "01-100" in "n[01-100]"'),
    ("n[]", 'empty range in "n[]"'),
    ("n[1,,2]", 'empty range in "n[1,,2]"'),
    ("n[a-b]", 'not a number "a" in range "a-b" in "n[a-b]"'),
    ("n[-3]", 'negative or malformed range "-3" in "n[-3]"'),
    ("n[1-]", 'missing number in range "1-" in "n[1-]"'),
    ("n[1-2/2]0", 'digits after a range with a step in "n[1-2/2]0"'),
    ("a,,b", 'missing operand before "," in "a,,b"'),
    ("a,", 'missing operand after "," in "a,"'),
    ("!a", 'missing operand before "!" in "!a"'),
    ("n[1-3]&", 'missing operand after "&" in "n[1-3]&"'),
    ("gpu*", 'wildcards are not supported in "gpu*"'),
    ("@gpu", 'unknown group "@gpu" in "@gpu" (no groups defined)'),
    ("n[1-2000000]", f'range "1-2000000" has more than {MAX_EXPANSION} elements in "n[1-2000000]"'),
    ("r[1-1000]n[1-1001]", f'"r[1-1000]n[1-1001]" expands to more than {MAX_EXPANSION} nodes'),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS)
def test_errors_name_the_offending_text(expr: str, message: str) -> None:
    with pytest.raises(NodeSetParseError) as info:
        NodeSet.parse(expr)
    assert str(info.value) == message
    assert info.value.exit_code == ExitCode.USAGE


# -- @groups ------------------------------------------------------------------------------------------

GROUPS = {
    "rack1": ["r1n[01-04]"],
    "rack2": ["r2n01", "r2n02", "r2n03", "r2n04"],
    "gpu": ["@rack[1-2]!r[1-2]n04"],  # groups may use ranges of groups and operators
    "empty": [],
    "loop": ["@loop2"],
    "loop2": ["a,@loop"],
    "broken": ["n[3-1]"],
}


def resolver(name: str) -> list[str]:
    return GROUPS[name]


@pytest.mark.parametrize(
    ("expr", "folded"),
    [
        ("@rack1", "r1n[01-04]"),
        ("@rack[1-2]", "r[1-2]n[01-04]"),
        ("@gpu", "r[1-2]n[01-03]"),
        ("@gpu!r1n02,x", "r2n[01-03],r1n[01,03],x"),
        ("@rack1&@gpu", "r1n[01-03]"),
        ("@rack1^@rack2", "r[1-2]n[01-04]"),
        ("@empty", ""),
        ("a,@empty", "a"),
    ],
)
def test_groups(expr: str, folded: str) -> None:
    assert str(NodeSet.parse(expr, resolver)) == folded


def test_group_errors() -> None:
    with pytest.raises(NodeSetParseError, match=r'^unknown group "@nope" in "a,@nope"$'):
        NodeSet.parse("a,@nope", resolver)
    with pytest.raises(NodeSetParseError, match=r"^group cycle: @loop -> @loop2 -> @loop$"):
        NodeSet.parse("@loop", resolver)
    with pytest.raises(NodeSetParseError, match=r'^group "@broken": invalid range "3-1" in "n\[3-1\]"$'):
        expand("@broken", resolver)


# -- API ----------------------------------------------------------------------------------------------


def test_nodeset_is_an_immutable_set() -> None:
    a = NodeSet.parse("n[1-4]")
    b = NodeSet.from_names(["n4", "n3", "n2", "n1", "n1"])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert NodeSet("n[1-4]") == a and NodeSet() == NodeSet.parse("")
    assert "n3" in a and "n5" not in a and "n[1-2]" not in a and 3 not in a
    assert NodeSet.parse("n[2-3]") in a and NodeSet.parse("n[2-3]") <= a and a >= NodeSet.parse("n1")
    assert bool(a) and not NodeSet() and not NodeSet.parse("n1!n1")
    union = a | NodeSet.parse("m")
    assert isinstance(union, NodeSet) and str(union) == "m,n[1-4]" and str(a) == "n[1-4]"
    assert repr(a) == "NodeSet('n[1-4]')"
    assert a != "n[1-4]"
    with pytest.raises(TypeError):
        a | "n5"  # type: ignore[operator]


def test_from_names_rejects_what_is_not_a_name() -> None:
    assert str(NodeSet.from_names([" gpu01 ", "gpu02"])) == "gpu[01-02]"
    for bad in ["", "  ", "gpu[1-2]", "a,b", "a b", "@grp", "a!b", "x*"]:
        with pytest.raises(NodeSetParseError, match="invalid node name"):
            NodeSet.from_names([bad])


def test_fold_accepts_names_expressions_or_one_string() -> None:
    assert fold(["gpu2", "gpu1", "gpu[3-4]", "gpu01"]) == "gpu[1-4,01]"
    assert fold("gpu1,gpu2") == "gpu[1-2]"
    assert fold([]) == ""


def test_expand_ordered_keeps_written_order() -> None:
    assert expand_ordered("gpu[01-04]") == ["gpu01", "gpu02", "gpu03", "gpu04"]
    assert expand_ordered("10.1.0.[11-14]") == ["10.1.0.11", "10.1.0.12", "10.1.0.13", "10.1.0.14"]
    assert expand_ordered("n[3,1-2,3]") == ["n3", "n1", "n2", "n3"]
    assert expand_ordered("r[2,1]n[1-5/2]") == ["r2n1", "r2n3", "r2n5", "r1n1", "r1n3", "r1n5"]
    assert expand_ordered("host") == ["host"]
    for bad in ["a,b", "n[1-2]!n1", "n[1-2]&n1", "n1^n2", "@grp", ""]:
        with pytest.raises(NodeSetParseError):
            expand_ordered(bad)
    with pytest.raises(NodeSetParseError, match="invalid range"):
        expand_ordered("n[2-1]")


def test_rangeset() -> None:
    rs = RangeSet.parse("10,1-3,08-09,1-7/3")
    assert list(rs) == ["1", "2", "3", "4", "7", "08", "09", "10"]  # by length, then text
    assert str(rs) == "1-4,7,08-10"
    assert RangeSet([3, 1, 2]) == RangeSet.parse("1-3") and "2" in rs and 2 in rs
    assert str(RangeSet.parse("1-5") - RangeSet.parse("3")) == "1-2,4-5"
    assert str(RangeSet.parse("9-10") | RangeSet.parse("010")) == "9-10,010"
    with pytest.raises(NodeSetParseError):
        RangeSet(["1a"])


def test_large_sets_stay_exact() -> None:
    ns = NodeSet.parse("gpu[1-100000]")
    names = list(ns)
    assert len(names) == 100_000 and names[-1] == "gpu100000"
    assert fold(reversed(names)) == "gpu[1-100000]"
    nd = NodeSet.parse("r[1-100]n[0001-1000]!r50n0500")
    assert len(nd) == 99_999
    assert str(nd) == "r[1-49,51-100]n[0001-1000],r50n[0001-0499,0501-1000]"


# -- properties ---------------------------------------------------------------------------------------

_names = st.one_of(
    st.builds("gpu{}".format, st.sampled_from(["1", "2", "3", "9", "10", "11", "01", "02", "010"])),
    st.builds(
        "r{}n{}".format, st.sampled_from(["1", "2", "3"]), st.sampled_from(["1", "2", "01", "02", "10"])
    ),
    st.sampled_from(["login", "mgmt-a", "10.1.0.11", "10.1.0.12", "10.2.0.11"]),
)
_name_sets = st.sets(_names, max_size=25)


@st.composite
def _operands(draw: st.DrawFn) -> tuple[str, set[str]]:
    """One bracket operand and, computed independently, the names it stands for."""
    prefix = draw(st.sampled_from(["n", "gpu", "r1n", "10.0.0."]))
    suffix = draw(st.sampled_from(["", "-ib"]))
    width = draw(st.sampled_from([0, 2]))
    items, indexes = [], set()
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, 15))
        stop = draw(st.integers(start, start + 6))
        step = draw(st.integers(1, 3))
        items.append(f"{start:0{width}d}-{stop:0{width}d}/{step}")
        indexes |= {f"{i:0{width}d}" for i in range(start, stop + 1, step)}
    return f"{prefix}[{','.join(items)}]{suffix}", {prefix + i + suffix for i in indexes}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(",!&^"), _operands()), min_size=1, max_size=5))
def test_operators_apply_left_to_right_like_python_sets(
    terms: list[tuple[str, tuple[str, set[str]]]],
) -> None:
    expected: set[str] = set()
    expr = ""
    apply = {",": set.__or__, "!": set.__sub__, "&": set.__and__, "^": set.__xor__}
    for k, (op, (text, names)) in enumerate(terms):
        op = "," if k == 0 else op
        expr += text if k == 0 else op + text
        expected = apply[op](expected, names)
    ns = NodeSet.parse(expr)
    assert set(ns) == expected
    assert count(expr) == len(expand(expr)) == len(expected)


@settings(max_examples=300, deadline=None)
@given(_name_sets, _name_sets)
def test_set_algebra_matches_python_sets(left: set[str], right: set[str]) -> None:
    a, b = NodeSet.from_names(left), NodeSet.from_names(right)
    assert set(a | b) == left | right
    assert set(a & b) == left & right
    assert set(a - b) == left - right
    assert set(a ^ b) == left ^ right
    assert (a <= b) == (left <= right)
    assert (a | b) == (b | a) and (a & b) == (b & a)
    assert (a - b) | (a & b) == a


@settings(max_examples=300, deadline=None)
@given(_name_sets, st.randoms(use_true_random=False))
def test_fold_and_expand_round_trip(names: set[str], rnd) -> None:
    shuffled = list(names)
    rnd.shuffle(shuffled)
    ns = NodeSet.from_names(shuffled)
    folded = fold(shuffled)
    assert folded == str(ns)
    again = NodeSet.parse(folded)
    assert again == ns and list(again) == list(ns) == expand(folded)
    assert fold(expand(folded)) == folded
    assert count(folded) == len(expand(folded)) == len(names)
    assert len(list(ns)) == len(set(ns))  # no duplicates


@settings(max_examples=200, deadline=None)
@given(_operands())
def test_expand_ordered_is_expand_in_written_order(operand: tuple[str, set[str]]) -> None:
    text, names = operand
    ordered = expand_ordered(text)
    assert set(ordered) == names == set(expand(text))
    first = text[text.index("[") + 1 :].split(",")[0].split("-")[0]
    assert ordered[0] == text[: text.index("[")] + first + text[text.index("]") + 1 :]


# -- CLI ----------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    from dccli.cli.nodeset import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps `nodeset` a subcommand, as under the real root app
        pass

    register(app)
    return app


def _run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(_app(), ["nodeset", *args], input=stdin)


def test_cli_modes() -> None:
    assert _run("-f", "r[1-2]n[01-16]", "r3n[01-16]").stdout == "r[1-3]n[01-16]\n"
    assert _run("-e", "n[1-3]", "m").stdout == "m n1 n2 n3\n"
    assert _run("--expand", "-S", "\\n", "n[1-2]").stdout == "n1\nn2\n"
    assert _run("-e", "-S", ",", "n[1-2]").stdout == "n1,n2\n"
    assert _run("-c", "n[1-10]!n5", "n[20-21]").stdout == "11\n"
    assert _run("-f", "a!b", "b").stdout == "a,b\n"  # each EXPR is its own expression, then unioned
    assert _run("-f", "n1\nn2").stdout == "n[1-2]\n"  # one expression per line, like ClusterShell
    assert _run("-f", stdin="n1 n2 # comment\nn3\n").stdout == "n[1-3]\n"
    assert _run("-e", "").stdout == "\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["n1"], "nodeset: give exactly one of -e/--expand, -f/--fold, -c/--count"),
        (["-e", "-f", "n1"], "nodeset: give exactly one of -e/--expand, -f/--fold, -c/--count"),
        (["-f", "gpu[5-2]"], 'invalid range "5-2" in "gpu[5-2]"'),
        (["-e", "-S", "\\x", "n1"], "nodeset: invalid separator '\\\\x'"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"dccli: error: {message}\n"


class _Inventory:
    def group_resolver(self):
        return resolver


def test_cli_resolves_groups_through_the_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    import dccli.cli.common

    seen = []
    monkeypatch.setattr(dccli.cli.common, "load_inventory", lambda path: seen.append(path) or _Inventory())
    result = _run("-f", "-i", "cluster.yml", "@gpu", "login")
    assert (result.exit_code, result.stdout) == (0, "login,r[1-2]n[01-03]\n")
    assert [str(p) for p in seen] == ["cluster.yml"]
    result = _run("-c", "@nope")
    assert (result.exit_code, result.stderr) == (2, 'dccli: error: unknown group "@nope" in "@nope"\n')


def test_cli_loads_no_inventory_without_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    import dccli.cli.common

    def boom(path):
        raise AssertionError("inventory loaded")

    monkeypatch.setattr(dccli.cli.common, "load_inventory", boom)
    assert _run("-c", "n[1-3]").stdout == "3\n"


def test_examples_are_products_of_itertools() -> None:
    # The 2D order is row-major over each axis' sorted indexes, like itertools.product.
    expected = [f"r{r}n{n}" for r, n in itertools.product(["1", "2"], ["9", "01", "10"])]
    assert expand("r[1-2]n[9-10,01]") == expected
