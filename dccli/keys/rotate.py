"""`dccli keys rotate`: move hosts to a new key without ever locking the control node out.

Per host, in order (each step only after the previous one succeeded):
  connect  the pooled connection with the key the host accepts today (kept open throughout);
  read     ~/.ssh/authorized_keys over SFTP;
  add      the new public key, prepended, atomically (authfile.write: temp + rename, mode/owner kept);
  login    a FRESH connection offering only the new key, running a command;
  switch   the identity map (transport/identities.py) now names the new key for this host, fsync'd;
  remove   the retired keys (dccli's older pairs, the inventory's identity file) from authorized_keys,
           over the fresh connection.
A failure at any step leaves the host accepting the key the map names for it, which the control node
holds: before `switch` the old key is still authorized and still mapped; from `switch` on the new key has
logged in and is mapped. A re-run picks the same target key and finishes (steps already done are no-ops).

Tests inject faults through `on_step(host, step)`, called after each step: a Python API only, not a CLI
flag.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dccli.errors import AuthError, DccliError, UsageError
from dccli.executor import FAILED, OK, classify, fan_out
from dccli.keys import authfile, authorized
from dccli.keys.audit import AuditRow, record
from dccli.keys.model import HostRotation, RotationReport
from dccli.keys.store import KeyPair, KeyStore, read_public
from dccli.transport.identities import endpoint_id

StepHook = Callable[[str, str], None]


def choose_target(
    store: KeyStore, identities, endpoints: Sequence, kind: str, new_key: bool
) -> tuple[KeyPair, bool]:
    """The pair to rotate to: the current one while some selected host has not finished moving to it
    (a re-run finishes the job), else a freshly generated one."""
    from dccli.keys.store import KEY_TYPES

    if kind not in KEY_TYPES:
        raise UsageError(f"--type {kind}: expected one of {', '.join(KEY_TYPES)}")
    current = store.current()
    wanted_type = {"ed25519": "ssh-ed25519", "ecdsa": "ecdsa-sha2-nistp256", "rsa": "ssh-rsa"}[kind]
    if current is not None and not new_key and current.key_type == wanted_type:
        entries = identities.entries()
        pending = [
            ep
            for ep in endpoints
            if not _done(entries.get(endpoint_id(ep.user, ep.address, ep.port)), current)
        ]
        if pending:
            return current, False
    return store.generate(kind), True


def _done(entry: dict | None, pair: KeyPair) -> bool:
    return bool(entry) and entry.get("identity_file") == str(pair.path) and bool(entry.get("complete"))


def retired_keys(store: KeyStore, target: KeyPair, host) -> dict[bytes, str]:
    """Blobs this rotation removes from a host: every other dccli pair, and the inventory's identity file.
    Never agent keys or ~/.ssh/config keys: those belong to the operator, not to dccli."""
    out = {p.blob: p.fingerprint for p in store.pairs(include_archived=True) if p.blob != target.blob}
    if host.identity_file:
        import os

        public = read_public(Path(os.path.expanduser(host.identity_file)))
        if public is not None and public[1] != target.blob:
            from dccli.transport.hostkeys import fingerprint

            out[public[1]] = fingerprint(public[1])
    return out


def open_fresh(pool, endpoint, key_path: Path, keyring=None, retry_s: float = 0.0):
    """A new connection offering only `key_path` (and its certificate, if one sits next to it).

    retry_s: after an sshd reload the listener re-executes itself and refuses connections for a moment;
    a refused or reset connection is retried that long (an authentication refusal never is)."""
    from dccli.errors import TransportError
    from dccli.transport.ssh import KeyRing, SSHConnection

    only = dataclasses.replace(endpoint, identity_files=(str(key_path),))
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return SSHConnection.open(
                only,
                hostkeys=pool.hostkeys,
                keys=keyring or KeyRing(use_agent=False),
                options=pool.options,
                via=pool.jump_connection(endpoint),
            )
        except AuthError:
            raise
        except TransportError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def prove_login(conn, expected_user: str, timeout: float = 30.0) -> None:
    out = conn.exec("id -un", timeout=timeout)
    got = out.stdout.decode("utf-8", "replace").strip()
    if out.exit_code != 0 or got != expected_user:
        raise AuthError(
            f"{conn.name}: fresh login ran `id -un` -> exit {out.exit_code}, {got!r} "
            f"(expected {expected_user!r})"
        )


def rotate_host(
    host,
    pool,
    target: KeyPair,
    retired: dict[bytes, str],
    keyring,
    on_step: StepHook | None = None,
    extra_steps: Callable | None = None,
    authorize_plain: bool = True,
) -> tuple[str, HostRotation]:
    """One host through connect/read/add/login/switch/remove; never raises for a host's failure."""
    hook = on_step or (lambda _h, _s: None)
    t0 = time.monotonic()
    step = "connect"
    removed: tuple[str, ...] = ()
    old: tuple[str, ...] = ()
    uses = None
    try:
        endpoint = pool.endpoint(host)
        was_done = _done(
            pool.identities.entries().get(endpoint_id(endpoint.user, endpoint.address, endpoint.port)), target
        )
        conn = pool.get(host)
        hook(host.name, "connect")
        step = "read"
        snap = authfile.read(conn)
        old = tuple(retired[e.blob] for e in authorized.user_keys(snap.content) if e.blob in retired)
        step = "add"
        already = authorized.has_key(snap.content, target.blob) or not authorize_plain
        if not already:
            authfile.write(conn, snap, authorized.add_key(snap.content, target.public_line()))
        if extra_steps is not None:
            step = "ca"
            extra_steps(conn, endpoint)  # CA mode: the host trusts the CA (sshd reloaded) before the login
        hook(host.name, "add")
        step = "login"
        fresh = open_fresh(pool, endpoint, target.path, keyring, retry_s=10.0 if extra_steps else 0.0)
        try:
            prove_login(fresh, endpoint.user)
            hook(host.name, "login")
            step = "switch"
            eid = endpoint_id(endpoint.user, endpoint.address, endpoint.port)
            pool.identities.set(eid, str(target.path), fingerprint=target.fingerprint, complete=False)
            uses = target.fingerprint
            hook(host.name, "switch")
            step = "remove"
            now = authfile.read(fresh)
            kept, count = authorized.remove_keys(now.content, retired)
            if count:
                authfile.write(fresh, now, kept)
            removed = tuple(retired[e.blob] for e in authorized.user_keys(now.content) if e.blob in retired)
            pool.identities.set(eid, str(target.path), fingerprint=target.fingerprint, complete=True)
            hook(host.name, "remove")
        finally:
            fresh.close()
        outcome = "already" if was_done and not removed else "rotated"
        return OK, HostRotation(
            host.name, outcome, "done", target.fingerprint, removed, uses, None, time.monotonic() - t0, old
        )
    except Exception as exc:  # a host's failure is its outcome, the others go on
        status = classify(exc) if isinstance(exc, DccliError) else FAILED
        message = str(exc) if isinstance(exc, DccliError) else f"{type(exc).__name__}: {exc}"
        if not message.startswith(host.name):
            message = f"{host.name}: {message}"
        return status, HostRotation(
            host.name, "failed", step, target.fingerprint, removed, uses, message, time.monotonic() - t0, old
        )


