"""Where dccli keeps its files. Pure lookups: nothing is created at import time."""

from __future__ import annotations

import os
from pathlib import Path


def dccli_home() -> Path:
    """$DCCLI_HOME, else ~/.local/state/dccli (XDG state)."""
    env = os.environ.get("DCCLI_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "dccli"


def ensure_home() -> Path:
    home = dccli_home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def known_hosts_path() -> Path:
    return dccli_home() / "known_hosts"


def state_db_path() -> Path:
    return dccli_home() / "state.db"


def labs_dir() -> Path:
    return dccli_home() / "labs"
