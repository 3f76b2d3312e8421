"""`dccli inventory ...` end to end: exit codes, one-line errors on stderr, data on stdout."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dccli.cli.inventory import register
from dccli.errors import InventoryError
from dccli.inventory.loader import load, loads

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventory" / "example.yml"
DATA = Path(__file__).parent / "data" / "inventories"
BAD = DATA / "bad"
JUNK = [
    "$(rm -rf /)",
    "`reboot`",
    "; id",
    "a && b",
    "|",
    "'",
    '"',
    "-oProxyCommand=sh",
    ":",
    "{",
    "- x",
    "\t",
    "[",
    "&a",
]


def failing_mutants(count: int, seed: int = 7) -> list[str]:
    """Deterministic broken inventories: good files with junk spliced in, kept when they fail to load."""
    rng = random.Random(seed)
    bases = [p.read_text(encoding="utf-8") for p in [EXAMPLE, *sorted((DATA / "good").glob("*.yml"))]]
    out: list[str] = []
    while len(out) < count:
        lines = rng.choice(bases).splitlines()
        i = rng.randrange(len(lines))
        col = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:col] + rng.choice(JUNK) + lines[i][col:]
        if rng.random() < 0.3:
            lines.insert(i, lines[i])  # duplicate keys and hosts
        text = "\n".join(lines) + "\n"
        try:
            loads(text)
        except InventoryError:
            if text not in out:
                out.append(text)
    return out


def make_app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test root (a callback keeps `inventory` a sub-command)."""

    register(app)
    return app


APP = make_app()


def invoke(*args: str):
    return CliRunner().invoke(APP, ["inventory", *args], env={"NO_COLOR": "1", "DCCLI_INVENTORY": None})


def test_validate_ok() -> None:
    result = invoke("validate", "-i", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: 11 hosts, 2 racks, 4 groups\n"
    assert result.stderr == ""


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yml"))[::4], ids=lambda p: p.name)
def test_validate_bad_file(path: Path) -> None:
    result = invoke("validate", "-i", str(path))
    assert result.exit_code == 2
    expected = path.read_text(encoding="utf-8").split("\n", 1)[0].removeprefix("# error: ")
    assert result.stderr.startswith(f"dccli: error: {path}:")
    assert result.stderr.rstrip("\n").endswith(expected)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_validate_twenty_fuzzed_files(tmp_path: Path) -> None:
    for i, text in enumerate(failing_mutants(20)):
        path = tmp_path / f"mutant{i:02d}.yml"
        path.write_text(text, encoding="utf-8")
        result = invoke("validate", "-i", str(path))
        assert result.exit_code == 2, (text, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"dccli: error: {path}")
        assert "Traceback" not in result.output


def test_validate_missing_file(tmp_path: Path) -> None:
    result = invoke("validate", "-i", str(tmp_path / "none.yml"))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"dccli: error: {tmp_path / 'none.yml'}: cannot read inventory: No such file or directory\n"
    )


def test_env_variable_names_the_inventory(tmp_path: Path) -> None:
    result = CliRunner().invoke(APP, ["inventory", "validate"], env={"DCCLI_INVENTORY": str(EXAMPLE)})
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: 11 hosts")


def test_hosts_lists_names() -> None:
    result = invoke("hosts", "-i", str(EXAMPLE))
    assert result.exit_code == 0
    assert result.stdout.split() == load(EXAMPLE).names()


def test_hosts_with_limit() -> None:
    result = invoke("hosts", "-i", str(EXAMPLE), "-l", "@r02&@trainers!gpu06")
    assert result.stdout.split() == ["gpu05", "gpu07", "gpu08"]


def test_hosts_limit_unknown_is_usage_error() -> None:
    result = invoke("hosts", "-i", str(EXAMPLE), "--limit", "gpu1")
    assert result.exit_code == 2
    assert result.stderr == "dccli: error: --limit 'gpu1': unknown host 'gpu1' (did you mean 'gpu01'?)\n"


def test_hosts_json() -> None:
    result = invoke("hosts", "-i", str(EXAMPLE), "-l", "@storage", "--json")
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1
    assert [h["name"] for h in doc["hosts"]] == ["stor01"]
    assert doc["hosts"][0]["vars"]["export_path"] == "/srv/datasets"


def test_show_tree_and_json() -> None:
    result = invoke("show", "-i", str(EXAMPLE))
    assert result.exit_code == 0
    for text in (
        "dc-east-1",
        "r01",
        "hall A, row 3, position 12",
        "gpu09",
        "10.2.0.15",
        "H100-SXM5-80GB",
        "trainers",
    ):
        assert text in result.stdout
    doc = json.loads(invoke("show", "-i", str(EXAMPLE), "--json").stdout)
    assert doc["schema_version"] == 1
    assert len(doc["inventory"]["hosts"]) == 11


def test_show_escapes_rich_markup(tmp_path: Path) -> None:
    path = tmp_path / "markup.yml"
    path.write_text("cluster: c\nracks:\n  r1:\n    location: '[bold]hall[/bold] B'\n    hosts: {a: {}}\n")
    result = invoke("show", "-i", str(path))
    assert result.exit_code == 0
    assert "[bold]hall[/bold] B" in result.stdout


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [("ansible", "ansible_host: 10.1.0.11"), ("ssh-config", "Host gpu01\n"), ("json", '"schema_version": 1')],
)
def test_export_formats(fmt: str, marker: str) -> None:
    result = invoke("export", "--format", fmt, "-i", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert marker in result.stdout


def test_export_unknown_format() -> None:
    result = invoke("export", "--format", "toml", "-i", str(EXAMPLE))
    assert result.exit_code == 2


def test_module_entry_point_and_fast_help() -> None:
    """The real `python -m dccli`: one stderr line for a bad file, and --help imports no YAML or rich."""
    env = {**os.environ, "NO_COLOR": "1"}
    bad = BAD / "gpus_not_int.yml"
    proc = subprocess.run(
        [sys.executable, "-m", "dccli", "inventory", "validate", "-i", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.endswith('gpus: expected an integer >= 0, got "eight"\n')
    code = (
        "import sys, typer\n"
        "from dccli.cli.inventory import register\n"
        "register(typer.Typer())\n"
        "print(sorted(m for m in ('yaml', 'rich', 'dccli.inventory.loader') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"
