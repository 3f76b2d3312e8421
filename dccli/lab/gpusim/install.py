"""Control-node side: seed a lab host's disk (overlay upper dir) with the GPU simulator, its state, and the
host's boot record. Only called while the host is NOT running (before its overlay is mounted)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import time
import uuid
from pathlib import Path

from . import klog, model

PACKAGE_DIR = Path(__file__).resolve().parent
HOST_LIB = "usr/lib/dccli-gpusim"
PYTHON = "/usr/bin/python3"
LAUNCHERS = {
    # host path (relative): (module, function)
    "usr/bin/nvidia-smi": ("cli", "main"),
    "usr/local/bin/dmesg": ("logcli", "main_dmesg"),
    "usr/local/bin/journalctl": ("logcli", "main_journalctl"),
}


def _mkdirs(upper: Path, relative: str) -> Path:
    """upper/relative, each new level with the mode and owner of the same dir on "/" (the upper's attributes
    win in the merged view), or 0755 root where "/" has none."""
    current, lower = upper, Path("/")
    for part in Path(relative).parts:
        current, lower = current / part, lower / part
        if current.is_dir():
            continue
        current.mkdir()
        try:
            st = lower.stat()
            os.chmod(current, stat.S_IMODE(st.st_mode))
            os.chown(current, st.st_uid, st.st_gid)
        except FileNotFoundError:
            os.chmod(current, 0o755)
    return current


def _atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def launcher(module: str, function: str) -> str:
    # -I: ignore PYTHON* variables and user site; -S: no site import (faster start). One flag word: the
    # kernel passes everything after the interpreter as a single argument.
    return (
        f"#!{PYTHON} -IS\n"
        "# SIMULATED by dccli lab (no GPU hardware): see docs/lab.md, section 'GPU simulation'.\n"
        "import sys\n"
        f"sys.path.insert(0, {'/' + HOST_LIB!r})\n"
        f"from gpusim.{module} import {function}\n"
        f"sys.exit({function}())\n"
    )


def seed_gpus(upper: Path, gpu_model: str, count: int, seed: str) -> None:
    """Install the simulator package, its launchers and a fresh state for `count` GPUs of `gpu_model`."""
    lib = _mkdirs(upper, HOST_LIB) / "gpusim"
    lib.mkdir(exist_ok=True)
    for source in PACKAGE_DIR.glob("*.py"):
        shutil.copyfile(source, lib / source.name)
    for relative, (module, function) in LAUNCHERS.items():
        directory = _mkdirs(upper, str(Path(relative).parent))
        _atomic_write(directory / Path(relative).name, launcher(module, function), 0o755)
    state_dir = _mkdirs(upper, model.STATE_DIR.lstrip("/"))
    _atomic_write(state_dir / "state.json", model.dumps(model.new_state(gpu_model, count, seed)))


def has_gpus(upper: Path) -> bool:
    return (upper / model.STATE_PATH.lstrip("/")).is_file()


def read_state(upper: Path) -> dict:
    path = upper / model.STATE_PATH.lstrip("/")
    return model.loads(path.read_text(), str(path))


def write_state(upper: Path, state: dict) -> None:
    _atomic_write(upper / model.STATE_PATH.lstrip("/"), model.dumps(state))


def driver_version(upper: Path, state: dict) -> str:
    try:
        override = (upper / model.DRIVER_OVERRIDE_PATH.lstrip("/")).read_text().strip()
    except OSError:
        override = ""
    return override or state["driver_version"]


def on_boot(upper: Path) -> dict:
    """A (re)starting host: new boot id and boot time; a GPU host's kernel log starts over with the
    driver's load lines (the ring buffer does not survive a reboot). Returns the boot record."""
    boot_dir = _mkdirs(upper, model.BOOT_DIR.lstrip("/"))
    record = {"boot_id": str(uuid.uuid4()), "boot_time": time.time(), "boot_monotonic": time.monotonic()}
    _atomic_write(boot_dir / "boot.json", json.dumps(record) + "\n")
    _atomic_write(boot_dir / "boot_id", record["boot_id"] + "\n")
    if has_gpus(upper):
        try:
            driver = driver_version(upper, read_state(upper))
        except (OSError, model.StateError):
            driver = model.DEFAULT_DRIVER
        lines = [
            klog.format_kmsg(900 + i, klog.Record(level, 40_000 + 1_000 * i, message))
            for i, (level, message) in enumerate(klog.driver_load_messages(driver))
        ]
        _atomic_write(upper / model.KMSG_PATH.lstrip("/"), "".join(lines))
    return record
