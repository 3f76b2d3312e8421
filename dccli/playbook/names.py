"""Load-time check: every name a template uses must be defined somewhere, before any host is touched.

"Somewhere" is generous on purpose (a name defined for some host, by a register or set_fact anywhere in the
playbooks, a loop variable, a fact): a typo (`{{ dirver_branch }}`) is what this catches, at file:line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dccli.errors import InputError
from dccli.playbook.model import Block, Node, Play, Playbook, Task
from dccli.playbook.modules import suggest
from dccli.playbook.templating import TemplateError, expression_names, unguarded_names
from dccli.playbook.vars import MAGIC

_JINJA_GLOBALS = {
    "range",
    "lipsum",
    "dict",
    "cycler",
    "joiner",
    "namespace",
    "loop",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "lookup",
    "query",
    "q",
    "now",
    "undef",
}


def walk(nodes: Iterable[Node]) -> Iterable[Task | Block]:
    for n in nodes:
        yield n
        if isinstance(n, Block):
            yield from walk(n.block + n.rescue + n.always)


def defined_names(playbooks: list[Playbook], inventory, extra_vars: dict[str, Any]) -> set[str]:
    known = set(MAGIC) | set(extra_vars) | set(_JINJA_GLOBALS)
    known |= set(inventory.vars)
    for host in inventory.hosts:
        known |= set(host.vars)
    for gv in inventory.group_vars.values():
        known |= set(gv)
    for pb in playbooks:
        for play in pb.plays:
            known |= set(play.vars) | set(play.vars_from_files)
            for n in walk(play.tasks + play.handlers):
                known |= set(n.vars)
                if isinstance(n, Task):
                    if n.register:
                        known.add(n.register)
                    if n.module == "set_fact":
                        known |= {k for k in n.args if k != "cacheable"}
                    known.add(n.loop_var)
                    if n.index_var:
                        known.add(n.index_var)
    return known


def check(playbooks: list[Playbook], inventory, extra_vars: dict[str, Any]) -> None:
    known = defined_names(playbooks, inventory, extra_vars)
    for pb in playbooks:
        for play in pb.plays:
            _check_play(play, known)


def _check_play(play: Play, known: set[str]) -> None:
    for n in walk(play.tasks + play.handlers):
        if isinstance(n, Block):
            _names(n.when, n.where, known, "when", expression=True)
            continue
        _names(dict(n.args), n.where, known, n.module)
        _names(n.when, n.where, known, "when", expression=True)
        for key in ("changed_when", "failed_when", "until"):
            value = getattr(n, key)
            if value is not None and not isinstance(value, bool):
                extra = {n.register} if n.register else set()
                _names(
                    value if isinstance(value, list) else [value],
                    n.where,
                    known
                    | extra
                    | {"rc", "stdout", "stderr", "stdout_lines", "stderr_lines", "changed", "failed"},
                    key,
                    expression=True,
                )
        if n.loop is not None:
            _names(
                n.loop
                if not isinstance(n.loop, list) or not n.loop or not isinstance(n.loop[0], tuple)
                else n.loop[0][1],
                n.where,
                known,
                "loop",
            )
        if n.module == "assert":
            that = n.args.get("that")
            _names(that if isinstance(that, list) else [that], n.where, known, "assert.that", expression=True)


def _names(value: Any, where, known: set[str], key: str, expression: bool = False) -> None:
    try:
        if expression:
            used: set[str] = set()
            for e in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(e, str):
                    used |= expression_names(e)
        else:
            used = unguarded_names(value)
    except TemplateError as exc:
        raise InputError(str(exc), path=where.path, line=where.line, column=where.column, key=key) from None
    missing = sorted(u for u in used if u not in known and not u.startswith(("ansible_", "dccli_")))
    if missing:
        name = missing[0]
        raise InputError(
            f"undefined variable {name!r}{suggest(name, known)}",
            path=where.path,
            line=where.line,
            column=where.column,
            key=key,
        )
