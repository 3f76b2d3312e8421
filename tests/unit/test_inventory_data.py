"""Data-driven inventory tests: every good file loads; every bad file fails with exactly its `# error:` line.

A bad file's first line is `# error: LINE:COL: KEY: MESSAGE` (or just `MESSAGE` when the file has no
position to give, such as an empty file); the loader's error must be `PATH:` followed by that text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dccli.errors import ExitCode, InventoryError
from dccli.inventory.loader import load

DATA = Path(__file__).parent / "data" / "inventories"
GOOD = sorted((DATA / "good").glob("*.yml"))
BAD = sorted((DATA / "bad").glob("*.yml"))
EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "example.yml"


def expected_error(path: Path) -> str:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first.startswith("# error: "), f"{path.name}: first line must be '# error: ...'"
    return first.removeprefix("# error: ")


def test_data_files_present() -> None:
    assert len(GOOD) >= 6
    assert len(BAD) >= 60


@pytest.mark.parametrize("path", [*GOOD, EXAMPLE], ids=lambda p: p.name)
def test_good_inventory_loads(path: Path) -> None:
    inv = load(path)
    assert inv.hosts
    assert inv.path == path
    assert inv.groups["all"] == tuple(inv.names())
    for host in inv.hosts:
        assert host.source.startswith(f"{path}:")
        assert "all" not in host.groups
        for group in host.groups:
            assert host.name in inv.groups[group]


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_inventory_error_line(path: Path) -> None:
    with pytest.raises(InventoryError) as info:
        load(path)
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert text == f"{path}: {expected_error(path)}" or text == f"{path}:{expected_error(path)}"
    assert err.exit_code == ExitCode.USAGE
    assert err.path == str(path)
    if err.line is not None:
        # The key path named in the error line is the one the error object carries.
        assert err.key is None or f": {err.key}: " in text
