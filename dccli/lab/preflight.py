"""What the lab needs from the machine, checked before anything is created."""

from __future__ import annotations

import os
import shutil

from dccli.errors import LabError


def missing_requirements() -> list[str]:
    """Human-readable reasons the lab cannot run here (empty when it can)."""
    from dccli.lab.host import sshd_path

    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (namespaces, mounts): run as root or with sudo")
    if not os.path.exists("/proc/self/ns/pid"):
        problems.append("this kernel has no PID namespaces")
    for tool in ("nsenter", "ssh-keygen"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found (apt-get install util-linux openssh-client)")
    if sshd_path() is None:
        problems.append("sshd not found (apt-get install openssh-server)")
    if not _has_overlay():
        problems.append("overlayfs unavailable (modprobe overlay)")
    return problems


def _has_overlay() -> bool:
    try:
        with open("/proc/filesystems") as fh:
            if any(line.split()[-1] == "overlay" for line in fh if line.strip()):
                return True
    except OSError:
        return False
    # Built as a module but not loaded yet: the kernel loads it on the first mount, so let that decide.
    return os.path.isdir(f"/lib/modules/{os.uname().release}")


def require() -> None:
    problems = missing_requirements()
    if problems:
        raise LabError(problems[0])
