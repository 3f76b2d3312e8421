"""Options shared by every command that touches hosts, and the one place failures become exit codes."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

InventoryOpt = typer.Option(
    None, "-i", "--inventory", help="Inventory file (default: $DCCLI_INVENTORY, ./inventory/cluster.yml, the lab's, localhost)."
)
LimitOpt = typer.Option(None, "-l", "--limit", help="Node-set pattern: gpu[01-04], @rack01, gpu[01-16]!gpu03, @gpu&@r02, @failed.")
ForksOpt = typer.Option(64, "-f", "--forks", min=1, max=4096, help="Hosts handled at once.")
TimeoutOpt = typer.Option(None, "--timeout", min=0.1, help="Seconds allowed for connecting to a host (default: the inventory's connect_timeout, 10).")
JsonOpt = typer.Option(False, "--json", help="One JSON document on stdout (schema_version 1).")


def inventory_path(explicit: Path | None) -> Path | None:
    """The inventory to load, by precedence; None means the built-in localhost inventory."""
    if explicit is not None:
        return explicit
    env = os.environ.get("DCCLI_INVENTORY")
    if env:
        return Path(env)
    local = Path("inventory/cluster.yml")
    if local.is_file():
        return local
    from dccli.lab.registry import active_lab_inventory

    return active_lab_inventory()


def load_inventory(explicit: Path | None):  # -> dccli.inventory.model.Inventory
    from dccli.inventory.loader import load, localhost_inventory

    path = inventory_path(explicit)
    if path is None:
        return localhost_inventory()
    return load(path)


def handle_errors(func: F) -> F:
    """Turn DccliError into one stderr line and its exit code; Ctrl-C into 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dccli.errors import DccliError, ExitCode
        from dccli.output.console import Env

        try:
            return func(*args, **kwargs)
        except DccliError as exc:
            Env.from_process().error(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            Env.from_process().err("dccli: interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]
