"""Columns for `dccli status`: the training runs active on each host (from the state DB)."""

from __future__ import annotations


def status_columns(conn, inventory) -> dict[str, dict[str, str]]:
    """{host: {"runs": "tr-1a2b3c4d RUNNING (rank 0/2)"}}; hosts with no active run get "-"."""
    import sqlite3
    from contextlib import closing

    from dccli.train import store
    from dccli.train.model import ACTIVE

    def active(db) -> list:
        return [r for r in store.listing(db, inventory.cluster, limit=200) if r.state in ACTIVE]

    if isinstance(conn, sqlite3.Connection):
        runs = active(conn)
    else:  # called with a host connection or None: the columns come from the state DB only
        from dccli.state import db

        with closing(db.connect()) as own:
            runs = active(own)
    out: dict[str, dict[str, str]] = {h.name: {"runs": "-"} for h in inventory.hosts}
    for run in reversed(runs):
        for rank, host in enumerate(run.spec.hosts):
            if host not in out:
                continue
            label = f"{run.name or run.id} {run.state} (node {rank}/{len(run.spec.hosts)})"
            cur = out[host]["runs"]
            out[host]["runs"] = label if cur == "-" else f"{cur}, {label}"
    return out
