"""One pooled connection per host for the whole command (jump hosts included), opened on first use."""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from dccli.errors import TransportError
from dccli.transport.hostkeys import HostKeyStore
from dccli.transport.local import LocalConnection
from dccli.transport.options import (
    ConnectOptions,
    Endpoint,
    load_ssh_config,
    parse_jump_spec,
    resolve_endpoint,
)


@dataclass
class _Slot:
    lock: threading.RLock
    conn: object | None = None


class ConnectionPool:
    def __init__(self, inventory, options: ConnectOptions | None = None,
                 hostkeys: HostKeyStore | None = None, identities=None) -> None:
        from dccli import paths
        from dccli.transport.ssh import KeyRing

        self.inventory = inventory
        self.options = options or ConnectOptions()
        if hostkeys is None:
            extra = list(self.options.extra_known_hosts)
            defaults = getattr(inventory, "defaults", None)
            if defaults is not None and defaults.known_hosts:
                extra.append(Path(os.path.expanduser(defaults.known_hosts)))
            if self.options.include_user_known_hosts:
                extra.append(Path(os.path.expanduser("~/.ssh/known_hosts")))
            hostkeys = HostKeyStore(paths.known_hosts_path(), extra)
        self.hostkeys = hostkeys
        self.keys = KeyRing(use_agent=self.options.use_agent)
        from dccli.transport.identities import IdentityMap

        # Keys switched per host by `dccli keys rotate` (transport/identities.py); none: inventory's only.
        self.identities = identities if identities is not None else IdentityMap.default()
        from dccli.transport.paramiko_import import import_paramiko

        import_paramiko(self.options.ssh_config_path)
        self._ssh_config = load_ssh_config(self.options.ssh_config_path)
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()

    def endpoint(self, host) -> Endpoint:
        return self.identities.apply(resolve_endpoint(host, self._ssh_config))

    def get(self, host):
        """The open connection to a host, opening it (and its jump chain) on first use."""
        if host.connection == "local":
            return LocalConnection(host.name)
        return self._get_endpoint(self.endpoint(host))

    def _slot(self, key: str) -> _Slot:
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(threading.RLock())
            return slot

    def _get_endpoint(self, endpoint: Endpoint, depth: int = 0):
        from dccli.transport.ssh import SSHConnection

        if depth > 8:
            raise TransportError(f"{endpoint.name}: jump host chain too long (a loop through ProxyJump?)")
        slot = self._slot(f"{endpoint.user}@{endpoint.address}:{endpoint.port}")
        # Re-entrant: a ProxyJump loop then fails on depth instead of deadlocking on its own slot.
        with slot.lock:  # hosts behind one bastion share the bastion's connection
            conn = slot.conn
            if conn is not None and conn.is_active():
                return conn
            via = None
            if endpoint.jump:
                # ProxyJump a,b,c (OpenSSH): reach c through b through a; c's connection carries ours.
                hops = [h.strip() for h in endpoint.jump.split(",") if h.strip()]
                last = self._jump_endpoint(hops[-1], endpoint)
                if len(hops) > 1:
                    last = dataclasses.replace(last, jump=",".join(hops[:-1]))
                via = self._get_endpoint(last, depth + 1)
            slot.conn = SSHConnection.open(endpoint, hostkeys=self.hostkeys, keys=self.keys,
                                           options=self.options, via=via)
            return slot.conn

    def jump_connection(self, endpoint: Endpoint):
        """The connection that carries connections to `endpoint`, or None when it is reached directly."""
        if not endpoint.jump:
            return None
        hops = [h.strip() for h in endpoint.jump.split(",") if h.strip()]
        last = self._jump_endpoint(hops[-1], endpoint)
        if len(hops) > 1:
            last = dataclasses.replace(last, jump=",".join(hops[:-1]))
        return self._get_endpoint(last, 1)

    def _jump_endpoint(self, spec: str, target: Endpoint) -> Endpoint:
        """A hop: an inventory host (with its own jump, if any) or an OpenSSH [user@]host[:port]."""
        try:
            return self.endpoint(self.inventory.host(spec))
        except KeyError:
            pass
        try:
            user, address, port = parse_jump_spec(spec, target.user)
        except ValueError:
            raise TransportError(f"{target.name}: bad jump host {spec!r}") from None
        return Endpoint(spec, address, port, user, target.identity_files, None)

    def close(self) -> None:
        from dccli.transport import early

        early.discard()  # connections started for hosts this command did not reach after all
        with self._slots_lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            if slot.conn is not None:
                slot.conn.close()

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
