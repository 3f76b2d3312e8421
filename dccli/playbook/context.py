"""What every host of one play shares while it runs: options, the play, the state across plays, latches."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dccli.playbook.model import Play


@dataclass
class Options:
    check: bool = False
    diff: bool = False
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PlayRun:
    """What every host of one play shares."""

    play: Play
    options: Options
    inventory: Any
    play_hosts: list[str]
    batch: list[str]
    state: dict[str, dict[str, Any]]  # host -> {"facts": {...}, "set": {...}} (persists across plays)
    emit: Callable[[Any], None]
    abort: threading.Event = field(default_factory=threading.Event)  # any_errors_fatal tripped
    files: tuple[str, ...] | None = None  # the host-side module files this play needs (channel.files_for)
    facts_latch: Latch | None = None  # every host's facts are in before any host's first task (hostvars)


class Latch:
    """Counts hosts down; wait() returns when all arrived (or timed out): Ansible's linear step for facts."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._cond = threading.Condition()

    def arrive(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._count <= 0, timeout=timeout)
