"""One interactive helper session per host per play: write one task, read its result, write the next.

The program is the remote helper's core (dccli/remote/helper.py: handler, emit, run...) followed by the
playbook modules of dccli/playbook/remote/ and a call to pb_main(), which reads JSON task lines until
stdin closes. The SSH channel's stdin stays open for the whole play, so templating on the control node can
use the results of earlier tasks (register, when, loops) without a new session per task.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import zlib
from functools import lru_cache
from importlib import resources
from typing import Any

from dccli.errors import TransportError

# Which host-side file holds each module; a play's session carries only the files its tasks need
# (less for each host's python3 to decompress and compile). core.py always goes first.
_FILES = ("core.py", "files.py", "lines.py", "commands.py", "packages.py", "fetch.py")
_MODULE_FILE = {
    "file": "files.py", "copy": "files.py", "template": "files.py", "stat": "files.py",
    "lineinfile": "lines.py", "blockinfile": "lines.py",
    "command": "commands.py", "shell": "commands.py", "wait_for": "commands.py", "sysctl": "commands.py",
    "service": "commands.py", "systemd": "commands.py", "systemd_service": "commands.py", "reboot": "commands.py",
    "apt": "packages.py", "dpkg_selections": "packages.py", "apt_repository": "packages.py",
    "deb822_repository": "packages.py",
    "pip": "fetch.py", "get_url": "fetch.py", "unarchive": "fetch.py",
}  # fmt: skip


def files_for(modules) -> tuple[str, ...]:
    """The host-side files a set of module names needs; unknown names (control-side actions) need none."""
    wanted = {"core.py"} | {_MODULE_FILE[m] for m in modules if m in _MODULE_FILE}
    if "copy" in modules:
        wanted.add("files.py")  # a directory copy also creates directories with `file`
    return tuple(f for f in _FILES if f in wanted)


@lru_cache(maxsize=16)
def program(files: tuple[str, ...] = _FILES) -> tuple[str, bytes]:
    core = resources.files("dccli.remote").joinpath("helper.py").read_bytes()
    root = resources.files("dccli.playbook.remote")
    parts = [core]
    parts += [b"\n# --- playbook/" + n.encode() + b"\n" + root.joinpath(n).read_bytes() for n in files]
    parts.append(b"\npb_main()\n")
    packed = zlib.compress(b"".join(parts), 9)
    command = (
        "python3 -c 'import sys,zlib;"
        f'exec(compile(zlib.decompress(sys.stdin.buffer.read({len(packed)})),"dccli-playbook","exec"))\''
    )
    return command, packed


class Session:
    """A running playbook helper on one host. call() is one task's round trip."""

    def __init__(
        self, conn, become: bool = False, become_user: str = "root", files: tuple[str, ...] = _FILES
    ) -> None:
        self.name = conn.name
        command, packed = program(files)
        if become:
            command = f"sudo -n -H -u {become_user} -- {command}"
        self._buf = bytearray()
        self._seq = 0
        self._proc = None
        self._chan = None
        self.hello: dict[str, Any] = {}
        transport = getattr(conn, "transport", None)
        try:
            if transport is not None:
                self._chan = transport.open_session(timeout=10)
                self._chan.exec_command(command)
                self._chan.sendall(packed)
            else:  # connection: local
                self._proc = subprocess.Popen(
                    ["/bin/sh", "-c", command],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                assert self._proc.stdin is not None
                try:
                    self._proc.stdin.write(packed)
                    self._proc.stdin.flush()
                except BrokenPipeError:
                    pass  # the shell already exited (no python3?): reading the hello below says why
        except Exception as exc:  # paramiko.SSHException, EOFError, OSError
            raise TransportError(
                f"{self.name}: could not start the playbook session: {exc or type(exc).__name__}"
            ) from None
        try:
            self.hello = self._read_event(timeout=60)
        except TransportError:
            if self._exit_status() == 127:  # the host is reachable but has no python3: a failure, not exit 3
                from dccli.remote.session import HelperError

                raise HelperError(
                    f"{self.name}: the playbook session did not start (needs python3)"
                ) from None
            raise
        if self.hello.get("ev") != "hello":
            raise TransportError(f"{self.name}: playbook session did not start: {self.hello}")

    def call(
        self,
        kind: str,
        args: dict,
        *,
        check: bool = False,
        diff: bool = False,
        env: dict | None = None,
        timeout: float | None = 3600,
    ) -> dict:
        """Run one module on the host; returns its result dict. TransportError if the host went away."""
        self._seq += 1
        line = (
            json.dumps(
                {"id": self._seq, "kind": kind, "args": args, "check": check, "diff": diff, "env": env or {}},
                separators=(",", ":"),
            ).encode()
            + b"\n"
        )
        self._write(line)
        while True:
            event = self._read_event(timeout)
            if event.get("ev") == "result" and event.get("id") == self._seq:
                if not event.get("ok"):
                    return {"failed": True, "changed": False, "msg": event.get("error")}
                from dccli.remote.session import event_data

                return event_data(event) or {}

    def close(self) -> None:
        with contextlib.suppress(TransportError):
            self._write(b'{"kind":"end"}\n')
        if self._chan is not None:
            self._chan.close()
        if self._proc is not None:
            try:
                self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()

    # -- plumbing ---------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            if self._chan is not None:
                self._chan.sendall(data)
            else:
                self._proc.stdin.write(data)  # type: ignore[union-attr]
                self._proc.stdin.flush()  # type: ignore[union-attr]
        except Exception as exc:
            raise TransportError(f"{self.name}: connection lost: {exc or type(exc).__name__}") from None

    def _read_event(self, timeout: float | None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a login script's noise
                if isinstance(event, dict):
                    return event
                continue
            if deadline is not None and time.monotonic() > deadline:
                raise TransportError(f"{self.name}: no answer from the host within {timeout:g}s")
            data = self._recv(deadline)
            if data is None:
                continue  # waited a while: the deadline check above decides
            if not data:
                raise TransportError(f"{self.name}: connection lost (session closed{self._stderr_tail()})")
            self._buf.extend(data)

    def _recv(self, deadline: float | None) -> bytes | None:
        if self._chan is not None:
            while True:
                wait = 2.0 if deadline is None else max(0.01, min(2.0, deadline - time.monotonic()))
                self._chan.settimeout(wait)
                try:
                    return self._chan.recv(65536)
                except TimeoutError:
                    if not self._chan.get_transport().is_active():
                        return b""
                    if deadline is not None and time.monotonic() > deadline:
                        return None
        return os.read(self._proc.stdout.fileno(), 65536)  # type: ignore[union-attr]

    def _exit_status(self) -> int | None:
        try:
            if self._chan is not None:
                self._chan.status_event.wait(2)  # EOF can arrive a moment before the exit status
                return self._chan.recv_exit_status() if self._chan.exit_status_ready() else None
            return self._proc.wait(timeout=1) if self._proc is not None else None
        except Exception:
            return None

    def _stderr_tail(self) -> str:
        try:
            if self._chan is not None and self._chan.recv_stderr_ready():
                text = self._chan.recv_stderr(4096).decode("utf-8", "replace").strip()
            elif self._proc is not None:
                self._proc.wait(timeout=1)
                text = self._proc.stderr.read().decode("utf-8", "replace").strip()  # type: ignore[union-attr]
            else:
                text = ""
        except Exception:
            text = ""
        return f": {text.splitlines()[-1]}" if text else ""
