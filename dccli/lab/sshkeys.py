"""ssh-keygen wrappers and known_hosts lines for the lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dccli.errors import LabError

# ed25519 + ECDSA P-256: both take milliseconds. RSA (even 2048 bits) costs 0.1-0.3 s of CPU per key,
# which on a 2-core machine more than doubled the start-up time of a 64-host lab.
HOST_KEY_TYPES: tuple[str, ...] = ("ed25519", "ecdsa")
_BITS = {"ecdsa": "256", "rsa": "2048"}


def keygen(path: Path | str, key_type: str, comment: str) -> None:
    """A new passphrase-less key pair at path (+ .pub); the private key is 0600 (ssh-keygen's default)."""
    argv = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)]
    if key_type in _BITS:
        argv[4:4] = ["-b", _BITS[key_type]]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabError(f"ssh-keygen -t {key_type} failed: {proc.stderr.strip()}")


def keygen_script(directory: str, comment: str) -> str:
    """Shell commands that replace every host key in directory (run inside a host)."""
    lines = []
    for key_type in HOST_KEY_TYPES:
        path = f"{directory}/ssh_host_{key_type}_key"
        bits = f" -b {_BITS[key_type]}" if key_type in _BITS else ""
        lines.append(
            f"rm -f {path} {path}.pub && ssh-keygen -q -t {key_type}{bits} -N '' -C {comment} -f {path}"
        )
    return " && ".join(lines)


def host_key_paths(etc_ssh: Path) -> list[Path]:
    return [etc_ssh / f"ssh_host_{key_type}_key" for key_type in HOST_KEY_TYPES]


def known_hosts_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def known_hosts_lines(address: str, port: int, public_keys: list[str]) -> list[str]:
    """One line per key: '<address> <type> <base64>' (the comment is dropped)."""
    entry = known_hosts_entry(address, port)
    lines = []
    for text in public_keys:
        key_type, blob = text.split()[:2]
        lines.append(f"{entry} {key_type} {blob}")
    return lines
