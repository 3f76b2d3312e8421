"""One paramiko connection to one host: strict host keys, key auth, keepalive, streamed exec, SFTP.

We drive paramiko.Transport directly rather than SSHClient: SSHClient's missing-host-key policies
invite AutoAddPolicy, and we want our own timeouts on every phase and a jump channel as the socket.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterable

from dccli.errors import AuthError, HostKeyError, TransportError
from dccli.transport.base import ExecOutcome, OutputCallback
from dccli.transport.hostkeys import HostKeyStore, OfferedKey
from dccli.transport.options import ConnectOptions, Endpoint

_READ_SIZE = 32768
# After exit-status, how long to wait for the output's EOF (see exec) before giving up on the rest.
EOF_GRACE_S = 10.0


class SSHConnection:
    def __init__(self, endpoint: Endpoint, transport) -> None:
        self.name = endpoint.name
        self.endpoint = endpoint
        self._transport = transport
        self._sftp = None

    # -- connecting ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        endpoint: Endpoint,
        *,
        hostkeys: HostKeyStore,
        keys: KeyRing,
        options: ConnectOptions,
        via: SSHConnection | None = None,
    ) -> SSHConnection:
        import paramiko

        label = endpoint.name
        sock = _open_socket(endpoint, options, via)
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = options.connect_timeout
            transport.handshake_timeout = options.connect_timeout
            transport.auth_timeout = options.auth_timeout
            # Ask for a host key type we can verify, so a host with an rsa-only entry is not "changed".
            known = hostkeys.known_types(endpoint.known_hosts_names)
            if known:
                sec = transport.get_security_options()
                preferred = [t for t in known if t in sec.key_types]
                sec.key_types = tuple(preferred + [t for t in sec.key_types if t not in preferred])
            server_key = _handshake(transport, label, options.connect_timeout)
            hostkeys.verify(label, endpoint.known_hosts_names,
                            OfferedKey(server_key.get_name(), server_key.asbytes()))
            _authenticate(transport, endpoint, keys, label)
            transport.set_keepalive(options.keepalive_s)
        except BaseException:
            transport.close()
            raise
        return cls(endpoint, transport)

    # -- using --------------------------------------------------------------------------------
    @property
    def transport(self):
        return self._transport

    def is_active(self) -> bool:
        return self._transport.is_active()

    def exec(
        self,
        command: str,
        *,
        stdin: bytes | Iterable[bytes] | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        timeout: float | None = None,
        keep_output: bool = True,
    ) -> ExecOutcome:
        import paramiko

        try:
            chan = self._transport.open_session(timeout=10)
            chan.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"{self.name}: could not start the command: {_reason(exc)}") from None
        try:
            # stdin in parts (an iterable): the command starts while the caller still works out the rest.
            for chunk in (stdin,) if isinstance(stdin, bytes) else stdin or ():
                if chunk:
                    chan.sendall(chunk)
            chan.shutdown_write()
        except (paramiko.SSHException, EOFError, OSError):
            pass  # the command stopped reading (it exited): its output and exit status below say why
        except BaseException:  # the caller's stdin parts failed: the command gets EOF with the channel
            chan.close()
            raise
        out: list[bytes] = []
        err: list[bytes] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False
        status_at: float | None = None
        try:
            while True:
                got = _drain(chan.recv_ready, chan.recv, out if keep_output else None, on_stdout)
                got = _drain(chan.recv_stderr_ready, chan.recv_stderr, err if keep_output else None, on_stderr) or got
                if chan.exit_status_ready():
                    # sshd sends exit-status as soon as the command exits, while the end of its output may
                    # still sit in the pipe behind it: done only at EOF. A background process that keeps the
                    # output open (`cmd &` without a redirect) would hold EOF off for ever: give it a grace.
                    if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
                        break
                    if status_at is None:
                        status_at = time.monotonic()
                    elif not got and time.monotonic() - status_at > EOF_GRACE_S:
                        break
                if chan.closed and not got:
                    break
                if got:
                    continue
                wait = 1.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        timed_out = True
                        break
                if not self._transport.is_active():
                    raise TransportError(f"{self.name}: connection lost")
                if chan.eof_received:
                    # After EOF paramiko keeps the channel's pipe readable forever: select() would spin
                    # until exit-status arrives, burning the CPU every other host needs. Wait on it instead.
                    chan.status_event.wait(wait)
                else:
                    select.select([chan], [], [], wait)
            code = None if timed_out else chan.recv_exit_status()
        finally:
            chan.close()
        return ExecOutcome(
            exit_code=None if code is None or code < 0 else code,
            stdout=b"".join(out),
            stderr=b"".join(err),
            timed_out=timed_out,
        )

    def sftp(self):
        if self._sftp is None:
            import paramiko

            self._sftp = paramiko.SFTPClient.from_transport(self._transport)
        return self._sftp

    def put_bytes(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write a file through SFTP: temp name, chmod before content lands, rename into place."""
        sftp = self.sftp()
        tmp = f"{remote_path}.dccli-tmp"
        with sftp.open(tmp, "wb") as handle:
            sftp.chmod(tmp, mode)
            handle.write(data)
        sftp.posix_rename(tmp, remote_path)

    def close(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):  # best effort: the transport goes next anyway
                self._sftp.close()
        self._transport.close()


