"""Cross-checks and assembly: host ranges zipped with addresses, duplicates, jumps, groups, merged vars.

loader.py checks each section's shape with its schema table; this module checks what spans sections and
builds the frozen model. Every failure is an InventoryError at the offending node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dccli.errors import InventoryError, NodeSetParseError
from dccli.inventory import fields
from dccli.inventory.model import Defaults, Host, Inventory, Rack, freeze
from dccli.inventory.schema import Record
from dccli.inventory.yamlnodes import Source, YNode

MAX_HOSTS = 100_000  # per range; stops `n[1-999999999]` from eating memory


def build(src: Source, path: Path | None, top: Record) -> Inventory:
    return _Builder(src, path, top).build()


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


class _Builder:
    def __init__(self, src: Source, path: Path | None, top: Record) -> None:
        self.src = src
        self.path = path
        self.top = top
        self.pending: dict[str, _Pending] = {}
        self.defaults = Defaults()

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
        self.defaults = defaults
        racks_in: dict[str, tuple[YNode, Record]] = top.get("racks", {})
        # Host entries in file order, wherever they sit, so a duplicate is reported at its second place.
        entries: list[tuple[str, YNode, Record, str | None, fields.JumpSpec | None, YNode | None]] = []
        for rack_name, (_, rack) in racks_in.items():
            jump = rack.get("jump") or default_jump
            jump_node = rack.nodes.get("jump") if rack.get("jump") else _node(defaults_rec, "jump")
            for key, (key_node, entry) in rack.get("hosts", {}).items():
                entries.append((key, key_node, entry, rack_name, jump, jump_node))
        for key, (key_node, entry) in top.get("hosts", {}).items():
            entries.append((key, key_node, entry, None, default_jump, _node(defaults_rec, "jump")))
        entries.sort(key=lambda e: (e[1].line, e[1].column))
        for entry_args in entries:
            self._add_entry(*entry_args)
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
                Rack(
                    rack_name,
                    rack.get("location"),
                    jump.text if jump else None,
                    members,
                    freeze(rack.get("vars", {})),
                )
            )
        defined = top.get("groups", {})
        group_vars: dict[str, Any] = {}
        for group_name, (key_node, _) in defined.items():
            if group_name in racks_in:
                raise src.error(f"group {group_name!r} is already a rack (every rack is a group)", key_node)
        resolved = _GroupResolver(src, defined, groups, set(names)).resolve_all()
        for group_name, (_, rec) in defined.items():
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
            self._host(p, defaults, membership[p.name], cluster_vars, rack_vars, group_vars, defined)
            for p in ordered
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

    def _add_entry(
        self,
        key: str,
        key_node: YNode,
        entry: Record,
        rack: str | None,
        jump: fields.JumpSpec | None,
        jump_node: YNode | None,
    ) -> None:
        src = self.src
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
        local = entry.get("connection", self.defaults.connection) == "local"
        for i, (name, address) in enumerate(zip(names, addresses, strict=True)):
            if name in self.pending:
                first = self.pending[name].key_node
                raise src.error(
                    f"duplicate host {name!r} (already defined at line {first.line}, column {first.column} "
                    f"by {first.path})",
                    key_node,
                )
            pending = _Pending(
                name, key_node, entry, rack, address, address_node, (key_node.line, key_node.column, i)
            )
            if own_jump is not None:
                if local:
                    raise src.error(
                        f"host {name!r} has connection local: it takes no jump", entry.nodes["jump"]
                    )
                if own_jump.is_reference and own_jump.host == name:
                    raise src.error(f"host {name!r} cannot jump through itself", entry.nodes["jump"])
                pending.jump, pending.jump_node = own_jump, entry.nodes["jump"]
            elif jump is not None and not local and not (jump.is_reference and jump.host == name):
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
                raise self.src.error(
                    f"{what} range {pattern!r} expands to {n} names (at most {MAX_HOSTS})", node
                )
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
                    f"{other.name!r} (line {other.address_node.line}, column {other.address_node.column})",
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
                    raise src.error(
                        f"jump hosts form a cycle: {' -> '.join([*chain, hop.jump.host])}", p.jump_node
                    )
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

        _, record = self.defined[name]
        self.stack.append(name)
        members: set[str] = set()
        for node, expr in record.values["hosts"]:
            pending: list[InventoryError] = []
            unknown: list[str] = []

            def lookup(
                ref: str,
                pending: list[InventoryError] = pending,
                unknown: list[str] = unknown,
                node: YNode = node,
            ) -> list[str]:
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
                raise self.src.error(
                    f"group {name!r}: invalid node-set expression {expr!r}: {exc}", node
                ) from None
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
