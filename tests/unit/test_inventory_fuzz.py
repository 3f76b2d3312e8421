"""Fuzzing the loader: mutated inventories either load or fail with one InventoryError line naming the file.

Mutations work on the data (drop, duplicate, retype, rename keys; nasty strings in names, addresses,
users) and on the raw text (broken YAML, duplicated lines, shell metacharacters spliced in).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dccli.errors import InventoryError, UsageError
from dccli.inventory.export import export_ansible, export_json, export_ssh_config
from dccli.inventory.loader import loads

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "inventories" / "good"
BASES = [ROOT / "inventory" / "example.yml", *sorted(DATA.glob("*.yml"))]
BASE_TEXTS = [p.read_text(encoding="utf-8") for p in BASES]
BASE_DATA = [yaml.safe_load(t) for t in BASE_TEXTS]
NAME = "fuzz/cluster.yml"

NASTY = [
    "$(rm -rf /)",
    "`reboot`",
    "; shutdown -h now",
    "a && b",
    "a | b",
    "a\nb",
    "line\r\nbreak",
    "tab\there",
    "'quoted'",
    '"dq"',
    "-oProxyCommand=sh",
    "%h%p",
    "~root/.ssh/id",
    "../../etc/passwd",
    "gpu[01-04",
    "gpu[01-99999999]",
    "@group",
    "!gpu01",
    "*",
    "",
    " ",
    "é",
    "\u2028",
    "x" * 300,
    "10.0.0.300",
    "fe80::1%eth0",
    "root$",
    "null",
    "0x1F",
]
SHELL_ACTIVE = set("$;|&`\n\r'\"<>\\")
SAFE_FIELD = re.compile(r"[A-Za-z0-9._:@/~+,=\[\]-]*\Z")


def check(text: str) -> None:
    """The property: a clean load (whose exports also work) or one error line that names the file."""
    try:
        inv = loads(text, NAME)
    except (InventoryError, UsageError) as exc:
        message = str(exc)
        assert message.startswith(NAME), message
        assert "\n" not in message and "\r" not in message, message
        assert message.isprintable(), message
        return
    for host in inv.hosts:
        for value in (host.name, host.address, host.user, host.identity_file or "", host.jump or ""):
            assert SAFE_FIELD.match(value), f"unsafe value survived validation: {value!r}"
    export_json(inv)
    export_ansible(inv)
    export_ssh_config(inv)
    inv.select("@all")


# -- data-level mutations ------------------------------------------------------------------------------


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out.extend(paths_of(value, (*prefix, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(paths_of(value, (*prefix, i)))
    return out


def get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


nasty_or_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=20))
scalars = st.one_of(
    nasty_or_text, st.integers(-(10**6), 10**6), st.booleans(), st.none(), st.floats(allow_nan=False)
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(NASTY), scalars, max_size=2)
)


@st.composite
def mutated_data(draw: st.DrawFn) -> str:
    import copy

    data = copy.deepcopy(draw(st.sampled_from(BASE_DATA)))
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths_of(data)
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(["drop", "retype", "rename", "nasty_value", "nasty_key", "copy_key"]))
        if not path:
            continue
        parent = get(data, path[:-1])
        last = path[-1]
        if op == "drop":
            del parent[last]
        elif op == "retype":
            parent[last] = draw(values)
        elif op == "nasty_value":
            parent[last] = draw(nasty_or_text)
        elif isinstance(parent, dict) and op in ("rename", "nasty_key"):
            new_key = (
                draw(nasty_or_text) if op == "nasty_key" else str(last)[:-1] + draw(st.sampled_from("sx_-"))
            )
            parent[new_key] = parent.pop(last)
        elif isinstance(parent, dict) and op == "copy_key":
            # Same value under another existing key: a duplicate host range, group or section.
            other = draw(st.sampled_from(list(parent)))
            parent[other] = copy.deepcopy(parent[last])
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(BASE_TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["dup", "drop", "splice", "indent", "dedent", "swap"]))
        if op == "dup":
            lines.insert(i, lines[i])  # duplicate keys, duplicate hosts
        elif op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "splice":
            col = draw(st.integers(0, len(lines[i])))
            junk = draw(
                st.one_of(
                    st.sampled_from([*NASTY, ":", "- ", "{", "}", "[", "&a", "*a", "!!binary", "<<: 1"]),
                    st.text(max_size=5),
                )
            )
            lines[i] = lines[i][:col] + junk + lines[i][col:]
        elif op == "indent":
            lines[i] = " " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i][1:]
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return "\n".join(lines) + "\n"


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_data())
def test_fuzz_data_mutations(text: str) -> None:
    check(text)


@FUZZ
@given(mutated_text())
def test_fuzz_text_mutations(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(
        ["name", "address", "user", "identity_file", "jump", "gpu_model", "role", "location"]
    ),
    junk=nasty_or_text,
)
def test_fuzz_each_field_rejects_shell_text(field: str, junk: str) -> None:
    host = {"address": "10.0.0.1"}
    name = "gpu01"
    rack: dict[str, Any] = {"hosts": {}}
    if field == "name":
        name = junk
    elif field == "location":
        rack["location"] = junk
    else:
        host[field] = junk
    rack["hosts"][name] = host
    text = yaml.safe_dump({"cluster": "c", "racks": {"r01": rack}}, allow_unicode=True)
    check(text)
    if set(junk) & SHELL_ACTIVE:
        with pytest.raises(InventoryError):
            loads(text, NAME)


@pytest.mark.parametrize("text", ["cluster: c\nhosts: {a: {address: 10.0.0.1}}\n"])
def test_check_accepts_a_valid_inventory(text: str) -> None:
    check(text)