def _drain(ready, recv, sink: list[bytes] | None, callback: OutputCallback | None) -> bool:
    """Read one stream of a channel until nothing is buffered; True if anything came."""
    got = False
    while ready():
        data = recv(_READ_SIZE)
        if not data:
            break
        got = True
        if sink is not None:
            sink.append(data)
        if callback:
            callback(data)
    return got


def _handshake(transport, label: str, timeout: float):
    """Banner + key exchange within `timeout`; returns the server's host key.

    paramiko's start_client returns quietly when its timeout expires mid-handshake (the transport
    thread is still waiting for a banner), so the key's presence is what proves the handshake ended.
    """
    import paramiko

    try:
        transport.start_client(timeout=timeout)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise TransportError(f"{label}: SSH handshake failed: {_reason(exc)}") from None
    if not transport.is_active() or transport.host_key is None:
        raise TransportError(f"{label}: SSH handshake timed out after {timeout:g}s (no banner or key exchange)")
    return transport.get_remote_server_key()


class KeyRing:
    """Private keys for one command: identity files loaded once, agent keys fetched once."""

    def __init__(self, use_agent: bool = True) -> None:
        import threading

        self._use_agent = use_agent
        self._files: dict[str, object] = {}
        self._file_errors: dict[str, str] = {}
        self._agent_keys: list | None = None
        self._lock = threading.Lock()
        # The agent keys share one agent socket: two hosts signing through it at once interleave their
        # requests and both wait forever (seen as "Authentication timeout"). One signature at a time.
        self.agent_lock = threading.Lock()

    def keys_for(self, identity_files: tuple[str, ...]) -> list[tuple[str, object]]:
        import paramiko

        found: list[tuple[str, object]] = []
        with self._lock:
            for path in identity_files:
                if path not in self._files and path not in self._file_errors:
                    try:
                        self._files[path] = paramiko.PKey.from_path(path)
                    except FileNotFoundError:
                        self._file_errors[path] = "no such file"
                    except (paramiko.SSHException, OSError, ValueError) as exc:
                        self._file_errors[path] = _reason(exc)
                if path in self._files:
                    found.append((path, self._files[path]))
            if self._use_agent and self._agent_keys is None:
                self._agent_keys = []
                import os

                if os.environ.get("SSH_AUTH_SOCK"):
                    try:
                        self._agent_keys = list(paramiko.Agent().get_keys())
                    except paramiko.SSHException:
                        self._agent_keys = []
            for key in self._agent_keys or []:
                found.append(("agent", key))
        return found

    def errors_for(self, identity_files: tuple[str, ...]) -> list[str]:
        return [f"{p}: {self._file_errors[p]}" for p in identity_files if p in self._file_errors]


def _open_socket(endpoint: Endpoint, options: ConnectOptions, via: SSHConnection | None):
    label = endpoint.name
    if via is not None:
        import paramiko

        try:
            return via.transport.open_channel(
                "direct-tcpip", (endpoint.address, endpoint.port), ("127.0.0.1", 0),
                timeout=options.connect_timeout,
            )
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"{label}: jump host {via.name} could not reach "
                                 f"{endpoint.address}:{endpoint.port}: {_reason(exc)}") from None
    from dccli.transport import early

    sock = early.take(endpoint.address, endpoint.port, options.connect_timeout)  # started before paramiko
    try:
        if sock is None:
            sock = socket.create_connection((endpoint.address, endpoint.port), timeout=options.connect_timeout)
    except TimeoutError:
        raise TransportError(f"{label}: connect to {endpoint.address}:{endpoint.port} timed out "
                             f"after {options.connect_timeout:g}s") from None
    except OSError as exc:
        raise TransportError(f"{label}: connect to {endpoint.address}:{endpoint.port} failed: "
                             f"{exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _QuickAckSocket(sock) if hasattr(socket, "TCP_QUICKACK") else sock


class _QuickAckSocket:
    """A TCP socket that acknowledges what it read at once (Linux TCP_QUICKACK after every recv).

    Why: right after authentication OpenSSH's sshd sends a global request that wants no answer
    (hostkeys-00@openssh.com). Our kernel delays its ACK (40 ms: nothing of ours to piggyback it on), and
    sshd's Nagle holds its next small packet, the confirmation of our first channel, until that ACK came:
    every command's first session on every host waited 40 ms (measured: open_session 43 ms right after
    auth, 0.6 ms 100 ms later or with this). The kernel resets quick-ack mode by itself, hence every recv.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def _authenticate(transport, endpoint: Endpoint, keys: KeyRing, label: str) -> None:
    import paramiko

    candidates = keys.keys_for(endpoint.identity_files)
    if not candidates:
        problems = "; ".join(keys.errors_for(endpoint.identity_files)) or "no identity file and no agent key"
        raise AuthError(f"{label}: no usable private key ({problems})")
    last = ""
    for source, key in candidates:
        try:
            if source == "agent":
                with keys.agent_lock:
                    remaining = transport.auth_publickey(endpoint.user, key)
            else:
                remaining = transport.auth_publickey(endpoint.user, key)
        except paramiko.AuthenticationException as exc:
            last = f"{source}: {_reason(exc)}"
            continue
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"{label}: connection lost during authentication: {_reason(exc)}") from None
        if not remaining:
            return
        last = f"{source}: server wants more methods {remaining}"
    raise AuthError(f"{label}: authentication as {endpoint.user} refused ({last})")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


__all__ = ["HostKeyError", "KeyRing", "SSHConnection"]
