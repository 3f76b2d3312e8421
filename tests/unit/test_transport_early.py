"""transport/early.py: TCP connections started before paramiko loads, taken by the SSH connection."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from dccli.transport import early


@pytest.fixture
def server():
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener
    listener.close()
    early.discard()


def host(address: str, port: int, **extra: str) -> SimpleNamespace:
    return SimpleNamespace(**{"address": address, "port": port, "connection": "ssh", "jump": None, **extra})


def test_started_connection_is_taken_once(server: socket.socket) -> None:
    port = server.getsockname()[1]
    assert early.start([host("127.0.0.1", port), host("127.0.0.1", port)], None) == 1
    sock = early.take("127.0.0.1", port, 5.0)
    assert sock is not None and sock.getpeername() == ("127.0.0.1", port)
    assert sock.gettimeout() == 5.0
    accepted, _ = server.accept()
    sock.sendall(b"SSH-2.0-x\r\n")
    assert accepted.recv(100) == b"SSH-2.0-x\r\n"
    accepted.close()
    sock.close()
    assert early.take("127.0.0.1", port, 5.0) is None  # connect anew


def test_only_where_the_endpoint_is_certain(server: socket.socket, tmp_path: Path) -> None:
    port = server.getsockname()[1]
    assert early.start([host("node01", port)], None) == 0  # a name: DNS or ssh_config decide
    assert early.start([host("127.0.0.1", port, jump="bastion")], None) == 0
    assert (
        early.start([SimpleNamespace(address="127.0.0.1", port=port, connection="local", jump=None)], None)
        == 0
    )
    config = tmp_path / "config"
    config.write_text("Host *\n  ProxyJump bastion\n")
    assert early.start([host("127.0.0.1", port)], config) == 0  # could go elsewhere: not before it is read


def test_refused_or_stale_connections_are_not_used(server: socket.socket, monkeypatch) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()  # nobody listens there
    early.start([host("127.0.0.1", closed_port)], None)
    assert early.take("127.0.0.1", closed_port, 2.0) is None  # the normal connect reports the refusal
    port = server.getsockname()[1]
    early.start([host("127.0.0.1", port)], None)
    monkeypatch.setattr(early, "MAX_AGE_S", -1.0)  # older than sshd's login grace allows
    assert early.take("127.0.0.1", port, 2.0) is None


def test_discard_closes_what_nobody_took(server: socket.socket) -> None:
    port = server.getsockname()[1]
    early.start([host("127.0.0.1", port)], None)
    early.discard()
    accepted, _ = server.accept()
    accepted.settimeout(5)
    assert accepted.recv(10) == b""  # the client went away
    accepted.close()
    assert early.take("127.0.0.1", port, 1.0) is None
