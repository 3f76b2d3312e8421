"""The reboot module: a new boot identity, then test_command, over a fresh session.

On a host of a running lab (no kernel of its own) without an explicit reboot_command, the reboot is
`dccli lab reboot HOST` from the control node (docs/lab.md); elsewhere `shutdown -r now` (or reboot_command)
is started detached on the host and the control node waits for /proc/sys/kernel/random/boot_id to change.
"""

from __future__ import annotations

import threading
import time

from dccli.errors import TransportError
from dccli.playbook.channel import Session

_LAB_REBOOT_LOCK = threading.Lock()


def reboot(hp, args: dict, check: bool) -> dict:
    """Trigger a reboot, wait for a new boot id, run test_command; the host's session is replaced."""
    if check:
        return {"changed": True, "rebooted": False, "msg": "would reboot (check mode)"}
    t0 = time.monotonic()
    before = hp.session.call("boot_id", {})["boot_id"]
    time.sleep(float(args.get("pre_reboot_delay", 0)))
    lab = None if args.get("reboot_command") else lab_of(hp.run_.inventory, hp.host.name)
    if lab is not None:
        # A lab host has no kernel of its own to reboot: `dccli lab reboot` restarts its namespaces
        # (disk kept, new boot id), from the control node. Serialized: it rewrites lab.json.
        from dccli.errors import LabError
        from dccli.lab.reboot import reboot as lab_reboot

        hp.session.close()
        with _LAB_REBOOT_LOCK:
            try:
                lab_reboot(lab, hp.host.name)
            except LabError as exc:
                return {"failed": True, "changed": False, "rebooted": False, "msg": f"lab reboot: {exc}"}
    else:
        cmd = args.get("reboot_command") or "shutdown -r now"
        hp.session.call("reboot_trigger", {"reboot_command": cmd})
        hp.session.close()
    deadline = t0 + float(args.get("reboot_timeout", 600))
    last = "no answer yet"
    while time.monotonic() < deadline:
        time.sleep(2)
        try:
            hp.session = Session(hp.pool.get(hp.host), become=hp.needs_become(), **hp.session_files())
            now = hp.session.call("boot_id", {})["boot_id"]
        except TransportError as exc:
            last = str(exc)
            continue
        if now and now != before:
            time.sleep(float(args.get("post_reboot_delay", 0)))
            test = args.get("test_command") or "whoami"
            res = hp.session.call("shell", {"_raw_params": test})
            if res.get("rc") != 0:
                return {
                    "failed": True,
                    "changed": True,
                    "rebooted": True,
                    "msg": f"test_command {test!r} failed after reboot: {res.get('stderr')}",
                }
            return {"changed": True, "rebooted": True, "elapsed": int(time.monotonic() - t0)}
        hp.session.close()
        last = "boot id unchanged (the host has not rebooted yet)"
    raise TransportError(
        f"{hp.host.name}: did not come back from reboot within {args.get('reboot_timeout', 600)}s ({last})"
    )


def lab_of(inventory, host_name: str) -> str | None:
    """The lab name when this inventory is a running lab's and the host is one of its hosts."""
    cluster = getattr(inventory, "cluster", "") or ""
    if not cluster.startswith("lab-"):
        return None
    from dccli.errors import DccliError
    from dccli.lab import registry

    try:
        info = registry.load(cluster[4:])
        info.host(host_name)
    except (DccliError, KeyError, OSError):
        return None
    return info.name
