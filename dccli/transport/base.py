"""What every connection offers, SSH or local, and the values it returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

OutputCallback = Callable[[bytes], None]


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int | None  # None: no exit status (killed by a signal, channel closed)
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


class Connection(Protocol):
    name: str

    def exec(
        self,
        command: str,
        *,
        stdin: bytes | Iterable[bytes] | None = None,  # an iterable: parts sent as they come
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        timeout: float | None = None,
        keep_output: bool = True,
    ) -> ExecOutcome: ...

    def put_bytes(self, data: bytes, remote_path: str, mode: int = 0o600) -> None: ...

    def close(self) -> None: ...
