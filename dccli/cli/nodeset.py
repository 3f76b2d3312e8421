"""`dccli nodeset -e|-f|-c EXPR...`: ClusterShell's `nodeset`, same output, with the inventory's @groups."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dccli.cli.common import InventoryOpt, handle_errors

_HELP = (
    "Expand, fold or count node sets (ClusterShell/Slurm syntax); output matches ClusterShell's nodeset.\n\n"
    "EXPR: gpu[01-16], r[1-2]n[01-16], 10.1.0.[11-14], @group (from the inventory); "
    "operators , (union) ! (minus) & (and) ^ (xor) apply left to right. "
    "Several EXPR are unioned; with none, names are read from stdin."
)


def register(app: typer.Typer) -> None:
    app.command("nodeset", help=_HELP, short_help="Expand, fold or count node sets.")(nodeset)


@handle_errors
def nodeset(
    exprs: list[str] | None = typer.Argument(None, metavar="EXPR", show_default=False, help="Node sets."),
    expand: bool = typer.Option(False, "-e", "--expand", help="Print the node names, one line."),
    fold: bool = typer.Option(False, "-f", "--fold", help="Print the folded node set."),
    count: bool = typer.Option(False, "-c", "--count", help="Print the number of nodes."),
    separator: str = typer.Option(" ", "-S", "--separator", help="Separator for -e (escapes like \\n work)."),
    inventory: Path | None = InventoryOpt,
) -> None:
    from dccli.errors import UsageError
    from dccli.inventory.nodeset import NodeSet
    from dccli.output.console import Env

    if expand + fold + count != 1:
        raise UsageError("nodeset: give exactly one of -e/--expand, -f/--fold, -c/--count")
    sep = _unescape(separator)
    env = Env.from_process()
    if exprs:
        # Like ClusterShell, each line of an argument is its own expression.
        items = [line for expr in exprs for line in expr.splitlines()]
    else:
        if _isatty(sys.stdin):
            raise UsageError("nodeset: no EXPR given (and stdin is a terminal)")
        items = [word for line in sys.stdin for word in line.split("#", 1)[0].split()]

    resolver = None
    if any("@" in item for item in items):
        # Only expressions with @groups pay for loading the inventory.
        from dccli.cli.common import load_inventory

        resolver = load_inventory(inventory).group_resolver()

    result = NodeSet()
    for item in items:
        result = result | NodeSet.parse(item, resolver)

    if expand:
        env.out(sep.join(result))
    elif fold:
        env.out(str(result))
    else:
        env.out(str(len(result)))


def _unescape(separator: str) -> str:
    """Interpret backslash escapes ("\\n", "\\t") as ClusterShell's nodeset -S does."""
    from dccli.errors import UsageError

    if "\\" not in separator:
        return separator
    try:
        return separator.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        raise UsageError(f"nodeset: invalid separator {separator!r}") from None


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
