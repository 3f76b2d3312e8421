"""OpenSSH's own client against lab hosts: the judge of who gets in (shared by the integration tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ssh_argv(lab, host_name: str, *extra: str, key: Path | None = None, known_hosts: Path | None = None) -> list[str]:
    """-o/-i options ssh, sftp and scp accept alike: strict host keys, exactly one identity, no agent,
    no prompts. Defaults: the lab's key and the lab's known_hosts."""
    host = lab.host(host_name)
    return [
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts or lab.known_hosts_path}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", "ConnectTimeout=10",
        "-o", "LogLevel=ERROR",
        "-o", f"Port={host.port}",  # -o, not -p: sftp's -p means something else
        "-i", str(key or lab.key_path),
        *extra,
    ]  # fmt: skip


def ssh_ok(lab, host_name: str, key: Path, command: str = "true", known_hosts: Path | None = None) -> bool:
    """Does OpenSSH get in with exactly this key (and key-cert.pub beside it, which ssh offers itself)?"""
    argv = ["ssh", *ssh_argv(lab, host_name, key=key, known_hosts=known_hosts),
            f"root@{lab.host(host_name).address}", command]
    return subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL).returncode == 0
