"""dccli itself as a subprocess, the way an operator runs it (shared by the integration tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def dccli(
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    home: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """`python -m dccli ARGS`: text output captured, no colour, no stdin, a timeout so a hang fails the test.
    env: the whole environment (default: this one with NO_COLOR=1); home: DCCLI_HOME on top of it."""
    environ = dict(env) if env is not None else dict(os.environ, NO_COLOR="1")
    if home is not None:
        environ["DCCLI_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "dccli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
