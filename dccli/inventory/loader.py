"""Load an inventory YAML file into the frozen model; every mistake is one InventoryError line.

Pipeline: read -> yamlnodes.parse (positions, duplicate keys) -> schema tables (shape and field values)
-> cross-checks (host ranges, duplicates, jumps, groups) -> model. The tables below are the schema that
docs/inventory.md documents; a new section is a new table plus an entry in TOP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dccli.inventory import fields
from dccli.inventory.build import build
from dccli.inventory.model import Defaults, Host, Inventory, freeze
from dccli.inventory.schema import (
    Field,
    Record,
    Schema,
    choice,
    integer,
    list_of,
    mapping_of,
    plain_data,
    positive_number,
    section,
    string,
    string_or_list,
)
from dccli.inventory.yamlnodes import Source, YNode, parse

RESERVED_GROUPS = ("all", "failed", "ungrouped")  # implicit, the --limit keyword, Ansible's catch-all

# Vars dccli itself sets in the Ansible export from host fields; setting them as vars would fight those.
_CONNECTION_VARS = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "identity_file",
    "ansible_connection": "connection",
    "ansible_ssh_common_args": "jump",
}


def _var_key_problem(name: str) -> str | None:
    if name in _CONNECTION_VARS:
        return f"is set by dccli from the host's {_CONNECTION_VARS[name]!r} key; set that instead"
    return fields.var_name_problem(name)


def _vars(node: YNode, src: Source) -> dict[str, Any]:
    checked = mapping_of(_var_key_problem, plain_data, "variable")(node, src)
    return {k: v for k, (_, v) in checked.items()}


def _jump(node: YNode, src: Source) -> fields.JumpSpec:
    text = string(what="a host name or [user@]host[:port]")(node, src)
    try:
        return fields.parse_jump(text)
    except ValueError as exc:
        raise src.error(f"{fields.quote_value(text)}: {exc}", node) from None


_tags = list_of(string(fields.identifier_problem, "an identifier"), "a list of tags")
_path = string(fields.path_problem, "a path")
_user = string(fields.user_problem, "a user name")
_port = integer(1, 65535, "an integer from 1 to 65535")

# ---- schema tables -------------------------------------------------------------------------------------

DEFAULTS: Schema = {
    "user": Field(_user, doc="login user (default root)"),
    "port": Field(_port, doc="ssh port (default 22)"),
    "identity_file": Field(_path, doc="private key; ~ expanded when used"),
    "known_hosts": Field(_path, doc="extra known_hosts file, besides dccli's and the user's"),
    "connect_timeout": Field(positive_number, doc="seconds (default 10)"),
    "connection": Field(choice("ssh", "local"), doc="ssh (default) or local"),
    "jump": Field(_jump, doc="ProxyJump for every host"),
}

HOST: Schema = {
    "address": Field(
        string(what="an IP address or DNS name"), doc="IP or DNS name; a range zips with the host range"
    ),
    "port": Field(_port),
    "user": Field(_user),
    "identity_file": Field(_path),
    "connection": Field(choice("ssh", "local")),
    "jump": Field(_jump),
    "gpus": Field(integer(0, 1024, "an integer >= 0")),
    "gpu_model": Field(string(fields.gpu_model_problem, "a GPU model name")),
    "role": Field(string(fields.identifier_problem, "an identifier")),
    "tags": Field(_tags),
    "vars": Field(_vars),
}


def _health_number(node: YNode, src: Source) -> float:
    value = node.value
    if node.kind != "scalar" or not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise src.error(f"expected a number >= 0, got {node.describe()}", node)
    return value


def _health_bool(node: YNode, src: Source) -> bool:
    if node.kind != "scalar" or not isinstance(node.value, bool):
        raise src.error(f"expected true or false, got {node.describe()}", node)
    return node.value


_health_names = list_of(string(fields.service_name_problem, "a service or name"), "a list of names")

# Health-check thresholds (dccli/health/thresholds.py TABLE documents each default and its source).
HEALTH: Schema = {
    **{k: Field(_health_number) for k in (
        "temp_warn_c", "temp_crit_c", "ecc_sbe_volatile_warn", "ecc_sbe_aggregate_warn", "ecc_dbe_volatile_crit",
        "ecc_dbe_aggregate_warn", "retired_pages_warn", "retired_pages_crit", "remap_uncorrectable_warn",
        "pcie_gen_busy_pct", "disk_warn_pct", "disk_crit_pct", "inodes_warn_pct", "inodes_crit_pct",
        "mem_available_warn_pct", "mem_available_crit_pct", "load_per_cpu_warn", "clock_offset_warn_s",
        "clock_skew_warn_s", "clock_skew_crit_s", "ib_rate_gbps", "defunct_warn")},
    "throttle_reasons": Field(_health_names),
    "required_services": Field(_health_names),
    "require_persistence": Field(_health_bool),
    "nvlink_links": Field(_health_bool),
}


def _host_name_key(key: str) -> str | None:
    # Checked after range expansion; here only what no pattern can fix.
    return "is empty" if not key else None


_host_table = mapping_of(_host_name_key, section(HOST, allow_null=True), "host")

RACK: Schema = {
    "location": Field(string(fields.text_problem, "a location text")),
    "jump": Field(_jump),
    "vars": Field(_vars),
    "hosts": Field(_host_table),
    "health": Field(section(HEALTH)),
}

_group_exprs = string_or_list(string(what="a node-set expression"), "a node-set expression or a list of them")

GROUP: Schema = {
    "hosts": Field(_group_exprs, required=True),
    "vars": Field(_vars),
    "health": Field(section(HEALTH)),
}


def _group(node: YNode, src: Source) -> Record:
    if node.kind == "map":
        return section(GROUP)(node, src)
    return Record({"hosts": _group_exprs(node, src)}, {"hosts": node}, node)


def _group_name_problem(name: str) -> str | None:
    if name in RESERVED_GROUPS:
        return f"is reserved ({', '.join(RESERVED_GROUPS)} cannot be defined)"
    return fields.identifier_problem(name)


def _backup(node: YNode, src: Source) -> Record:
    # The backup capability owns its table (docs/backup.md); imported only when a file has the section.
    from dccli.backup.profile import check_section

    return check_section(node, src)


TOP: Schema = {
    "cluster": Field(string(fields.cluster_name_problem, "a cluster name"), required=True),
    "defaults": Field(section(DEFAULTS, allow_null=True)),
    "racks": Field(mapping_of(_group_name_problem, section(RACK, allow_null=True), "rack name")),
    "hosts": Field(_host_table),
    "groups": Field(mapping_of(_group_name_problem, _group, "group name")),
    "vars": Field(_vars),
    "health": Field(section(HEALTH), doc="health-check thresholds for every host (docs/health.md)"),
    "backup": Field(_backup, doc="backup repositories and profiles (docs/backup.md)"),
}

# ---- entry points --------------------------------------------------------------------------------------


def load(path: str | Path) -> Inventory:
    """Read and validate an inventory file; InventoryError (one line, file:line:col) on any problem."""
    path = Path(path)
    src = Source(str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise src.error(f"cannot read inventory: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise src.error(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return _load_text(text, src, path)


def loads(text: str, path: str = "<string>") -> Inventory:
    """Validate inventory YAML given as text; `path` only names it in errors."""
    return _load_text(text, Source(path), None)


def localhost_inventory() -> Inventory:
    """The built-in inventory when none is configured: this machine only, no SSH."""
    host = Host(
        name="localhost",
        address="127.0.0.1",
        user=_local_user(),
        connection="local",
        source="<built-in>",
    )
    return Inventory(
        cluster="localhost",
        path=None,
        hosts=(host,),
        groups=freeze({"all": ("localhost",)}),
        defaults=Defaults(user=host.user, connection="local"),
    )


def _local_user() -> str:
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "root"
    return user if fields.user_problem(user) is None else "root"


def _load_text(text: str, src: Source, path: Path | None) -> Inventory:
    root = parse(text, src)
    if root is None:
        raise src.error("inventory is empty (expected a mapping with at least 'cluster')")
    if root.kind != "map":
        raise src.error(f"expected a mapping at the top level, got {root.describe()}", root)
    top = section(TOP, extensions=True)(root, src)
    inventory = build(src, path, top)
    if "backup" in top:
        # Host selections and storage hosts resolve only against built hosts.
        import dataclasses

        from dccli.backup.profile import resolve_section

        inventory = dataclasses.replace(inventory, backup=resolve_section(top.values["backup"], inventory, src))
    health = _health_overrides(top)
    if health:
        import dataclasses

        inventory = dataclasses.replace(inventory, health=freeze(health))
    return inventory


def _health_overrides(top: Record) -> dict[str, dict[str, Any]]:
    """`health:` sections by owner: "" for the top level, then racks and groups in file order."""
    out: dict[str, dict[str, Any]] = {}
    if "health" in top:
        out[""] = dict(top.values["health"].values)
    for section_name in ("racks", "groups"):
        for name, (_, rec) in top.get(section_name, {}).items():
            if isinstance(rec, Record) and "health" in rec:
                out[name] = dict(rec.get("health").values)
    return out
