"""--limit patterns: node-set syntax over the inventory's hosts, @group/@rack, and the @failed keyword."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from dccli.errors import NodeSetParseError, UsageError
from dccli.inventory.fields import did_you_mean, one_line

if TYPE_CHECKING:
    from dccli.inventory.model import Host, Inventory

FAILED = "failed"  # `@failed`: the hosts that failed in the previous run (a name no group may take)


def select_hosts(inv: Inventory, pattern: str | None, failed: Iterable[str] = ()) -> list[Host]:
    """Hosts of `inv` matching `pattern` in inventory order; None selects every host.

    Patterns are ClusterShell node sets: `gpu[01-04],stor01`, `@trainers`, `@r01&@trainers`,
    `@all!gpu03`, `@failed`. Unknown hosts or groups raise UsageError with a suggestion.
    """
    if pattern is None:
        return list(inv.hosts)
    if not pattern.strip():
        raise UsageError("--limit: empty pattern")
    from dccli.inventory.nodeset import NodeSet, fold

    shown = repr(pattern)  # repr escapes newlines and control characters: the error stays one line
    # Failed names that are no longer in the inventory are dropped: they come from the state, not the user.
    failed_names = [name for name in failed if name in inv]
    unknown_groups: list[str] = []

    def resolve(name: str) -> list[str]:
        if name == FAILED:
            return failed_names
        if name in inv.groups:
            return list(inv.groups[name])
        unknown_groups.append(name)
        raise KeyError(name)

    try:
        nodes = NodeSet.parse(pattern, resolver=resolve)
    except (KeyError, NodeSetParseError) as exc:
        if unknown_groups:
            name = unknown_groups[0]
            hint = did_you_mean(name, [*inv.groups, FAILED])
            raise UsageError(f"--limit {shown}: unknown group {'@' + name!r}{hint}") from None
        raise UsageError(f"--limit {shown}: {one_line(str(exc))}") from None
    wanted = set(nodes)
    unknown = sorted(wanted.difference(inv.names()))
    if unknown:
        if len(unknown) == 1:
            hint = did_you_mean(unknown[0], inv.names())
            raise UsageError(f"--limit {shown}: unknown host {unknown[0]!r}{hint}")
        raise UsageError(f"--limit {shown}: unknown hosts {one_line(fold(unknown))}")
    return [h for h in inv.hosts if h.name in wanted]
