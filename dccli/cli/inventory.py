"""`dccli inventory validate|show|hosts|export`: check and look at the inventory, hand it to other tools."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from dccli.cli.common import InventoryOpt, JsonOpt, LimitOpt, handle_errors, load_inventory


class ExportFormat(enum.StrEnum):
    ansible = "ansible"
    ssh_config = "ssh-config"
    json = "json"


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="inventory",
        help="Validate, show and export the inventory (racks, hosts, groups).",
        no_args_is_help=True,
    )
    sub.command("validate")(validate)
    sub.command("show")(show)
    sub.command("hosts")(hosts)
    sub.command("export")(export)
    app.add_typer(sub, name="inventory")


@handle_errors
def validate(inventory: Path | None = InventoryOpt) -> None:
    """Check the inventory; print a one-line summary, or the first error with file:line:column (exit 2)."""
    from dccli.output.console import Env

    inv = load_inventory(inventory)
    Env.from_process().out(
        f"ok: {len(inv.hosts)} hosts, {len(inv.racks)} racks, {len(inv.defined_groups)} groups"
    )


@handle_errors
def show(inventory: Path | None = InventoryOpt, json_out: bool = JsonOpt) -> None:
    """Racks and their hosts as a tree (address, GPUs, role, tags), then the groups."""
    from dccli.output.console import Env

    inv = load_inventory(inventory)
    env = Env.from_process()
    if json_out:
        from dccli.inventory.export import export_json

        env.out(export_json(inv))
        return
    _render_tree(inv, env.stdout_console())


@handle_errors
def hosts(
    inventory: Path | None = InventoryOpt, limit: str | None = LimitOpt, json_out: bool = JsonOpt
) -> None:
    """Host names, one per line, in inventory order (with -l: those matching the pattern)."""
    from dccli.output.console import Env

    inv = load_inventory(inventory)
    if limit and "@failed" in limit:
        # Shared with run/facts: binds @failed to the last fan-out's failures from the state database.
        from dccli.cli.targets import select_hosts

        selected = select_hosts(inv, limit)
    else:
        selected = inv.select(limit)
    env = Env.from_process()
    if json_out:
        from dccli.output.jsonout import document

        env.out(document(cluster=inv.cluster, hosts=[h.to_dict() for h in selected]))
        return
    for host in selected:
        env.out(host.name)


@handle_errors
def export(
    fmt: ExportFormat = typer.Option(..., "--format", help="ansible, ssh-config or json."),
    inventory: Path | None = InventoryOpt,
) -> None:
    """Write the inventory to stdout as an Ansible inventory, an ssh_config file, or JSON."""
    from dccli.inventory import export as exporters
    from dccli.output.console import Env

    inv = load_inventory(inventory)
    render = {
        ExportFormat.ansible: exporters.export_ansible,
        ExportFormat.ssh_config: exporters.export_ssh_config,
        ExportFormat.json: exporters.export_json,
    }[fmt]
    Env.from_process().stdout.write(render(inv).rstrip("\n") + "\n")


def _render_tree(inv: Any, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.tree import Tree

    # Locations and paths are user text: escape them so a "[" is shown, not taken as rich markup.
    title = f"[bold]{escape(inv.cluster)}[/]" + (f"  ({escape(str(inv.path))})" if inv.path else "")
    tree = Tree(title)
    by_rack: dict[str | None, list[Any]] = {}
    for host in inv.hosts:
        by_rack.setdefault(host.rack, []).append(host)
    for rack in inv.racks:
        label = f"[bold]{escape(rack.name)}[/]"
        if rack.location:
            label += f"  {escape(rack.location)}"
        if rack.jump:
            label += f"  via {escape(rack.jump)}"
        tree.add(label).add(_host_table(by_rack.get(rack.name, [])))
    if by_rack.get(None):
        tree.add("[bold](no rack)[/]").add(_host_table(by_rack[None]))
    console.print(tree)
    groups = Table("group", "hosts", "count", box=None, pad_edge=False)
    from dccli.inventory.nodeset import fold

    for name, members in inv.groups.items():
        groups.add_row(escape(name), escape(fold(members)) if members else "-", str(len(members)))
    console.print(groups)


def _host_table(hosts: list[Any]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table("host", "address", "gpus", "model", "role", "tags", box=None, pad_edge=False)
    for h in hosts:
        address = h.address if h.port == 22 else f"{h.address}:{h.port}"
        cells = (
            h.name,
            address,
            str(h.gpus or "-"),
            h.gpu_model or "-",
            h.role or "-",
            ",".join(h.tags) or "-",
        )
        table.add_row(*(escape(c) for c in cells))
    return table
