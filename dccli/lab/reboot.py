"""`dccli lab reboot HOST`: restart one lab host's namespaces with its disk kept. SIMULATION (docs/lab.md).

SIGKILL to the host's init ends every process of its PID namespace (stopped ones too) and its mount
namespace with them (tmpfs mounts such as a --disk-full fault vanish); the upper dir (its disk) stays.
While the host is down its GPU state gets what a real reboot does (gpusim.model.after_reboot), then the
host starts again with a new boot id (gpusim.install.on_boot, called by start_host) and we wait for sshd.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dccli.errors import LabError
from dccli.lab import host as hostmod
from dccli.lab import procs, registry
from dccli.lab.gpusim import install
from dccli.lab.gpusim import model as gpumodel
from dccli.lab.model import LabHost


def _quiet(_: str) -> None:
    pass


def reboot(lab_name: str, host_name: str, progress: Callable[[str], None] | None = None) -> LabHost:
    """Returns the host with its new init pid; raises LabError if it does not come back."""
    say = progress or _quiet
    info = registry.load(lab_name)
    info.host(host_name)  # an unknown host is a LabError before anything stops
    if info.state != "up":
        raise LabError(f"lab {lab_name!r} is {info.state}, not up")
    started = time.monotonic()
    with registry.locked(lab_name, f"reboot-{host_name}"):  # one reboot of a host at a time
        return _reboot_locked(lab_name, host_name, say, started)


def _reboot_locked(lab_name: str, host_name: str, say: Callable[[str], None], started: float) -> LabHost:
    info = registry.load(lab_name)  # again, under the lock: a reboot that just ended changed the init
    host = info.host(host_name)
    # Every live init of this host, found by its tag and name, not only the recorded one: a stale record
    # must never leave an old host running beside the new one (two sshd, one address).
    inits = set(procs.host_inits(info.tag, host_name))
    if host.init_pid and procs.alive(host.init_pid, host.init_start):
        inits.add(host.init_pid)
    if inits:
        say(f"{host_name}: stopping (init pid {', '.join(map(str, sorted(inits)))})")
        # Wait for every process of the host, not just init: the old overlay mount is released only
        # when the last one is gone, and the new one takes the same upper and work dirs.
        members: list[int] = []
        for pid in inits:
            members += procs.namespace_members(pid)
        procs.kill_all([(pid, None) for pid in inits])
        left = procs.wait_gone(members or list(inits), timeout=10.0)
        if left:
            raise LabError(f"host {host_name}: processes {left} survived SIGKILL")
    if install.has_gpus(host.upper_dir):
        try:
            install.write_state(host.upper_dir, gpumodel.after_reboot(install.read_state(host.upper_dir)))
        except gpumodel.StateError as exc:
            raise LabError(str(exc)) from None
    say(f"{host_name}: starting")
    new = hostmod.start_host(info, host)
    registry.replace_host(lab_name, new)  # under the lab lock: concurrent reboots keep each other's pids
    if not hostmod.wait_ssh(new, time.monotonic() + 30.0):
        raise LabError(f"host {host_name}: sshd does not answer after reboot: {hostmod.sshd_log_tail(new)}")
    say(f"{host_name}: up again in {time.monotonic() - started:.1f}s")
    return new
