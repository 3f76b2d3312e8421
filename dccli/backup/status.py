"""Columns for `dccli status`: each host's last successful backup and its age (from the state DB)."""

from __future__ import annotations

import time


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_columns(conn, inventory, now: float | None = None) -> dict[str, dict[str, str]]:
    """{host: {"last backup": "2h ago (ckpt 1a2b3c4d)"}}; hosts never backed up get "never"."""
    import sqlite3
    from contextlib import closing

    from dccli.backup import records

    now = time.time() if now is None else now
    if isinstance(conn, sqlite3.Connection):
        last = records.last_success(conn, inventory.cluster)
    else:  # called with a host connection or None: the columns come from the state DB only
        from dccli.state import db

        with closing(db.connect()) as own:
            last = records.last_success(own, inventory.cluster)
    out: dict[str, dict[str, str]] = {}
    for host in inventory.hosts:
        row = last.get(host.name)
        if row is None:
            out[host.name] = {"last backup": "never"}
        else:
            out[host.name] = {
                "last backup": f"{age(now - row['finished_at'])} ago ({row['profile']} "
                f"{(row['snapshot_id'] or '')[:8]})"
            }
    return out
