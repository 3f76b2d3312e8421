"""Control-node side: seed a lab host's disk (overlay upper dir) with the GPU simulator, its state, and the
host's boot record. Only called while the host is NOT running (before its overlay is mounted)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import uuid
from pathlib import Path

from dccli.lab.host import mkdirs_like_lower

from . import klog, model, replay

PACKAGE_DIR = Path(__file__).resolve().parent
HOST_LIB = "usr/lib/dccli-gpusim"
PYTHON = "/usr/bin/python3"
LAUNCHERS = {
    # host path (relative): (module, function)
    "usr/bin/nvidia-smi": ("cli", "main"),
    "usr/local/bin/dmesg": ("logcli", "main_dmesg"),
    "usr/local/bin/journalctl": ("logcli", "main_journalctl"),
}
# Tools whose renders are replayed (replay.py): their public path gets SH_LAUNCHER, and the Python
# launcher moves to HOST_LIB/bin/<tool>.
REPLAYED = {"usr/bin/nvidia-smi": "nvidia-smi", "usr/local/bin/dmesg": "dmesg"}
SH_LAUNCHER = """#!/bin/sh
# SIMULATED by dccli lab (no GPU hardware): see docs/lab.md, section 'GPU simulation'.
# Replays the simulator's last render for the same arguments while it is newer than every input of that
# render (dccli/lab/gpusim/replay.py); otherwise the Python simulator renders (and stores) it.
if [ -z "${{DCCLI_GPUSIM_ROOT-}}" ] && [ -z "${{TZ+set}}" ]; then
  k="{replay_dir}/{tool}/$#"
  for a; do
    case $a in ''|*[!A-Za-z0-9._,=:-]*) k=; break ;; esac
    k="$k $a"
  done
  if [ -n "$k" ] && [ ${{#k}} -le {max_path} ] && [ -f "$k" ]{newer}; then
    {{
      read -r rc stamped
      if [ "$stamped" = 1 ]; then
        mawk 'BEGIN {{ ts = "\\001STAMP\\001" }} {{
          while ((i = index($0, ts)) > 0)
            $0 = substr($0, 1, i - 1) strftime("%a %b %d %H:%M:%S %Y") substr($0, i + length(ts))
          print
        }}'
      else
        cat
      fi
    }} < "$k" && exit "$rc"
  fi
fi
exec {python} -IS /{lib}/bin/{tool} "$@"
"""


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


def sh_launcher(tool: str) -> str:
    # dash's -nt is false when the input is missing; its directory is an input too, so a removal counts.
    newer = "".join(f' && {{ [ ! -e {dep} ] || [ "$k" -nt {dep} ]; }}' for dep in replay.DEPS[tool])
    return SH_LAUNCHER.format(
        replay_dir=replay.REPLAY_DIR,
        tool=tool,
        max_path=len(replay.REPLAY_DIR) + len(tool) + 2 + replay.MAX_NAME,
        newer=newer,
        python=PYTHON,
        lib=HOST_LIB,
    )


def seed_gpus(upper: Path, gpu_model: str, count: int, seed: str) -> None:
    """Install the simulator package, its launchers and a fresh state for `count` GPUs of `gpu_model`."""
    lib = mkdirs_like_lower(upper, HOST_LIB) / "gpusim"
    lib.mkdir(exist_ok=True)
    for source in PACKAGE_DIR.glob("*.py"):
        shutil.copyfile(source, lib / source.name)
    for relative, (module, function) in LAUNCHERS.items():
        tool = REPLAYED.get(relative)
        if tool:
            bin_dir = mkdirs_like_lower(upper, HOST_LIB + "/bin")
            _atomic_write(bin_dir / tool, launcher(module, function), 0o755)
        directory = mkdirs_like_lower(upper, str(Path(relative).parent))
        _atomic_write(
            directory / Path(relative).name,
            sh_launcher(tool) if tool else launcher(module, function),
            0o755,
        )
    state_dir = mkdirs_like_lower(upper, model.STATE_DIR.lstrip("/"))
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
    boot_dir = mkdirs_like_lower(upper, model.BOOT_DIR.lstrip("/"))
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
