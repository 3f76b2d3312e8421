"""Values of the keys capability: one host's rotation, a whole rotation, one host's key status."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Steps of one host's rotation, in order; a failure names the step it happened in.
STEPS = ("connect", "read", "add", "ca", "login", "switch", "remove", "done")


@dataclass(frozen=True)
class HostRotation:
    host: str
    outcome: str  # rotated | already | failed
    step: str  # the step reached (the failing one, or "done")
    new_fingerprint: str
    removed: tuple[str, ...] = ()  # fingerprints of retired keys removed from authorized_keys
    uses: str | None = None  # the fingerprint dccli logs in with from now on (None: unchanged)
    error: str | None = None
    duration_s: float = 0.0
    old: tuple[str, ...] = ()  # fingerprints of retired keys the host accepted when we started

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RotationReport:
    key: dict  # the target key pair (KeyPair.to_dict())
    generated: bool  # a new pair this run (else finishing an earlier rotation to the same key)
    hosts: tuple[HostRotation, ...]
    archived: tuple[str, ...] = ()  # key pairs moved to keys/archive/ (no host uses them any more)
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "generated": self.generated,
            "hosts": [h.to_dict() for h in self.hosts],
            "archived": list(self.archived),
            "wall_s": self.wall_s,
        }


@dataclass(frozen=True)
class KeyStatus:
    host: str
    authorized: tuple[dict, ...]  # dccli's keys in authorized_keys: {"name", "fingerprint", "current"}
    login_key: str | None  # the key file the transport tries first for this host
    key_age_s: float | None
    last_rotation: dict | None  # the latest audit row for the host
    host_key: dict = field(default_factory=dict)  # {"type", "fingerprint", "known": bool}
    ca_trusted: bool | None = None  # None: no CA on the control node
    other_keys: int = 0  # keys in authorized_keys that are not dccli's (left alone)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)
