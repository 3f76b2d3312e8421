"""Bring a lab up, report on it, tear it down: lab_up, lab_down, lab_status (plus LabInfo, LabHost).

The per-host operations (host_exec, sshd_stop, sshd_start, regenerate_host_keys) live in dccli.lab.host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dccli.errors import LabError, UsageError
from dccli.lab import host as hostmod
from dccli.lab import inventory, procs, registry, sshkeys
from dccli.lab.model import (
    MAX_HOSTS,
    NAME_RE,
    HostStatus,
    LabHost,
    LabInfo,
    LabStatus,
    host_address,
    host_name,
)
from dccli.paths import ensure_home

__all__ = ["LabHost", "LabInfo", "LabStatus", "lab_down", "lab_status", "lab_up"]

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _workers(count: int) -> int:
    # Key generation and interpreter start-up are CPU-bound: a few more workers than cores keeps them busy.
    return max(1, min(count, 4 * (os.cpu_count() or 2)))


def _validate(name: str, hosts: int, port: int, directory: Path) -> None:
    if not NAME_RE.match(name):
        raise LabError(f"bad lab name {name!r}: letters, digits, '.', '_' and '-', up to 40 characters")
    if not 1 <= hosts <= MAX_HOSTS:
        raise LabError(f"--hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
    if not 1 <= port <= 65535:
        raise LabError(f"bad port {port}")
    if any(c in str(directory) for c in ",:\\"):
        # overlayfs mount options cannot carry these characters in upperdir/workdir paths.
        raise LabError(f"the lab directory {directory} contains ',', ':' or '\\': set DCCLI_HOME elsewhere")


def _plan_hosts(index: int, count: int, port: int, disk: Path) -> tuple[LabHost, ...]:
    hosts = []
    for number in range(1, count + 1):
        name = host_name(number, count)
        hosts.append(LabHost(name, host_address(index, number), port, None, disk / name / "upper"))
    return tuple(hosts)


def _choose_disk(info: LabInfo) -> LabInfo:
    """Upper dirs live in the lab dir when overlayfs accepts it (ext4, xfs, btrfs...). When it does not
    (the labs dir is itself on overlayfs, as in many containers), they go on a tmpfs mounted in the lab dir."""
    disk = info.dir / "hosts"
    disk.mkdir(exist_ok=True)
    first_error = hostmod.probe_overlay(disk)
    if first_error is None:
        return info
    disk = info.dir / "disk"
    disk.mkdir(exist_ok=True)
    info = dataclasses.replace(
        info, disk_mount=disk, hosts=_plan_hosts(info.index, len(info.hosts), info.hosts[0].port, disk)
    )
    registry.save(info)  # recorded before mounting, so lab down finds it even if we die right here
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=700", f"dccli-lab-{info.name}", str(disk)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or hostmod.probe_overlay(disk) is not None:
        raise LabError(f"overlayfs unavailable: {first_error}")
    return info


def _create(name: str, hosts: int, port: int) -> LabInfo:
    """Reserve the name (lab dir) and a machine-wide index, and record them in lab.json."""
    directory = registry.lab_dir(name)
    ensure_home()
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with registry.machine_lock():
        if os.path.lexists(directory):
            existing = registry.try_load(directory)
            state = existing.state if existing else "incomplete"
            raise LabError(f"lab {name!r} already exists ({state}); run `dccli lab down --name {name}` first")
        directory.mkdir(mode=0o700)

        def free(index: int) -> bool:
            return all(hostmod.address_bindable(host_address(index, n), port) for n in range(1, hosts + 1))

        try:
            if not hostmod.address_bindable("127.255.255.254", port):
                # Taken on an address no lab uses: something listens on 0.0.0.0:port (a system sshd?).
                raise LabError(
                    f"port {port} is taken on all loopback addresses (0.0.0.0:{port}?): use --port 2222"
                )
            index = registry.claim_index(directory, free)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        info = LabInfo(
            name=name,
            index=index,
            dir=directory,
            inventory_path=directory / "inventory.yml",
            key_path=directory / "id_ed25519",
            known_hosts_path=directory / "known_hosts",
            hosts=_plan_hosts(index, hosts, port, directory / "hosts"),
            state="creating",
            tag=secrets.token_hex(12),
        )
        registry.save(info)
    return info


def lab_up(
    name: str = "default",
    hosts: int = 8,
    *,
    port: int = 22,
    progress: Progress | None = None,
    gpus: int = 0,
    gpu_model: str = "H100-SXM5-80GB",
    shares: tuple[str, ...] = (),
) -> LabInfo:
    """Build and start a lab of `hosts` hosts; returns once every host's sshd sends its banner.

    gpus > 0 installs the simulated nvidia-smi (dccli.lab.gpusim) with that many `gpu_model` GPUs per host.
    On any failure (or Ctrl-C) everything created so far is torn down before the error propagates.
    """
    say = progress or _quiet
    from dccli.lab import preflight
    from dccli.lab.gpusim import model as gpumodel

    preflight.require()
    _validate(name, hosts, port, registry.lab_dir(name))
    if gpus and gpu_model not in gpumodel.MODELS:
        raise UsageError(f"unknown --gpu-model {gpu_model!r}: one of {', '.join(gpumodel.MODELS)}")
    if not 0 <= gpus <= gpumodel.MAX_GPUS:
        raise UsageError(f"--gpus must be between 0 and {gpumodel.MAX_GPUS}, not {gpus}")
    shared = _check_shares(shares)
    info = _create(name, hosts, port)
    if gpus or shared:
        info = dataclasses.replace(info, gpus_per_host=gpus, gpu_model=gpu_model if gpus else "", shares=shared)
        registry.save(info)
    try:
        return _bring_up(info, say)
    except BaseException as exc:
        say(f"lab {name}: start failed, cleaning up")
        with contextlib.suppress(Exception):
            lab_down(name)
        if isinstance(exc, LabError | KeyboardInterrupt):
            raise
        raise LabError(f"lab {name!r} failed to start: {exc}") from exc


def _bring_up(info: LabInfo, say: Progress) -> LabInfo:
    count = len(info.hosts)
    info = _choose_disk(info)
    say(f"lab {info.name}: generating keys for {count} hosts")
    sshkeys.keygen(info.key_path, "ed25519", f"dccli-lab-{info.name}")
    authorized = info.key_path.with_name(info.key_path.name + ".pub").read_text()

    def prepare(h: LabHost) -> list[str]:
        keys = hostmod.prepare_disk(info.name, h, info.hosts, authorized)
        if info.gpus_per_host:
            from dccli.lab.gpusim import install

            install.seed_gpus(h.upper_dir, info.gpu_model, info.gpus_per_host, f"{info.tag}/{h.name}")
        return keys

    with ThreadPoolExecutor(_workers(count)) as pool:
        public = list(pool.map(prepare, info.hosts))
    lab_vars = _lab_repo(info, say)
    # known_hosts before start: a caller that races ahead of `up` returning still verifies strictly.
    lines = []
    for h, keys in zip(info.hosts, public, strict=True):
        lines += sshkeys.known_hosts_lines(h.address, h.port, keys)
    info.known_hosts_path.write_text("\n".join(lines) + "\n")
    _forget_recorded_keys(info)  # an earlier lab on these addresses had other keys
    info = dataclasses.replace(info, state="starting")
    registry.save(info)

    say(f"lab {info.name}: starting {count} hosts on 127.{info.index}.0.0/16")
    started: dict[str, LabHost] = {}
    try:
        with ThreadPoolExecutor(_workers(count)) as pool:
            for h in pool.map(lambda h: hostmod.start_host(info, h), info.hosts):
                started[h.name] = h
    finally:
        # Record every init that did start, even when another failed, so lab down can find them by pid.
        if started:
            hosts = tuple(started.get(h.name, h) for h in info.hosts)
            registry.save(dataclasses.replace(info, hosts=hosts))
    info = dataclasses.replace(info, hosts=tuple(started[h.name] for h in info.hosts))

    say(f"lab {info.name}: waiting for {count} sshd")
    deadline = time.monotonic() + 30.0 + 0.25 * count
    with ThreadPoolExecutor(min(count, 64)) as pool:
        answered = list(pool.map(lambda h: hostmod.wait_ssh(h, deadline), info.hosts))
    failed = [h for h, ok in zip(info.hosts, answered, strict=True) if not ok]
    if failed:
        first = failed[0]
        raise LabError(
            f"{len(failed)} host(s) did not answer on port {first.port} "
            f"(first: {first.name} {first.address}): {hostmod.sshd_log_tail(first) or 'no sshd log'}"
        )
    inventory.write(info, lab_vars)
    info = dataclasses.replace(info, state="up")
    registry.save(info)
    from dccli.lab import rebootd

    # Tagged like the hosts: lab down ends it with them.
    rebootd.start(info.name, info.tag, info.dir / "logs" / "rebootd.log")
    return info


def _lab_repo(info: LabInfo, say: Progress) -> dict[str, object]:
    """The local apt repository of simulated NVIDIA packages (built once per content, dccli/lab/aptrepo.py),
    apt inside the hosts pointed away from network mirrors; returns the inventory vars naming the repository.
    A repository that cannot be built costs the playbooks, not the lab: warn and go on."""
    from dccli.lab import aptrepo, rebootd

    for h in info.hosts:
        aptrepo.seed_host_apt(h.upper_dir)
        rebootd.seed_host(h.upper_dir)  # `reboot` from inside a host (docs/playbooks.md)
    try:
        repo = aptrepo.ensure_repo()
    except (LabError, OSError, subprocess.CalledProcessError) as exc:
        say(f"lab {info.name}: warning: no local apt repository ({exc})")
        return {"nvidia_reboot_command": rebootd.COMMAND}
    say(f"lab {info.name}: apt repository {repo.apt_dir}")
    return {**repo.inventory_vars(), "nvidia_reboot_command": rebootd.COMMAND}


def _kill_targets(info: LabInfo) -> list[tuple[int, int | None]]:
    targets: list[tuple[int, int | None]] = [(h.init_pid, h.init_start) for h in info.hosts if h.init_pid]
    # The tag also finds inits lab.json never recorded (a crash or Ctrl-C in the middle of lab up).
    targets += [(pid, None) for pid in procs.tagged_pids(info.tag)]
    return [(pid, start) for pid, start in targets if procs.alive(pid, start)]


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            # Field 5 is the mount point, with spaces etc. escaped as octal (\040).
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == str(directory) or point.startswith(prefix):
                found.append(point)
    return found


def _unmount_all(points: Iterable[str]) -> None:
    # Deepest first, so a mount is never busy because of one stacked on it.
    for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


def unseen_by_hosts(paths) -> tuple[str, ...]:
    """Which control-node directories a lab host would not see through its overlay of `/`: those under
    the mounts each host makes afresh (/tmp, /run, /dev) or on another filesystem. Pass them as shares."""
    root_dev = os.stat("/").st_dev
    out = []
    for raw in paths:
        path = os.path.realpath(raw)
        fresh = any(path == m or path.startswith(m + "/") for m in ("/tmp", "/run", "/dev", "/proc", "/sys"))
        if os.path.isdir(path) and (fresh or os.stat(path).st_dev != root_dev):
            out.append(path)
    return tuple(out)


def _check_shares(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Existing absolute directories, resolved, outside dccli's home (whose lab keys hosts must not see)."""
    from dccli.paths import dccli_home

    home = os.path.realpath(dccli_home())
    out: list[str] = []
    for raw in paths:
        path = os.path.realpath(raw)
        if not os.path.isdir(path):
            raise UsageError(f"--share {raw}: not a directory")
        if path == "/" or path == home or path.startswith(home + "/") or home.startswith(path + "/"):
            raise UsageError(f"--share {raw}: must not be / nor contain or lie in dccli's home {home}")
        if path not in out:
            out.append(path)
    # A share inside another is already there (and binding it again would only add a mount).
    return tuple(p for p in out if not any(p != q and p.startswith(q + "/") for q in out))


