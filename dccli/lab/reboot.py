"""`dccli lab reboot HOST`: restart one lab host's namespaces with its disk kept. SIMULATION (docs/lab.md).

SIGKILL to the host's init ends every process of its PID namespace (stopped ones too) and its mount
namespace with them (tmpfs mounts such as a --disk-full fault vanish); the upper dir (its disk) stays.
While the host is down its GPU state gets what a real reboot does (gpusim.model.after_reboot), then the
host starts again with a new boot id (gpusim.install.on_boot, called by start_host) and we wait for sshd.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from dccli.errors import LabError
from dccli.lab import host as hostmod
from dccli.lab import procs, registry
from dccli.lab.faults import host_pids
from dccli.lab.gpusim import install
from dccli.lab.gpusim import model as gpumodel
from dccli.lab.model import LabHost


def _quiet(_: str) -> None:
    pass


def reboot(lab_name: str, host_name: str, progress: Callable[[str], None] | None = None) -> LabHost:
    """Returns the host with its new init pid; raises LabError if it does not come back."""
    say = progress or _quiet
    info = registry.load(lab_name)
    host = info.host(host_name)
    if info.state != "up":
        raise LabError(f"lab {lab_name!r} is {info.state}, not up")
    started = time.monotonic()
    if host.init_pid and procs.alive(host.init_pid, host.init_start):
        say(f"{host_name}: stopping (init pid {host.init_pid})")
        # Wait for every process of the host, not just init: the old overlay mount is released only
        # when the last one is gone, and the new one takes the same upper and work dirs.
        members = host_pids(info, host_name)
        procs.kill_all([(host.init_pid, host.init_start)])
        left = procs.wait_gone(members or [host.init_pid], timeout=10.0)
        if left:
            raise LabError(f"host {host_name}: processes {left} survived SIGKILL")
    if install.has_gpus(host.upper_dir):
        try:
            install.write_state(host.upper_dir, gpumodel.after_reboot(install.read_state(host.upper_dir)))
        except gpumodel.StateError as exc:
            raise LabError(str(exc)) from None
    say(f"{host_name}: starting")
    new = hostmod.start_host(info, host)
    # Re-read lab.json: another command may have changed other hosts meanwhile; replace only this one.
    current = registry.load(lab_name)
    registry.save(
        dataclasses.replace(current, hosts=tuple(new if h.name == host_name else h for h in current.hosts))
    )
    if not hostmod.wait_ssh(new, time.monotonic() + 30.0):
        raise LabError(f"host {host_name}: sshd does not answer after reboot: {hostmod.sshd_log_tail(new)}")
    say(f"{host_name}: up again in {time.monotonic() - started:.1f}s")
    return new
