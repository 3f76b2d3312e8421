"""Import paramiko without invoke when we can: it costs ~25 ms per command and paramiko needs it
only for `Match exec` in ssh_config."""

from __future__ import annotations

import re
import sys
from pathlib import Path

_MATCH_EXEC = re.compile(r"^\s*match\b.*\bexec\b", re.IGNORECASE | re.MULTILINE)


def import_paramiko(ssh_config: Path | None = None):
    if "paramiko" not in sys.modules and "invoke" not in sys.modules and not _uses_match_exec(ssh_config):
        sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` raise ImportError
        try:
            import paramiko
        finally:
            del sys.modules["invoke"]  # anything else may still import invoke normally
    import logging

    import paramiko

    # paramiko logs its transport threads' failures; we report each failure once, as a value.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    return paramiko


def _uses_match_exec(path: Path | None) -> bool:
    try:
        return path is not None and bool(_MATCH_EXEC.search(path.read_text(errors="replace")))
    except OSError:
        return False
