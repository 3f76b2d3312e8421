"""One exception tree and the stable exit codes (docs/cli.md documents them).

Every error a user can cause is a DccliError subclass carrying its exit code, so the CLI
maps failures to exit codes in one place and never shows a traceback for bad input.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # a command, task or check failed on some host
    USAGE = 2  # bad usage or bad input (inventory, playbook, arguments)
    UNREACHABLE = 3  # some hosts could not be reached
    AUTH = 4  # host key refused or authentication refused
    LOCKED = 5  # another dccli holds the lock for this operation
    INTERRUPTED = 130


class DccliError(Exception):
    """Base of every error dccli reports as one line."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(DccliError):
    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """Bad input file: names the file, line, column and key."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class NodeSetParseError(UsageError):
    """A node-set expression that cannot be parsed."""


class InventoryError(InputError):
    pass


class TransportError(DccliError):
    """The host could not be reached or the session broke."""

    exit_code = ExitCode.UNREACHABLE


class AuthError(TransportError):
    """Authentication refused (no usable key, or the key was rejected)."""

    exit_code = ExitCode.AUTH


class HostKeyError(AuthError):
    """The host presented an unknown or changed key; nothing ran there."""


class StateError(DccliError):
    pass


class LabError(DccliError):
    pass


class LockedError(DccliError):
    exit_code = ExitCode.LOCKED
