"""How to reach one host: the inventory's values with ~/.ssh/config filling the gaps."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ConnectOptions:
    """Timeouts and key sources shared by every connection of one command."""

    connect_timeout: float = 10.0  # TCP connect + SSH banner + key exchange
    auth_timeout: float = 15.0
    keepalive_s: int = 15
    use_agent: bool = True
    ssh_config_path: Path | None = field(default_factory=lambda: Path(os.path.expanduser("~/.ssh/config")))
    extra_known_hosts: tuple[Path, ...] = ()
    include_user_known_hosts: bool = True


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect, fully resolved (no ~, no ssh_config lookups left)."""

    name: str  # the inventory name, used in messages and known_hosts lookups
    address: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    jump: str | None  # "[user@]host[:port]" or an inventory host name, possibly comma-separated chain

    @property
    def known_hosts_names(self) -> list[str]:
        """Keys are looked up and recorded by the address we connect to, as OpenSSH does (after
        HostName). Never by inventory name: `node01` of one cluster or lab is not `node01` of another."""
        from dccli.transport.hostkeys import known_hosts_name

        return [known_hosts_name(self.address, self.port)]


def parse_jump_spec(spec: str, default_user: str) -> tuple[str, str, int]:
    """'[user@]host[:port]' -> (user, host, port). IPv6 in brackets: [::1]:22."""
    user = default_user
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port = 22
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, port_s = spec.split(":")
        port = int(port_s)
    else:
        host = spec
    return user, host, port


def load_ssh_config(path: Path | None):
    """paramiko.SSHConfig for the user's file, or None when there is none (read once per command)."""
    if path is None or not path.is_file():
        return None
    import paramiko

    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, ValueError):
        return None


def resolve_endpoint(host, ssh_config) -> Endpoint:
    """Inventory values win; ~/.ssh/config supplies HostName/User/Port only where the inventory
    just named the host (address == name), and adds its IdentityFile and ProxyJump."""
    address, port, user = host.address, host.port, host.user
    identities: list[str] = []
    if host.identity_file:
        identities.append(os.path.expanduser(host.identity_file))
    jump = host.jump
    if ssh_config is not None:
        cfg = ssh_config.lookup(host.name)
        if address == host.name:
            address = cfg.get("hostname", address)
            if "port" in cfg:
                port = int(cfg["port"])
            user = cfg.get("user", user)
        for ident in cfg.get("identityfile", []):
            ident = os.path.expanduser(ident)
            if ident not in identities:
                identities.append(ident)
        if not jump and cfg.get("proxyjump") and cfg["proxyjump"].lower() != "none":
            jump = cfg["proxyjump"]
    return Endpoint(name=host.name, address=address, port=port, user=user,
                    identity_files=tuple(identities), jump=jump)
