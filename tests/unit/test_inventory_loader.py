"""Loader behaviour beyond the data files: file errors, defaults, zipping, precedence, the frozen model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dccli.errors import InventoryError
from dccli.inventory import fields
from dccli.inventory.loader import load, loads, localhost_inventory
from dccli.inventory.model import Host, Inventory

DATA = Path(__file__).parent / "data" / "inventories"
EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "example.yml"


def error_of(text: str, path: str = "inv.yml") -> str:
    with pytest.raises(InventoryError) as info:
        loads(text, path)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- files -----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(InventoryError) as info:
        load(path)
    assert str(info.value) == f"{path}: cannot read inventory: No such file or directory"


def test_directory_is_not_an_inventory(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory: Is a directory"):
        load(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"cluster: caf\xe9\n")
    with pytest.raises(InventoryError) as info:
        load(str(path))
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0xe9 at offset 12)"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbfcluster: c\nhosts: {a: {address: 10.0.0.1}}\n")
    assert load(path).names() == ["a"]


def test_whitespace_only_is_empty() -> None:
    assert error_of("\n\n   \n") == "inv.yml: inventory is empty (expected a mapping with at least 'cluster')"


def test_control_character_is_a_yaml_error() -> None:
    assert (
        error_of("cluster: c\nhosts: {}\x01\n") == "inv.yml:2:10: invalid YAML: unacceptable character #x0001"
    )


def test_alias_bomb_is_stopped() -> None:
    lines = ["cluster: c", "x-0: &a0 [a, a, a, a, a, a, a, a, a, a]"]
    for i in range(1, 8):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"x-{i}: &a{i} [{refs}]")
    message = error_of("\n".join(lines) + "\n")
    assert "too many YAML values" in message


def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    message = error_of("cluster: c\nvars:\n  deep: " + "[" * 3000 + "]" * 3000 + "\n")
    assert message.startswith("inv.yml")
    assert "too deep" in message


# -- values ----------------------------------------------------------------------------------------------


def test_example_inventory_values() -> None:
    inv = load(EXAMPLE)
    assert inv.cluster == "dc-east-1"
    assert len(inv.hosts) == 11
    assert [r.name for r in inv.racks] == ["r01", "r02"]
    gpu05 = inv.host("gpu05")
    assert gpu05.address == "10.2.0.11"
    assert gpu05.gpus == 8
    assert gpu05.gpu_model == "H100-SXM5-80GB"
    assert gpu05.jump == "bastion01"
    assert gpu05.rack == "r02"
    assert gpu05.identity_file == "~/.ssh/dccli_ed25519"  # ~ is kept: expanded when used
    assert gpu05.tags == ("trainer", "ib-ndr")
    assert gpu05.groups == ("r02", "gpu", "trainers")
    assert gpu05.vars["torch_master_port"] == 29500
    assert gpu05.vars["ib_subnet"] == "10.102.0.0/16"
    assert gpu05.source == f"{EXAMPLE}:50"
    assert inv.host("bastion01").jump is None
    assert inv.rack("r01").location == "hall A, row 3, position 12"
    assert inv.defined_groups == ("gpu", "trainers", "storage", "infra")


def test_addresses_zip_in_written_order() -> None:
    inv = loads("cluster: c\nhosts:\n  n[3,1-2]: {address: '10.0.0.[30,10,20]'}\n")
    assert [(h.name, h.address) for h in inv.hosts] == [
        ("n3", "10.0.0.30"),
        ("n1", "10.0.0.10"),
        ("n2", "10.0.0.20"),
    ]


def test_defaults_and_overrides() -> None:
    inv = loads(
        "cluster: c\n"
        "defaults: {user: ops, port: 2222, identity_file: /k, connection: ssh, jump: gw.example.com}\n"
        "hosts:\n"
        "  a: {address: 10.0.0.1}\n"
        "  b: {address: 10.0.0.2, user: root, port: 22, identity_file: ~/.ssh/b, jump: 'x@10.9.9.9:2'}\n"
        "  c: {connection: local}\n"
    )
    a, b, c = inv.hosts
    assert (a.user, a.port, a.identity_file, a.jump) == ("ops", 2222, "/k", "gw.example.com")
    assert (b.user, b.port, b.identity_file, b.jump) == ("root", 22, "~/.ssh/b", "x@10.9.9.9:2")
    assert (c.connection, c.address) == ("local", "127.0.0.1")
    assert inv.defaults.connect_timeout == 10.0


def test_address_defaults_to_name() -> None:
    assert (
        loads("cluster: c\nhosts:\n  node1.example.com:\n").host("node1.example.com").address
        == "node1.example.com"
    )


def test_same_address_different_port_is_fine() -> None:
    inv = loads("cluster: c\nhosts:\n  a: {address: 10.0.0.1}\n  b: {address: 10.0.0.1, port: 2222}\n")
    assert len(inv.hosts) == 2


def test_duplicate_address_ipv6_spelling() -> None:
    message = error_of("cluster: c\nhosts:\n  a: {address: 'fd00::1'}\n  b: {address: 'fd00:0::0001'}\n")
    assert message.startswith("inv.yml:4:16: hosts.b.address: address fd00:0::0001 port 22 of host 'b'")


def test_bastion_inside_its_rack_reaches_itself_directly() -> None:
    inv = load(DATA / "good" / "local_and_jumps.yml")
    assert inv.host("bastion01").jump == "outer"  # its own jump, not the rack's (itself)
    assert inv.host("gpu01").jump == "bastion01"
    assert inv.host("gpu01").port == 2200


def test_var_precedence_host_group_rack_cluster() -> None:
    inv = load(DATA / "good" / "groups_forms.yml")
    assert inv.host("gpu01").vars["level"] == "rack"
    assert inv.host("gpu01").vars["site"] == "east"
    assert inv.host("gpu06").vars["level"] == "group-not_r01"
    assert inv.host("gpu05").vars["level"] == "group-later"  # the later group in the file wins
    assert inv.host("gpu08").vars["level"] == "host"
    assert "rack_only" not in inv.host("gpu05").vars
    assert inv.groups["empty"] == ()
    assert inv.groups["xor"] == ("gpu01", "gpu02", "gpu03", "gpu05")


def test_group_members_follow_inventory_order() -> None:
    inv = loads("cluster: c\nhosts:\n  b: {}\n  a: {}\n  c: {}\ngroups:\n  g: 'c,a,b'\n  h: ['c', '@g']\n")
    assert inv.groups["g"] == ("b", "a", "c")
    assert inv.groups["h"] == ("b", "a", "c")


def test_group_may_reference_group_defined_later_and_rack_range() -> None:
    inv = loads(
        "cluster: c\nracks:\n  r1: {hosts: {a: {}}}\n  r2: {hosts: {b: {}}}\n"
        "groups:\n  first: '@second'\n  second: '@r[1-2]'\n"
    )
    assert inv.groups["first"] == ("a", "b")


def test_merge_key_errors_point_at_the_anchor() -> None:
    message = error_of("cluster: c\nx-base: &b {gpus: many}\nhosts:\n  a: {<<: *b}\n")
    assert message == 'inv.yml:2:19: hosts.a.gpus: expected an integer >= 0, got "many"'


def test_yaml_keys_are_taken_as_written() -> None:
    # `yes` and `123` stay host names rather than becoming True and 123.
    inv = loads("cluster: c\nhosts:\n  yes: {address: 10.0.0.1}\n  '123': {address: 10.0.0.2}\n")
    assert inv.names() == ["yes", "123"]


def test_x_keys_only_at_top_level() -> None:
    assert error_of("cluster: c\nhosts:\n  a: {x-foo: 1}\n").startswith(
        "inv.yml:3:7: hosts.a.x-foo: unknown key"
    )


def test_error_carries_structured_fields() -> None:
    with pytest.raises(InventoryError) as info:
        loads("cluster: c\nhosts:\n  a: {gpus: eight}\n", "cluster.yml")
    err = info.value
    assert (err.path, err.line, err.column, err.key) == ("cluster.yml", 3, 13, "hosts.a.gpus")
    assert err.message == 'expected an integer >= 0, got "eight"'


# -- model -----------------------------------------------------------------------------------------------


def test_model_is_frozen_and_read_only() -> None:
    inv = load(EXAMPLE)
    host = inv.host("stor01")
    with pytest.raises(dataclasses.FrozenInstanceError):
        host.address = "10.9.9.9"  # type: ignore[misc]
    with pytest.raises(TypeError):
        host.vars["export_path"] = "/tmp"  # type: ignore[index]
    with pytest.raises(TypeError):
        inv.groups["all"] = ()  # type: ignore[index]
    assert hash(host) == hash(dataclasses.replace(host))
    with pytest.raises(KeyError):
        inv.host("gpu99")


def test_to_dict_is_plain_json() -> None:
    inv = load(DATA / "good" / "groups_forms.yml")
    data = json.loads(json.dumps(inv.to_dict()))
    assert data["cluster"] == "groups"
    assert data["groups"]["odd"] == ["gpu01", "gpu03", "gpu05", "gpu07"]
    assert data["hosts"][0]["tags"] == ["trainer"]
    assert data["hosts"][7]["vars"]["level"] == "host"
    assert data["racks"][0]["vars"] == {"level": "rack", "rack_only": 1}
    assert data["group_vars"]["later"] == {"level": "group-later"}


def test_group_resolver_for_nodeset() -> None:
    from dccli.inventory.nodeset import NodeSet

    inv = load(EXAMPLE)
    assert list(NodeSet.parse("@storage,@infra", resolver=inv.group_resolver())) == ["bastion01", "stor01"]
    with pytest.raises(KeyError):
        inv.group_resolver()("nope")


def test_localhost_inventory() -> None:
    inv = localhost_inventory()
    assert isinstance(inv, Inventory)
    assert inv.names() == ["localhost"]
    host = inv.host("localhost")
    assert isinstance(host, Host)
    assert (host.connection, host.address) == ("local", "127.0.0.1")
    assert inv.groups == {"all": ("localhost",)}
    assert inv.select(None) == [host]
    assert inv.select("@all") == [host]


# -- field checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["gpu01", "a", "node-1.dc.example.com", "A1", "1gpu", "x" * 63 + "." + "y" * 63]
)
def test_valid_host_names(name: str) -> None:
    assert fields.host_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "-a", "a-", "a..b", "a_b", "a b", "x" * 64, ("x" * 60 + ".") * 5, "é"])
def test_invalid_host_names(name: str) -> None:
    assert fields.host_name_problem(name) is not None


@pytest.mark.parametrize(
    ("text", "user", "host", "port"),
    [
        ("bastion01", None, "bastion01", None),
        ("ops@gw.example.com:2222", "ops", "gw.example.com", 2222),
        ("[fd00::1]:22", None, "fd00::1", 22),
        ("fd00::1", None, "fd00::1", None),
        ("10.0.0.1", None, "10.0.0.1", None),
    ],
)
def test_parse_jump(text: str, user: str | None, host: str, port: int | None) -> None:
    spec = fields.parse_jump(text)
    assert (spec.user, spec.host, spec.port) == (user, host, port)


@pytest.mark.parametrize("text", ["", "a@", "@h", "h:", "h:0", "a b", "h;id", "[h]:22", "u@h:22:33", "u@@h"])
def test_parse_jump_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        fields.parse_jump(text)


def test_every_schema_key_is_documented() -> None:
    from dccli.inventory import loader

    doc = (Path(__file__).resolve().parents[2] / "docs" / "inventory.md").read_text(encoding="utf-8")
    for table in (loader.TOP, loader.DEFAULTS, loader.RACK, loader.HOST, loader.GROUP):
        for key in table:
            assert f"`{key}`" in doc, key
