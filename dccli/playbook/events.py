"""What the engine reports while it runs: values out of the core, drawn by dccli/output/provision.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Ansible's PLAY RECAP columns, in its order.
RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


@dataclass
class HostStats:
    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in RECAP_KEYS}


@dataclass(frozen=True)
class PlayStarted:
    name: str
    hosts: tuple[str, ...]
    batch: int = 1
    batches: int = 1


@dataclass(frozen=True)
class TaskDone:
    host: str
    task: str
    status: str  # ok | changed | failed | skipped | unreachable | rescued | ignored
    where: str = ""
    msg: str = ""
    item: Any = None  # the loop label, for one item of a loop
    result: dict[str, Any] = field(default_factory=dict, hash=False)
    handler: bool = False
    duration_s: float = 0.0
    summary: bool = False  # a loop's overall result, after its items' lines

    def to_dict(self) -> dict[str, Any]:
        out = {
            "event": "task",
            "host": self.host,
            "task": self.task,
            "status": self.status,
            "where": self.where,
            "handler": self.handler,
            "duration_s": round(self.duration_s, 4),
        }
        if self.summary:
            out["loop_summary"] = True
        if self.msg:
            out["msg"] = self.msg
        if self.item is not None:
            out["item"] = self.item
        return out


@dataclass(frozen=True)
class Notice:
    host: str | None
    text: str
