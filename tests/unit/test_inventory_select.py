"""--limit selection: node-set operators over hosts, @group, @rack, @failed, and unknown-name errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dccli.errors import UsageError
from dccli.inventory.loader import load
from dccli.inventory.model import Inventory

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "example.yml"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load(EXAMPLE)


def names(inv: Inventory, pattern: str | None, failed: tuple[str, ...] = ()) -> list[str]:
    return [h.name for h in inv.select(pattern, failed=failed)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("gpu01", ["gpu01"]),
        ("gpu[01-03]", ["gpu01", "gpu02", "gpu03"]),
        ("gpu[03,01]", ["gpu01", "gpu03"]),  # inventory order, not pattern order
        ("stor01,gpu09", ["stor01", "gpu09"]),
        ("@r01", ["gpu01", "gpu02", "gpu03", "gpu04", "stor01"]),
        ("@r02!gpu[06-08]", ["gpu05", "gpu09"]),
        ("@r01&@trainers", ["gpu01", "gpu02", "gpu03", "gpu04"]),
        ("@trainers&@r02", ["gpu05", "gpu06", "gpu07", "gpu08"]),
        ("@r01^gpu[04-05]", ["gpu01", "gpu02", "gpu03", "stor01", "gpu05"]),
        ("@storage,@infra", ["bastion01", "stor01"]),
        ("@all!@r[01-02]", ["bastion01"]),
        ("@r[01-02]&@trainers!gpu[02-07]", ["gpu01", "gpu08"]),
        ("gpu01,gpu01", ["gpu01"]),
        ("@r01&@r02", []),
        (" gpu01 ", ["gpu01"]),
    ],
)
def test_select(inv: Inventory, pattern: str, expected: list[str]) -> None:
    assert names(inv, pattern) == expected


def test_none_selects_all_in_order(inv: Inventory) -> None:
    assert names(inv, None) == inv.names()
    assert inv.select(None)[0] is inv.host("bastion01")


def test_failed_keyword(inv: Inventory) -> None:
    failed = ("gpu07", "gpu02", "gone01")  # a failed host since removed from the inventory is ignored
    assert names(inv, "@failed", failed) == ["gpu02", "gpu07"]
    assert names(inv, "@failed&@r02", failed) == ["gpu07"]
    assert names(inv, "@trainers!@failed", failed) == ["gpu01", "gpu03", "gpu04", "gpu05", "gpu06", "gpu08"]
    assert names(inv, "@failed") == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("gpu1", "--limit 'gpu1': unknown host 'gpu1' (did you mean 'gpu01'?)"),
        ("gpu[01-12]", "--limit 'gpu[01-12]': unknown hosts gpu[10-12]"),
        ("@trainer", "--limit '@trainer': unknown group '@trainer' (did you mean 'trainers'?)"),
        ("@r03", "--limit '@r03': unknown group '@r03' (did you mean 'r02'?)"),
        ("@fail", "--limit '@fail': unknown group '@fail' (did you mean 'failed'?)"),
        ("@zzz", "--limit '@zzz': unknown group '@zzz'"),
        ("qqq", "--limit 'qqq': unknown host 'qqq'"),
        ("", "--limit: empty pattern"),
        ("gpu[01", '--limit \'gpu[01\': missing "]" in "gpu[01"'),
        ("gpu*", "--limit 'gpu*': wildcards are not supported in \"gpu*\""),
        ("a\nb", "--limit 'a\\nb': unknown host 'a\\nb'"),
    ],
)
def test_select_errors(inv: Inventory, pattern: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        inv.select(pattern)
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text
