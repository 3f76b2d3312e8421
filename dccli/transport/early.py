"""TCP connections started before paramiko is imported, so sshd's per-connection start-up overlaps ours.

OpenSSH's sshd forks and re-executes itself for every connection (`sshd -R`: the binary, its config, its
host keys) before it sends its banner: ~20 ms on the lab's hosts, all of it on the connection's critical
path. dccli itself spends ~30 ms importing paramiko before it can connect at all. A command that knows the
hosts it will reach first calls `start(hosts)`: a non-blocking connect() to each sshd, nothing sent. The
SSH connection (ssh._open_socket) then takes the socket already connected, the banner often waiting in
it; the pool closes those left unused.

Only where the endpoint is certain before ~/.ssh/config could be read (that needs paramiko): an IP-literal
address (no DNS lookup on the way), no jump host, and no ssh_config file at all (it could name another
HostName or Port, or a ProxyJump). And only for hosts contacted at once: sshd drops a connection that
has not authenticated within its LoginGraceTime (120 s by default), so a socket older than MAX_AGE_S is
not used.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

MAX_AGE_S = 60.0

_pending: dict[tuple[str, int], tuple[socket.socket, float]] = {}
_lock = threading.Lock()


def start(hosts: Iterable, ssh_config_path: Path | None) -> int:
    """Begin connecting to each host's sshd (inventory Host values); returns how many were started."""
    if ssh_config_path is not None and ssh_config_path.exists():
        return 0
    started = 0
    for host in hosts:
        if host.connection == "local" or host.jump:
            continue
        try:
            ip = ipaddress.ip_address(host.address)
        except ValueError:
            continue
        key = (host.address, host.port)
        with _lock:
            if key in _pending:
                continue
        sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if sock.connect_ex(key) not in (0, errno.EINPROGRESS):
            sock.close()  # refused at once: the normal connect reports it, with its own message
            continue
        with _lock:
            _pending[key] = (sock, time.monotonic())
        started += 1
    return started


def take(address: str, port: int, timeout: float) -> socket.socket | None:
    """The connected socket started for address:port (blocking, `timeout` set), or None: connect anew."""
    with _lock:
        entry = _pending.pop((address, port), None)
    if entry is None:
        return None
    sock, since = entry
    try:
        if time.monotonic() - since > MAX_AGE_S:
            raise OSError(errno.ETIMEDOUT, "too old")
        _, writable, _ = select.select([], [sock], [], timeout)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if writable else errno.ETIMEDOUT
        if error:
            raise OSError(error, os.strerror(error))
    except OSError:
        sock.close()
        return None
    sock.setblocking(True)
    sock.settimeout(timeout)
    return sock


def discard() -> None:
    """Close the sockets nobody took (sshd sees the client go away before authenticating)."""
    with _lock:
        entries = list(_pending.values())
        _pending.clear()
    for sock, _ in entries:
        sock.close()
