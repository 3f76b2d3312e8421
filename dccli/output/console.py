"""The injectable I/O environment (httpie's idea): streams, TTY flags and colour policy in one value.

stdout carries data, stderr progress and diagnostics. Colour and live displays only on a TTY and
never when NO_COLOR is set, so cron and pipes get plain lines.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Env:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    no_color: bool = False

    @classmethod
    def from_process(cls) -> Env:
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            no_color="NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb",
        )

    @property
    def color_stdout(self) -> bool:
        return self.stdout_isatty and not self.no_color

    @property
    def color_stderr(self) -> bool:
        return self.stderr_isatty and not self.no_color

    @property
    def live(self) -> bool:
        """Progress bars and live displays: only for a person watching stderr."""
        return self.stderr_isatty

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str = "") -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def error(self, message: str) -> None:
        """One line, prefixed, on stderr: the only form in which user errors are shown."""
        self.err(f"dccli: error: {message}")

    def warn(self, message: str) -> None:
        self.err(f"dccli: warning: {message}")

    def stdout_console(self):  # -> rich.console.Console, imported lazily
        from rich.console import Console

        # Off a terminal rich assumes 80 columns; a pipe or file should get whole rows instead.
        width = None if self.stdout_isatty else 250
        return Console(file=self.stdout, force_terminal=self.color_stdout, no_color=not self.color_stdout,
                       highlight=False, width=width)

    def stderr_console(self):
        from rich.console import Console

        return Console(file=self.stderr, force_terminal=self.color_stderr, no_color=not self.color_stderr,
                       highlight=False, soft_wrap=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