def archive_unused(store: KeyStore, identities, target: KeyPair) -> tuple[str, ...]:
    """Move dccli pairs that no host is mapped to any more into keys/archive/ (kept, not deleted)."""
    used = {e.get("identity_file") for e in identities.entries().values()}
    moved = []
    for pair in store.pairs():
        if pair.path != target.path and str(pair.path) not in used:
            store.archive(pair)
            moved.append(pair.name)
    return tuple(moved)


def rotate(
    inventory,
    hosts: Sequence,
    pool,
    *,
    home: Path,
    kind: str = "ed25519",
    new_key: bool = False,
    forks: int = 64,
    on_step: StepHook | None = None,
    on_event=None,
    target: KeyPair | None = None,
    extra_steps: Callable | None = None,
    authorize_plain: bool = True,
    audit_kind: str = "rotate",
) -> tuple[RotationReport, object]:
    """Rotate `hosts`; returns (report, GroupOutcome). The caller holds nothing: we take the keys lock."""
    from dccli.transport.ssh import KeyRing

    store = KeyStore(home)
    t0 = time.monotonic()
    with store.lock():
        endpoints = [pool.endpoint(h) for h in hosts]
        generated = target is not None  # a caller's target (CA mode) is a pair it just generated
        if target is None:
            target, generated = choose_target(store, pool.identities, endpoints, kind, new_key)
        keyring = KeyRing(use_agent=False)  # shared: the new key is parsed once, not once per host
        retired = {h.name: retired_keys(store, target, h) for h in hosts}
        group = fan_out(
            hosts,
            lambda h: rotate_host(
                h, pool, target, retired[h.name], keyring, on_step, extra_steps, authorize_plain
            ),
            forks=forks,
            on_event=on_event,
        )
        results = tuple(o.value for o in group.outcomes if o.value is not None)
        by_name = {h.name: ep for h, ep in zip(hosts, endpoints, strict=True)}
        rows = [
            AuditRow(
                o.host,
                endpoint_id(by_name[o.host].user, by_name[o.host].address, by_name[o.host].port),
                audit_kind,
                o.status,
                ",".join(o.value.old) or None,
                o.value.new_fingerprint,
                o.value.step,
                o.value.error,
                o.value.duration_s,
            )
            for o in group.outcomes
            if o.value is not None
        ]
        record(home, inventory.cluster, rows)
        archived = archive_unused(store, pool.identities, target)
    report = RotationReport(target.to_dict(), generated, results, archived, time.monotonic() - t0)
    return report, group
