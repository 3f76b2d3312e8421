"""`dccli keys status` (per host, over its connection) and status_columns for `dccli status` (no network).

What dccli's keys are is known on the control node: its pairs (active and archived) and each host's
inventory identity file. A host is asked only for its authorized_keys (SFTP) and, when dccli has a user
CA, which CA sshd trusts (`sshd -T`, one exec); its host key comes with the connection itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from dccli.errors import DccliError
from dccli.executor import FAILED, OK, classify, fan_out
from dccli.keys import authfile, authorized
from dccli.keys.model import KeyStatus
from dccli.keys.store import KeyPair, KeyStore, read_public
from dccli.transport.hostkeys import fingerprint
from dccli.transport.identities import IdentityMap, endpoint_id


def known_keys(store: KeyStore, hosts: Sequence) -> dict[bytes, dict]:
    """blob -> {"name", "path", "created_at"} for every key dccli holds or was configured with."""
    out: dict[bytes, dict] = {}
    seen: set[str] = set()
    for h in hosts:
        if h.identity_file and h.identity_file not in seen:
            seen.add(h.identity_file)  # usually one file for the whole inventory: read it once
            path = Path(os.path.expanduser(h.identity_file))
            public = read_public(path)
            if public is not None and public[1] not in out:
                mtime = path.stat().st_mtime if path.exists() else None
                out[public[1]] = {"name": f"inventory:{path.name}", "path": str(path), "created_at": mtime}
    for pair in store.pairs(include_archived=True):
        out[pair.blob] = {
            "name": pair.name + (" (archived)" if pair.archived else ""),
            "path": str(pair.path),
            "created_at": pair.created_at,
        }
    return out


def login_key(identities: IdentityMap, endpoint) -> str | None:
    return (
        endpoint.identity_files[0]
        if endpoint.identity_files
        else identities.get(endpoint_id(endpoint.user, endpoint.address, endpoint.port))
    )


def key_age(path: str | None, known: dict[bytes, dict]) -> float | None:
    if not path:
        return None
    for info in known.values():
        if info["path"] == path and info["created_at"]:
            return max(0.0, time.time() - info["created_at"])
    try:
        return max(0.0, time.time() - os.stat(path).st_mtime)
    except OSError:
        return None


def _ca_trusted(conn, ca_blob: bytes) -> bool | None:
    """Does sshd's effective TrustedUserCAKeys file hold our CA? None: cannot tell (`sshd -T` needs root)."""
    out = conn.exec("sshd -T 2>/dev/null || /usr/sbin/sshd -T 2>/dev/null", timeout=30)
    if not out.stdout.strip():
        return None
    path = None
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key.lower() == "trustedusercakeys" and value.strip().lower() != "none":
            path = value.strip()
    if path is None:
        return False
    try:
        snap = authfile.read(conn, path)
    except DccliError:
        return False
    return any(e.blob == ca_blob for e in authorized.entries(snap.content))


def host_status(
    host, pool, known: dict[bytes, dict], rotations: dict[str, dict], ca_blob: bytes | None
) -> tuple[str, KeyStatus]:
    endpoint = pool.endpoint(host)
    current = login_key(pool.identities, endpoint)
    base = dict(login_key=current, key_age_s=key_age(current, known), last_rotation=rotations.get(host.name))
    try:
        conn = pool.get(host)
        server = conn.transport.get_remote_server_key()
        host_key = {"type": server.get_name(), "fingerprint": fingerprint(server.asbytes()), "known": True}
        snap = authfile.read(conn)
        found, others = [], 0
        for entry in authorized.user_keys(snap.content):
            info = known.get(entry.blob)
            if info is None:
                others += 1
            else:
                found.append(
                    {
                        "name": info["name"],
                        "fingerprint": entry.fingerprint,
                        "current": info["path"] == current,
                    }
                )
        ca = None if ca_blob is None else _ca_trusted(conn, ca_blob)
        if ca and current and Path(current + "-cert.pub").is_file():
            found.append(
                {"name": Path(current).name + " (certificate)", "fingerprint": None, "current": True}
            )
        return OK, KeyStatus(
            host.name, tuple(found), host_key=host_key, ca_trusted=ca, other_keys=others, **base
        )
    except DccliError as exc:
        hk = {"known": False} if "HOST KEY" in str(exc) or "unknown host key" in str(exc) else {}
        return classify(exc), KeyStatus(host.name, (), host_key=hk, error=str(exc), **base)
    except OSError as exc:
        return FAILED, KeyStatus(host.name, (), error=f"{host.name}: {exc}", **base)


def gather(inventory, hosts: Sequence, pool, *, home: Path, forks: int = 64):
    from dccli.keys.audit import last_rotations, open_db
    from dccli.keys.ca import CertAuthority

    store = KeyStore(home)
    known = known_keys(store, hosts)
    from contextlib import closing

    with closing(open_db(home)) as db:
        rotations = last_rotations(db, inventory.cluster)
    ca = CertAuthority(home)
    ca_blob = ca.public_blob() if ca.exists() else None
    return fan_out(hosts, lambda h: host_status(h, pool, known, rotations, ca_blob), forks=forks)


def status_columns(conn, inventory, home: Path | None = None) -> dict[str, dict[str, str]]:
    """For `dccli status`: each host's login key age and last rotation, from local state only.
    conn: the state DB connection; home: DCCLI_HOME (default: the current one)."""
    from dccli.keys.audit import last_rotations
    from dccli.output.keys import age, when
    from dccli.paths import dccli_home
    from dccli.transport.options import resolve_endpoint

    home = home or dccli_home()
    hosts = [h for h in inventory.hosts if h.connection != "local"]
    known = known_keys(KeyStore(home), hosts)
    identities = IdentityMap(home / "identities.json")
    try:
        rotations = last_rotations(conn, inventory.cluster)
    except Exception:  # a status page must render even if the keys table is missing
        rotations = {}
    out: dict[str, dict[str, str]] = {}
    for h in hosts:
        endpoint = identities.apply(resolve_endpoint(h, None))
        last = rotations.get(h.name) or {}
        out[h.name] = {
            "key age": age(key_age(login_key(identities, endpoint), known)),
            "key rotated": when(last.get("last_ok_at")) if last.get("last_ok_at") else "never",
        }
    return out


__all__ = ["KeyPair", "gather", "status_columns"]
