"""Reboots asked for from inside lab hosts: what makes `shutdown -r` (Ansible's and dccli's `reboot` module)
work on a lab host. SIMULATION support (docs/lab.md, docs/playbooks.md).

A lab host cannot restart its own namespaces (nothing inside it reaches the control node), so `lab up` starts
this watcher beside the hosts: one small process per lab, carrying the lab's tag in its environment so that
`lab down` ends it together with the hosts. Inside every host, /usr/local/sbin/dccli-lab-reboot (seeded at
lab up; the lab inventory hands it to playbooks as `nvidia_reboot_command`) writes the host's current boot id
to /var/lib/dccli-lab/reboot-request and returns, as `shutdown -r now` does. The watcher sees the request in
the host's upper dir and runs `lab reboot` for that host (dccli.lab.reboot). A request names the boot it was
made in, so it is served once: after the reboot the host has a new boot id and the old request is inert.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dccli.lab import procs

REQUEST = "var/lib/dccli-lab/reboot-request"
BOOT_ID = "var/lib/dccli-lab/boot_id"
COMMAND = "/usr/local/sbin/dccli-lab-reboot"
POLL_S = 0.5
SCRIPT = """#!/bin/sh
# dccli lab (SIMULATION): reboot this lab host, like `shutdown -r now`. Arguments are accepted and ignored.
# The lab's reboot watcher on the control node restarts the host (its disk kept) within a second.
set -e
mkdir -p /var/lib/dccli-lab
cat /var/lib/dccli-lab/boot_id > /var/lib/dccli-lab/reboot-request.tmp
mv /var/lib/dccli-lab/reboot-request.tmp /var/lib/dccli-lab/reboot-request
echo "$(hostname): reboot requested (dccli lab)"
"""


def seed_host(upper: Path) -> None:
    """Install the in-host reboot command in a host's upper dir (before its overlay is mounted)."""
    from dccli.lab.host import mkdirs_like_lower

    target = mkdirs_like_lower(upper, "usr/local/sbin") / Path(COMMAND).name
    target.write_text(SCRIPT)
    os.chmod(target, 0o755)


def start(name: str, tag: str, log: Path) -> int:
    """Start the watcher for lab `name` in its own session; returns its pid."""
    env = dict(os.environ, **{procs.TAG_VAR: tag})
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccli.lab.rebootd", name],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def pending(upper: Path) -> bool:
    """A request made during the host's current boot (and not served yet)."""
    request = _read(upper / REQUEST)
    return bool(request) and request == _read(upper / BOOT_ID)


def watch(name: str) -> int:
    from dccli.errors import LabError
    from dccli.lab import registry
    from dccli.lab.reboot import reboot

    busy: set[str] = set()
    served: dict[str, str] = {}  # host -> the request last acted on: a failed reboot is not retried in a loop

    def serve(host: str) -> None:
        try:
            reboot(name, host, progress=lambda line: print(f"{name}: {line}", flush=True))
        except LabError as exc:
            print(f"{name}: {host}: reboot failed: {exc}", flush=True)
        finally:
            busy.discard(host)

    lab_json = registry.lab_dir(name) / "lab.json"
    seen_mtime: int | None = None
    info = None
    with ThreadPoolExecutor(8) as pool:
        while True:
            try:
                mtime = lab_json.stat().st_mtime_ns
            except OSError:
                return 0  # the lab is gone
            if mtime != seen_mtime:  # re-read lab.json only when it changed (a reboot records a new pid)
                seen_mtime, info = mtime, registry.try_load(registry.lab_dir(name))
            if info is None:
                return 0
            if info.state == "up":
                for host in info.hosts:
                    request = _read(host.upper_dir / REQUEST)
                    if host.name in busy or served.get(host.name) == request or not pending(host.upper_dir):
                        continue
                    busy.add(host.name)
                    served[host.name] = request or ""
                    print(f"{name}: {host.name}: reboot requested from inside the host", flush=True)
                    pool.submit(serve, host.name)
            time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(watch(sys.argv[1]))
