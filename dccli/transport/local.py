"""The control node itself (connection: local): same interface as SSH, no SSH involved."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from collections.abc import Iterable

from dccli.transport.base import ExecOutcome, OutputCallback


class LocalConnection:
    def __init__(self, name: str = "localhost") -> None:
        self.name = name

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
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so a timeout can kill the whole tree, like sshd's session would
        )
        if stdin and proc.stdin is not None:
            try:
                for chunk in (stdin,) if isinstance(stdin, bytes) else stdin:  # parts: sent as they come
                    proc.stdin.write(chunk)
                    proc.stdin.flush()
                proc.stdin.close()
            except BrokenPipeError:  # the command exited without reading (e.g. sh: python3: not found)
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            except BaseException:  # the caller's stdin parts failed: stop the command, as SSH closes it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
                raise
        out: list[bytes] = []
        err: list[bytes] = []
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        sel.register(proc.stdout, selectors.EVENT_READ, (out, on_stdout))
        sel.register(proc.stderr, selectors.EVENT_READ, (err, on_stderr))
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                timed_out = True
                break
            for key, _ in sel.select(wait):
                data = os.read(key.fd, 32768)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                sink, callback = key.data
                if keep_output:
                    sink.append(data)
                if callback:
                    callback(data)
        sel.close()
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
        code = proc.wait()
        return ExecOutcome(
            exit_code=None if timed_out or code < 0 else code,
            stdout=b"".join(out),
            stderr=b"".join(err),
            timed_out=timed_out,
        )

    def put_bytes(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        tmp = f"{remote_path}.dccli-tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, remote_path)

    def close(self) -> None:
        pass
