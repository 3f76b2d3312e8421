"""`dccli hosts trust`: fetch each host's key, show its fingerprint, record it. Runs nothing on the host."""

from __future__ import annotations

from dataclasses import dataclass

from dccli.errors import HostKeyError
from dccli.executor import AUTH, OK, fan_out
from dccli.transport.hostkeys import OfferedKey, Verdict


@dataclass(frozen=True)
class TrustResult:
    host: str
    key_type: str
    fingerprint: str
    action: str  # known | added | replaced | changed

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "key_type": self.key_type, "fingerprint": self.fingerprint, "action": self.action}


def fetch_key(endpoint, options, via=None) -> OfferedKey:
    """Key exchange only, then close: we learn the key without authenticating or running anything."""
    import paramiko

    from dccli.transport.ssh import _handshake, _open_socket

    sock = _open_socket(endpoint, options, via)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = options.connect_timeout
        transport.handshake_timeout = options.connect_timeout
        key = _handshake(transport, endpoint.name, options.connect_timeout)
        return OfferedKey(key.get_name(), key.asbytes())
    finally:
        transport.close()


def trust(hosts: list, pool, *, forks: int = 64, replace: bool = False, on_event=None):
    store = pool.hostkeys

    def work(host) -> tuple[str, TrustResult]:
        endpoint = pool.endpoint(host)
        via = pool.jump_connection(endpoint)
        offered = fetch_key(endpoint, pool.options, via)
        names = endpoint.known_hosts_names
        verdict = store.check(names, offered)
        if verdict is Verdict.KNOWN:
            return OK, TrustResult(host.name, offered.key_type, offered.fingerprint, "known")
        if verdict is Verdict.CHANGED and not replace:
            raise HostKeyError(f"{host.name}: host key CHANGED to {offered.key_type} {offered.fingerprint}; "
                               "not recorded (use --replace after checking the host was reinstalled)")
        action = "added"
        if verdict is Verdict.CHANGED:
            store.forget(names)
            action = "replaced"
        store.record(names, offered)
        return OK, TrustResult(host.name, offered.key_type, offered.fingerprint, action)

    return fan_out(hosts, work, forks=forks, on_event=on_event)


__all__ = ["AUTH", "TrustResult", "fetch_key", "trust"]
