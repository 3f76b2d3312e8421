"""SIMULATION speed: the replay cache of the simulated `nvidia-smi` and `dmesg` (lab hosts only).

Every lab host shares the control node's few cores, so a Python start per simulated tool call (15 ms of
CPU) was most of what `dccli health` cost a host. The Python simulator stores what it rendered for an
argument list here; the tool's /bin/sh launcher (install.SH_LAUNCHER) replays it with `cat` (or mawk, to put
the current time in the timestamps) while it is newer than every input of the render. Any change to the
simulated state (a fault, a reboot, a driver package) makes the entry older than that input, and the next
call renders again. Stdlib only: runs on the host with the system python3.

An entry is one file: a first line "RC STAMPED", then the output; STAMPED 1 means each STAMP placeholder
stands for the -q style timestamp of the moment of the call.
"""

from __future__ import annotations

import os

from . import model

REPLAY_DIR = "/run/dccli-gpusim/replay"  # /run: a tmpfs of the host's own, empty after every reboot
STAMP = "\x01STAMP\x01"
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._,=:-")
MAX_NAME = 200  # below NAME_MAX with room for the temporary name
# What a render reads: an entry is replayed only while it is newer than each of these (the directory
# catches files created or removed there, e.g. the driver packages' version file).
DEPS = {
    "nvidia-smi": (model.STATE_DIR, model.STATE_PATH, model.DRIVER_OVERRIDE_PATH),
    "dmesg": (model.STATE_DIR, model.KMSG_PATH, model.BOOT_DIR, model.BOOT_PATH),
}


def _root() -> str:
    return os.environ.get("DCCLI_GPUSIM_ROOT", "")


def entry_path(tool: str, argv: list[str]) -> str | None:
    """The entry for argv, as the launcher spells it ("<dir>/<tool>/<argc> <arg> <arg>..."), or None when an
    argument has characters the launcher does not accept in a file name."""
    if any(not arg or not SAFE.issuperset(arg) for arg in argv):
        return None
    name = " ".join([str(len(argv)), *argv])
    if len(name) > MAX_NAME:
        return None
    return f"{_root()}{REPLAY_DIR}/{tool}/{name}"


def snapshot(tool: str) -> tuple:
    """(inode, mtime, size) of each input of tool's render, None where missing."""
    out = []
    for path in DEPS[tool]:
        try:
            st = os.stat(_root() + path)
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def cacheable() -> bool:
    # Tests point the simulator at another root; a TZ of the caller's own changes rendered local times.
    return not _root() and "TZ" not in os.environ


def store(tool: str, argv: list[str], text: str, rc: int, stamp: str | None, before: tuple) -> None:
    """Keep text (stdout of a call that exited rc) for argv. `stamp`: the timestamp text the render put in
    for "now", replaced by STAMP. `before`: snapshot(tool) taken before the render read anything; if an
    input changed meanwhile the entry is removed again (it may describe either state)."""
    path = entry_path(tool, argv)
    if path is None or not cacheable():
        return
    stamped = bool(stamp) and stamp in text
    if stamped:
        text = text.replace(stamp, STAMP)
    directory = os.path.dirname(path)
    tmp = f"{directory}/.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, 0o755, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{rc} {int(stamped)}\n{text}")
        os.replace(tmp, path)
    except OSError:  # not root, /run full: no replay, same output
        _discard(tmp)
        return
    if snapshot(tool) != before:
        _discard(path)


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:  # gone already, or never written
        return