def lab_down(name: str = "default") -> None:
    """Kill every host (SIGKILL to each PID-namespace init ends all its processes, stopped ones too; the
    hosts' mounts vanish with their mount namespaces), unmount what the lab mounted here, remove its dir.

    Idempotent, and works on a crashed, frozen or half-created lab.
    """
    directory = registry.lab_dir(name)
    if not os.path.lexists(directory):
        return
    if os.geteuid() != 0:
        raise LabError("lab down needs root")
    info = registry.try_load(directory)
    if info is not None:
        leftover: list[int] = []
        for _ in range(3):  # again, in case a host was still being started while we looked
            targets = _kill_targets(info)
            if not targets:
                break
            procs.kill_all(targets)
            leftover = procs.wait_gone([pid for pid, _ in targets], timeout=10.0)
        if leftover:
            raise LabError(f"lab {name!r}: processes {leftover} survived SIGKILL; run lab down again")
    _unmount_all(_mounts_under(directory))
    try:
        shutil.rmtree(directory)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise LabError(f"lab {name!r}: cannot remove {directory}: {exc}") from exc
    if info is not None:
        _forget_recorded_keys(info)
        registry.release_index(info.index, directory)


def _forget_recorded_keys(info: LabInfo) -> None:
    """Drop this lab's addresses from dccli's own known_hosts (`hosts trust` may have recorded them):
    the addresses are reused by the next lab with this index, whose hosts have new keys."""
    from dccli.paths import known_hosts_path
    from dccli.transport.hostkeys import HostKeyStore, known_hosts_name

    HostKeyStore(known_hosts_path()).forget([known_hosts_name(h.address, h.port) for h in info.hosts])


def lab_status(name: str = "default") -> LabStatus:
    """The lab as recorded plus, per host, whether its init lives and its sshd answers."""
    info = registry.load(name)

    def check(h: LabHost) -> HostStatus:
        alive = procs.alive(h.init_pid, h.init_start)
        answering = alive and hostmod.ssh_banner(h.address, h.port, timeout=2.0)
        return HostStatus(h.name, h.address, h.port, alive, answering)

    with ThreadPoolExecutor(min(max(len(info.hosts), 1), 64)) as pool:
        hosts = tuple(pool.map(check, info.hosts))
    return LabStatus(info, hosts)
