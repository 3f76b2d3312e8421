"""Where labs are recorded: $DCCLI_HOME/labs/<name>/lab.json, plus a machine-wide claim per lab index.

Lab indexes (the L of 127.L.x.y) must be unique on the machine, not per DCCLI_HOME: tests run with a
temporary DCCLI_HOME next to a demo lab in the user's. So each index is claimed by a file
/run/dccli-lab/index-<L>.json naming the lab dir that owns it; a claim whose lab dir no longer records
that index is stale (its DCCLI_HOME was deleted) and is taken over.

Cheap to import: active_lab_inventory() runs on the default-inventory path of every command.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from dccli.lab.model import MAX_INDEX, LabInfo
from dccli.paths import labs_dir

LAB_JSON = "lab.json"


def run_dir() -> Path:
    # /run is a tmpfs on a booted system, which matches the lifetime of lab processes (they die on reboot).
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    return base / "dccli-lab"


def lab_dir(name: str) -> Path:
    return labs_dir() / name


def load(name: str) -> LabInfo:
    from dccli.errors import LabError

    info = try_load(lab_dir(name))
    if info is None:
        raise LabError(f"lab {name!r} not found under {labs_dir()}")
    return info


def try_load(directory: Path) -> LabInfo | None:
    try:
        data = json.loads((directory / LAB_JSON).read_text())
        return LabInfo.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def locked(name: str, what: str = "lab") -> Iterator[None]:
    """An exclusive flock on <lab dir>/<what>.lock: read-modify-writes of lab.json by concurrent reboots
    (the reboot watcher serves several hosts at once) must not lose each other's updates."""
    directory = lab_dir(name)
    fd = os.open(directory / f"{what}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def replace_host(name: str, host) -> LabInfo:
    """Record one host's new state (its new init after a reboot) without touching the others'."""
    import dataclasses

    with locked(name):
        current = load(name)
        updated = dataclasses.replace(current, hosts=tuple(host if h.name == host.name else h for h in current.hosts))
        save(updated)
    return updated


def save(info: LabInfo) -> None:
    """Atomic write: a reader (or a crash) never sees half a lab.json."""
    path = info.dir / LAB_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)


def list_labs() -> list[LabInfo]:
    root = labs_dir()
    if not root.is_dir():
        return []
    labs = []
    for entry in sorted(root.iterdir()):
        info = try_load(entry)
        if info is not None:
            labs.append(info)
    return labs


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Serialises index allocation between concurrent `lab up`s, whatever their DCCLI_HOME."""
    directory = run_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _claim_path(index: int) -> Path:
    return run_dir() / f"index-{index}.json"


def _claim_owner(index: int) -> Path | None:
    """The lab dir holding index, or None if the index is free or its claim is stale."""
    try:
        owner = Path(json.loads(_claim_path(index).read_text())["dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    info = try_load(owner)
    return owner if info is not None and info.index == index else None


def claim_index(directory: Path, is_free: Callable[[int], bool]) -> int:
    """Lowest index that no live lab claims and whose addresses are bindable; caller holds machine_lock()."""
    from dccli.errors import LabError

    for index in range(1, MAX_INDEX + 1):
        owner = _claim_owner(index)
        if owner is not None and owner != directory:
            continue
        if not is_free(index):
            continue
        _claim_path(index).write_text(json.dumps({"dir": str(directory)}) + "\n")
        return index
    raise LabError(f"no free lab index (1-{MAX_INDEX}): too many labs on this machine")


def release_index(index: int, directory: Path) -> None:
    """Drop the claim on index if this lab dir holds it (another lab may have taken over a stale one)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if json.loads(_claim_path(index).read_text())["dir"] == str(directory):
            _claim_path(index).unlink()


def _running(info: LabInfo) -> bool:
    from dccli.lab.procs import alive

    return info.state == "up" and any(alive(h.init_pid, h.init_start) for h in info.hosts)


def resolve_name(name: str | None) -> str:
    """--name, or when it is not given: the "default" lab if it is up, else the only lab that is up (as
    commands pick the lab's inventory). LabError when that is ambiguous or nothing is up."""
    from dccli.errors import LabError

    if name is not None:
        return name
    running = [info.name for info in list_labs() if _running(info)]
    if "default" in running or (not running and (labs_dir() / "default").is_dir()):
        return "default"
    if len(running) == 1:
        return running[0]
    if not running:
        raise LabError("no lab is up (start one with `dccli lab up`, or pass --name)")
    raise LabError(f"several labs are up ({', '.join(running)}): pass --name")


def active_lab_inventory() -> Path | None:
    """The inventory of the "default" lab if it is up, else of the only lab that is up, else None."""
    running = [info for info in list_labs() if _running(info)]
    for info in running:
        if info.name == "default":
            return info.inventory_path
    return running[0].inventory_path if len(running) == 1 else None
