"""Load an inventory YAML file into the frozen model; every mistake is one InventoryError line.

Pipeline: read -> yamlnodes.parse (positions, duplicate keys) -> schema tables (shape and field values)
-> cross-checks (host ranges, duplicates, jumps, groups) -> model. The tables below are the schema that
docs/inventory.md documents; a new section is a new table plus an entry in TOP.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dccli.errors import InventoryError, NodeSetParseError
from dccli.inventory import fields
from dccli.inventory.model import Defaults, Host, Inventory, Rack, freeze
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
MAX_HOSTS = 100_000  # per range; stops `n[1-999999999]` from eating memory

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
_port = integer(1, 65535)

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
    "address": Field(string(what="an IP address or DNS name"), doc="IP or DNS name; a range zips with the host range"),
    "port": Field(_port),
    "user": Field(_user),
    "identity_file": Field(_path),
    "connection": Field(choice("ssh", "local")),
    "jump": Field(_jump),
    "gpus": Field(integer(0, 1024)),
    "gpu_model": Field(string(fields.gpu_model_problem, "a GPU model name")),
    "role": Field(string(fields.identifier_problem, "an identifier")),
    "tags": Field(_tags),
    "vars": Field(_vars),
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
}

_group_exprs = string_or_list(string(what="a node-set expression"), "a node-set expression or a list of them")

GROUP: Schema = {
    "hosts": Field(_group_exprs, required=True),
    "vars": Field(_vars),
}


def _group(node: YNode, src: Source) -> Record:
    if node.kind == "map":
        return section(GROUP)(node, src)
    return Record({"hosts": _group_exprs(node, src)}, {"hosts": node}, node)


def _group_name_problem(name: str) -> str | None:
    if name in RESERVED_GROUPS:
        return f"is reserved ({', '.join(RESERVED_GROUPS)} cannot be defined)"
    return fields.identifier_problem(name)


TOP: Schema = {
    "cluster": Field(string(fields.cluster_name_problem, "a cluster name"), required=True),
    "defaults": Field(section(DEFAULTS, allow_null=True)),
    "racks": Field(mapping_of(_group_name_problem, section(RACK, allow_null=True), "rack name")),
    "hosts": Field(_host_table),
    "groups": Field(mapping_of(_group_name_problem, _group, "group name")),
    "vars": Field(_vars),
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
    top = section(TOP)(root, src)
    return _Builder(src, path, top).build()


# ---- cross-checks and assembly -------------------------------------------------------------------------


@dataclass
class _Pending:
    """One host name from a host entry, before defaults and groups are applied."""

    name: str
    key_node: YNode
    entry: Record
    rack: str | None
    address: str | None
    address_node: YNode
    order: tuple[int, int, int]
    jump: fields.JumpSpec | None = None
    jump_node: YNode | None = None
    jump_own: bool = False  # set on the host itself (not inherited from its rack or the defaults)
    groups: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, src: Source, path: Path | None, top: Record) -> None:
        self.src = src
        self.path = path
        self.top = top
        self.pending: dict[str, _Pending] = {}

    def build(self) -> Inventory:
        top, src = self.top, self.src
        defaults_rec: Record | None = top.get("defaults")
        dv = defaults_rec.values if defaults_rec else {}
        default_jump = dv.get("jump")
        defaults = Defaults(
            user=dv.get("user", "root"),
            port=dv.get("port", 22),
            identity_file=dv.get("identity_file"),
            known_hosts=dv.get("known_hosts"),
            connect_timeout=dv.get("connect_timeout", 10.0),
            connection=dv.get("connection", "ssh"),
            jump=default_jump.text if default_jump else None,
        )
        racks_in: dict[str, tuple[YNode, Record]] = top.get("racks", {})
        for rack_name, (_, rack) in racks_in.items():
            jump = rack.get("jump") or default_jump
            jump_node = rack.nodes.get("jump") if rack.get("jump") else _node(defaults_rec, "jump")
            self._add_hosts(rack.get("hosts", {}), rack_name, jump, jump_node)
        self._add_hosts(top.get("hosts", {}), None, default_jump, _node(defaults_rec, "jump"))
        ordered = sorted(self.pending.values(), key=lambda p: p.order)
        names = [p.name for p in ordered]
        self._check_addresses(ordered, defaults)
        self._check_jumps(ordered)

        groups: dict[str, tuple[str, ...]] = {"all": tuple(names)}
        racks: list[Rack] = []
        for rack_name, (_, rack) in racks_in.items():
            members = tuple(p.name for p in ordered if p.rack == rack_name)
            groups[rack_name] = members
            jump = rack.get("jump")
            racks.append(
                Rack(rack_name, rack.get("location"), jump.text if jump else None, members, freeze(rack.get("vars", {})))
            )
        defined = top.get("groups", {})
        group_vars: dict[str, Any] = {}
        resolved = _GroupResolver(src, defined, groups, set(names)).resolve_all()
        for group_name, (key_node, rec) in defined.items():
            if group_name in racks_in:
                raise src.error(f"group {group_name!r} is already a rack (every rack is a group)", key_node)
            groups[group_name] = resolved[group_name]
            group_vars[group_name] = freeze(rec.get("vars", {}))

        membership: dict[str, list[str]] = {n: [] for n in names}
        for group_name, members in groups.items():
            if group_name != "all":
                for member in members:
                    membership[member].append(group_name)
        cluster_vars = top.get("vars", {})
        rack_vars = {r.name: r.vars for r in racks}
        hosts = tuple(
            self._host(p, defaults, membership[p.name], cluster_vars, rack_vars, group_vars, defined) for p in ordered
        )
        return Inventory(
            cluster=top.values["cluster"],
            path=self.path,
            hosts=hosts,
            racks=tuple(racks),
            groups=freeze(groups),
            group_vars=freeze(group_vars),
            vars=freeze(cluster_vars),
            defaults=defaults,
        )

    # -- hosts --

    def _add_hosts(
        self,
        table: dict[str, tuple[YNode, Record]],
        rack: str | None,
        jump: fields.JumpSpec | None,
        jump_node: YNode | None,
    ) -> None:
        src = self.src
        for key, (key_node, entry) in table.items():
            names = self._expand(key, key_node, "host name")
            for name in names:
                problem = fields.host_name_problem(name)
                if problem:
                    raise src.error(f"host name {fields.quote_value(name)} {problem}", key_node)
            address_node = entry.nodes.get("address", key_node)
            addresses: list[str | None] = [None] * len(names)
            if "address" in entry:
                addresses = list(self._addresses(entry.values["address"], address_node, names, key))
            own_jump = entry.get("jump")
            for i, (name, address) in enumerate(zip(names, addresses, strict=True)):
                if name in self.pending:
                    first = self.pending[name].key_node
                    raise src.error(
                        f"duplicate host {name!r} (already defined at {src.name}:{first.line}:{first.column} "
                        f"as {first.path})",
                        key_node,
                    )
                pending = _Pending(
                    name, key_node, entry, rack, address, address_node, (key_node.line, key_node.column, i)
                )
                if own_jump is not None:
                    if own_jump.is_reference and own_jump.host == name:
                        raise src.error(f"host {name!r} cannot jump through itself", entry.nodes["jump"])
                    pending.jump, pending.jump_node, pending.jump_own = own_jump, entry.nodes["jump"], True
                elif jump is not None and not (jump.is_reference and jump.host == name):
                    # A rack's bastion usually sits in that rack: it reaches itself directly.
                    pending.jump, pending.jump_node = jump, jump_node
                self.pending[name] = pending

    def _expand(self, pattern: str, node: YNode, what: str) -> list[str]:
        if "[" not in pattern and "]" not in pattern:
            return [pattern]
        from dccli.inventory.nodeset import count, expand_ordered

        try:
            n = count(pattern)
            if n > MAX_HOSTS:
                raise self.src.error(f"{what} range {pattern!r} expands to {n} names (at most {MAX_HOSTS})", node)
            return expand_ordered(pattern)
        except NodeSetParseError as exc:
            raise self.src.error(f"invalid {what} range {fields.quote_value(pattern)}: {exc}", node) from None

    def _addresses(self, address: str, node: YNode, names: list[str], key: str) -> list[str]:
        src = self.src
        addresses = self._expand(address, node, "address")
        if len(addresses) != len(names):
            if len(addresses) == 1:
                hint = " (write a bracket range, e.g. 10.1.0.[11-14], one address per host)"
            else:
                hint = ""
            raise src.error(
                f"{len(addresses)} address{'es' if len(addresses) != 1 else ''} for {len(names)} "
                f"host{'s' if len(names) != 1 else ''} in {key!r}{hint}",
                node,
            )
        for value in addresses:
            problem = fields.address_problem(value)
            if problem:
                raise src.error(f"address {fields.quote_value(value)} {problem}", node)
        return addresses

    def _check_addresses(self, ordered: list[_Pending], defaults: Defaults) -> None:
        seen: dict[tuple[str, int], _Pending] = {}
        for p in ordered:
            values = p.entry.values
            if values.get("connection", defaults.connection) == "local":
                continue  # local hosts are not reached over the network
            address = p.address or p.name
            key = (_normalize_address(address), values.get("port", defaults.port))
            if key in seen:
                other = seen[key]
                raise self.src.error(
                    f"address {address} port {key[1]} of host {p.name!r} is already used by host "
                    f"{other.name!r} ({self.src.name}:{other.address_node.line}:{other.address_node.column})",
                    p.address_node,
                )
            seen[key] = p

    def _check_jumps(self, ordered: list[_Pending]) -> None:
        src = self.src
        for p in ordered:
            if p.jump is None or not p.jump.is_reference:
                continue
            target = self.pending.get(p.jump.host)
            if target is None:
                hint = fields.did_you_mean(p.jump.host, self.pending)
                raise src.error(
                    f"jump {p.jump.host!r} is not an inventory host{hint}; a host outside the inventory is "
                    "written user@host, host:port or as a dotted DNS name",
                    p.jump_node,
                )
            if target.entry.get("connection") == "local":
                raise src.error(f"jump host {target.name!r} has connection local", p.jump_node)
            chain = [p.name]
            hop: _Pending | None = p
            while hop is not None and hop.jump is not None and hop.jump.is_reference:
                if hop.jump.host in chain:
                    raise src.error(f"jump hosts form a cycle: {' -> '.join([*chain, hop.jump.host])}", p.jump_node)
                chain.append(hop.jump.host)
                hop = self.pending.get(hop.jump.host)

    def _host(
        self,
        p: _Pending,
        defaults: Defaults,
        groups: list[str],
        cluster_vars: dict[str, Any],
        rack_vars: dict[str, Any],
        group_vars: dict[str, Any],
        defined: dict[str, Any],
    ) -> Host:
        v = p.entry.values
        connection = v.get("connection", defaults.connection)
        address = p.address or ("127.0.0.1" if connection == "local" else p.name)
        # Precedence, lowest first: cluster, rack, groups in file order, host (Ansible's order, flattened).
        merged: dict[str, Any] = dict(cluster_vars)
        if p.rack is not None:
            merged.update(rack_vars[p.rack])
        for group_name in defined:
            if group_name in groups:
                merged.update(group_vars[group_name])
        merged.update(v.get("vars", {}))
        return Host(
            name=p.name,
            address=address,
            port=v.get("port", defaults.port),
            user=v.get("user", defaults.user),
            identity_file=v.get("identity_file", defaults.identity_file),
            connection=connection,
            jump=p.jump.text if p.jump is not None else None,
            rack=p.rack,
            gpus=v.get("gpus", 0),
            gpu_model=v.get("gpu_model"),
            role=v.get("role"),
            tags=tuple(v.get("tags", ())),
            groups=tuple(groups),
            vars=freeze(merged),
            source=f"{self.src.name}:{p.key_node.line}",
        )


class _GroupResolver:
    """Expands `groups:` expressions; @name may be a rack, `all` or another group (cycles are errors)."""

    def __init__(
        self,
        src: Source,
        defined: dict[str, tuple[YNode, Record]],
        builtin: dict[str, tuple[str, ...]],
        hosts: set[str],
    ) -> None:
        self.src = src
        self.defined = defined
        self.builtin = builtin
        self.hosts = hosts
        self.order = {name: i for i, name in enumerate(builtin["all"])}
        self.done: dict[str, tuple[str, ...]] = {}
        self.stack: list[str] = []

    def resolve_all(self) -> dict[str, tuple[str, ...]]:
        for name in self.defined:
            self.resolve(name)
        return self.done

    def resolve(self, name: str) -> tuple[str, ...]:
        if name in self.done:
            return self.done[name]
        from dccli.inventory.nodeset import NodeSet

        key_node, record = self.defined[name]
        self.stack.append(name)
        members: set[str] = set()
        for node, expr in record.values["hosts"]:
            pending: list[InventoryError] = []
            unknown: list[str] = []

            def lookup(ref: str, pending: list[InventoryError] = pending, unknown: list[str] = unknown) -> list[str]:
                # Errors are parked and KeyError raised, so the node-set parser never has to carry our errors.
                if ref in self.builtin:
                    return list(self.builtin[ref])
                if ref in self.stack:
                    cycle = " -> ".join([*self.stack[self.stack.index(ref) :], ref])
                    pending.append(self.src.error(f"groups form a cycle: {cycle}", node))
                    raise KeyError(ref)
                if ref in self.defined:
                    try:
                        return list(self.resolve(ref))
                    except InventoryError as exc:
                        pending.append(exc)
                        raise KeyError(ref) from None
                unknown.append(ref)
                raise KeyError(ref)

            try:
                nodes = NodeSet.parse(expr, resolver=lookup)
                if len(nodes) > MAX_HOSTS * 10:
                    raise self.src.error(f"expression {expr!r} names {len(nodes)} hosts", node)
                found = set(nodes)
            except (KeyError, NodeSetParseError) as exc:
                if pending:
                    raise pending[0] from None
                if unknown:
                    known = [*self.builtin, *self.defined]
                    hint = fields.did_you_mean(unknown[0], known)
                    raise self.src.error(
                        f"group {name!r}: unknown group '@{unknown[0]}'{hint}", node
                    ) from None
                raise self.src.error(f"group {name!r}: invalid node-set expression {expr!r}: {exc}", node) from None
            missing = sorted(found - self.hosts)
            if missing:
                from dccli.inventory.nodeset import fold

                if len(missing) == 1:
                    hint = fields.did_you_mean(missing[0], self.hosts)
                    what = f"unknown host {missing[0]!r}{hint}"
                else:
                    what = f"unknown hosts {fold(missing)}"
                raise self.src.error(f"group {name!r}: {what}", node)
            members |= found
        self.stack.pop()
        result = tuple(sorted(members, key=self.order.__getitem__))
        self.done[name] = result
        return result


def _node(record: Record | None, key: str) -> YNode | None:
    return record.nodes.get(key) if record is not None else None


def _normalize_address(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address.lower().rstrip(".")
