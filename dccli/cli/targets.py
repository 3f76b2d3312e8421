"""From the common options to hosts and a connection pool: shared by every command that touches hosts."""

from __future__ import annotations

from contextlib import closing


def select_hosts(inventory, limit: str | None) -> list:
    """Hosts matching --limit, with @failed bound to the hosts that failed in the last fan-out."""
    failed: list[str] = []
    if limit and "@failed" in limit:
        from dccli.state import commands, db

        with closing(db.connect()) as conn:
            failed = commands.last_failed(conn, inventory.cluster)
    hosts = inventory.select(limit, failed=failed)
    if not hosts:
        from dccli.errors import UsageError

        if limit and "@failed" in limit:
            raise UsageError("no failed hosts to retry: the last command succeeded everywhere")
        raise UsageError(f"no host matches {limit!r}")
    return hosts


def make_pool(inventory, connect_timeout: float | None):
    from dccli.transport.options import ConnectOptions
    from dccli.transport.pool import ConnectionPool

    if connect_timeout is None:
        connect_timeout = inventory.defaults.connect_timeout
    return ConnectionPool(inventory, ConnectOptions(connect_timeout=connect_timeout))


def remember(inventory, kind: str, command: str, started_at: float, group) -> None:
    """Record each host's fate so `--limit @failed` can re-target the failures."""
    from dccli.state import commands, db

    with closing(db.connect()) as conn:
        commands.record(conn, cluster=inventory.cluster, kind=kind, command=command, started_at=started_at,
                        outcomes=group.outcomes, exit_code=int(group.exit_code()))


__all__ = ["make_pool", "remember", "select_hosts"]
