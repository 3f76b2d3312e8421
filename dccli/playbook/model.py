"""Playbook values as loaded (untemplated): plays, blocks, tasks, handlers. Frozen; built by loader.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True)
class Where:
    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Task:
    module: str  # canonical short name: copy, file, command...
    args: Mapping[str, Any]  # raw (templates unrendered); a free-form command is args["_raw_params"]
    where: Where
    name: str | None = None
    when: tuple[Any, ...] = ()
    register: str | None = None
    changed_when: Any = None  # None: the module decides
    failed_when: Any = None
    ignore_errors: Any = False
    loop: Any = None  # None: no loop
    loop_var: str = "item"
    loop_label: Any = None
    index_var: str | None = None
    loop_pause: Any = 0  # loop_control.pause: seconds between items
    notify: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()  # handlers only
    tags: tuple[str, ...] = ()
    check_mode: Any = None  # None: follow --check
    diff: Any = None
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    environment: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    become: Any = None
    become_user: str | None = None
    until: Any = None
    retries: Any = 3
    delay: Any = 5
    no_log: bool = False
    base_dir: str = (
        "."  # directory of the file that holds the task: copy src and template src are relative to it
    )

    @property
    def display_name(self) -> str:
        return self.name or self.module


@dataclass(frozen=True)
class Block:
    block: tuple[Node, ...]
    where: Where
    rescue: tuple[Node, ...] = ()
    always: tuple[Node, ...] = ()
    name: str | None = None
    when: tuple[Any, ...] = ()
    tags: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    environment: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    become: Any = None
    become_user: str | None = None
    ignore_errors: Any = None
    check_mode: Any = None


Node = Task | Block


@dataclass(frozen=True)
class Play:
    hosts: str
    where: Where
    name: str | None = None
    tasks: tuple[Node, ...] = ()  # pre_tasks + tasks + post_tasks, in order
    handlers: tuple[Task, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    vars_files: tuple[
        str, ...
    ] = ()  # paths as written, relative to the playbook (static: loaded at load time)
    vars_from_files: Mapping[str, Any] = field(
        default_factory=lambda: EMPTY, hash=False
    )  # static ones, loaded
    gather_facts: Any = True
    serial: Any = None  # None, int, "30%", or a list of them
    max_fail_percentage: Any = None
    any_errors_fatal: Any = False
    become: Any = False
    become_user: str = "root"
    environment: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    tags: tuple[str, ...] = ()
    check_mode: Any = None
    base_dir: str = "."


@dataclass(frozen=True)
class Playbook:
    path: str
    plays: tuple[Play, ...]
