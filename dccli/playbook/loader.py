"""Playbook files -> model values, validated before any host is touched.

Errors name file:line:column and the key: unknown module, unknown argument, unknown keyword, unsupported
feature, bad YAML. Names used in templates are checked separately (names.py) once vars are known.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dccli.errors import InputError
from dccli.inventory.yamlnodes import Source, YNode, parse
from dccli.playbook import modules as M
from dccli.playbook.kv import parse_kv as _parse_kv
from dccli.playbook.kv import split_free_form as _split_free_form
from dccli.playbook.model import Block, Node, Play, Playbook, Task, Where


def plain(node: YNode | None) -> Any:
    if node is None:
        return None
    if node.kind == "map":
        return {k: plain(v) for k, v in node.value.items()}
    if node.kind == "seq":
        return [plain(v) for v in node.value]
    return node.value


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = Source(str(path))
        self.base_dir = str(path.parent)

    def err(self, message: str, at: YNode | None, key: str | None = None) -> InputError:
        return InputError(
            message,
            path=str(self.path),
            line=at.line if at else None,
            column=at.column if at else None,
            key=key,
        )

    def where(self, node: YNode) -> Where:
        return Where(str(self.path), node.line, node.column)

    def read(self) -> YNode | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("no such playbook file", path=str(self.path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read: {exc}", path=str(self.path)) from None
        return parse(text, self.source)

    # -- plays -----------------------------------------------------------------------------------
    def playbook(self) -> Playbook:
        root = self.read()
        if root is None or root.kind != "seq":
            raise self.err("a playbook is a list of plays", root)
        return Playbook(str(self.path), tuple(self.play(p) for p in root.value))

    def play(self, node: YNode) -> Play:
        if node.kind != "map":
            raise self.err("a play must be a mapping", node)
        self.check_keys(node, M.PLAY_KEYWORDS, "play keyword")
        if "hosts" not in node.value:
            raise self.err("a play needs `hosts`", node)
        v = node.value
        hosts = plain(v["hosts"])
        if isinstance(hosts, list):
            hosts = ",".join(str(h) for h in hosts)
        tasks: list[Node] = []
        for section in ("pre_tasks", "tasks", "post_tasks"):
            if section in v:
                tasks += self.task_list(v[section], section)
        handlers = tuple(self.task(h, handler=True) for h in self.seq(v.get("handlers"), "handlers"))
        for h in handlers:
            if not isinstance(h, Task):
                raise self.err("a handler cannot be a block", v["handlers"])
        vars_files = tuple(str(p) for p in self.flat_list(v.get("vars_files"), "vars_files"))
        static: dict[str, Any] = {}
        for i, vf in enumerate(vars_files):
            at = v["vars_files"].value[i] if v["vars_files"].kind == "seq" else v["vars_files"]
            if "{{" in vf:
                raise self.err(
                    "vars_files names with templates are not supported by dccli (docs/provision.md)",
                    at,
                    "vars_files",
                )
            static.update(self.load_vars_file(vf, at))
        return Play(
            hosts=str(hosts),
            where=self.where(node),
            name=plain(v.get("name")),
            tasks=tuple(tasks),
            handlers=handlers,  # type: ignore[arg-type]
            vars=self.mapping(v.get("vars"), "vars"),
            vars_files=vars_files,
            vars_from_files=static,
            gather_facts=plain(v["gather_facts"]) if "gather_facts" in v else True,
            serial=plain(v.get("serial")),
            max_fail_percentage=plain(v.get("max_fail_percentage")),
            any_errors_fatal=plain(v.get("any_errors_fatal")) or False,
            become=plain(v.get("become")) or False,
            become_user=str(plain(v.get("become_user")) or "root"),
            environment=self.env_value(v.get("environment")),
            tags=self.tags(v.get("tags")),
            check_mode=plain(v.get("check_mode")),
            base_dir=self.base_dir,
        )

    def load_vars_file(self, rel: str, at: YNode) -> dict[str, Any]:
        path = Path(rel) if os.path.isabs(rel) else Path(self.base_dir) / rel
        sub = _Loader(path)
        try:
            root = sub.read()
        except InputError as exc:
            if exc.message == "no such playbook file":
                raise self.err(f"vars file not found: {path}", at, "vars_files") from None
            raise
        if root is None:
            return {}
        if root.kind != "map":
            raise sub.err("a vars file must be a mapping", root)
        return plain(root)

    # -- tasks -----------------------------------------------------------------------------------
    def task_list(self, node: YNode | None, what: str) -> list[Node]:
        return [self.task(t) for t in self.seq(node, what)]

    def task(self, node: YNode, handler: bool = False) -> Node:
        if node.kind != "map":
            raise self.err("a task must be a mapping", node)
        v = node.value
        for key, why in M.UNSUPPORTED.items():
            if key in v:
                raise self.err(why, node.keys[key], key)
        if "block" in v:
            self.check_keys(node, M.BLOCK_KEYWORDS, "block keyword")
            return Block(
                block=tuple(self.task_list(v["block"], "block")),
                where=self.where(node),
                rescue=tuple(self.task_list(v.get("rescue"), "rescue")),
                always=tuple(self.task_list(v.get("always"), "always")),
                name=plain(v.get("name")),
                when=self.when(v.get("when")),
                tags=self.tags(v.get("tags")),
                vars=self.mapping(v.get("vars"), "vars"),
                environment=self.env_value(v.get("environment")),
                become=plain(v.get("become")),
                become_user=plain(v.get("become_user")),
                ignore_errors=plain(v.get("ignore_errors")),
                check_mode=plain(v.get("check_mode")),
            )
        for inc in (
            "import_tasks",
            "include_tasks",
            "ansible.builtin.import_tasks",
            "ansible.builtin.include_tasks",
        ):
            if inc in v:
                return self.include(node, inc)
        module_keys = [k for k in v if k not in M.TASK_KEYWORDS]
        if not module_keys:
            raise self.err("no module in this task", node)
        if len(module_keys) > 1:
            unknown = [k for k in module_keys if M.canonical(k) is None]
            key = unknown[0] if unknown else module_keys[1]
            if unknown:
                raise self.err(
                    f"unknown task keyword or module{M.suggest(key, [*M.SPECS, *M.TASK_KEYWORDS])}",
                    node.keys[key],
                    key,
                )
            raise self.err(f"a task calls one module (found {', '.join(module_keys)})", node.keys[key], key)
        mkey = module_keys[0]
        name = M.canonical(mkey)
        if name is None:
            raise self.err(f"unknown module{M.suggest(mkey, M.SPECS)}", node.keys[mkey], mkey)
        spec = M.SPECS[mkey] if mkey in M.SPECS else M.SPECS[name]
        args = self.module_args(spec, v[mkey], mkey)
        if "args" in v:
            extra = v["args"]
            if extra.kind != "map":
                raise self.err("args must be a mapping", extra, "args")
            args.update(plain(extra))
            self.check_args(spec, extra, "args")
        if v[mkey].kind == "map":
            self.check_args(spec, v[mkey], mkey)
        else:
            self.check_arg_names(spec, args, v[mkey], mkey)
        for req in spec.required_one_of:
            if req not in args and not (req == "path" and {"dest", "name"} & set(args)):
                raise self.err(f"missing required argument: {req}", node.keys[mkey], mkey)
        if spec.name == "meta" and args.get("_raw_params") not in M.META_ACTIONS:
            raise self.err(f"unknown meta action {args.get('_raw_params')!r}", v[mkey], mkey)
        loop_node = v.get("loop") or v.get("with_items") or v.get("with_list")
        loop = plain(loop_node)
        if "with_items" in v and loop is not None:
            loop = [("__flatten__", loop)]  # with_items flattens one level (resolved at run time)
        lc = self.mapping(v.get("loop_control"), "loop_control")
        unknown = set(lc) - {"loop_var", "label", "index_var", "pause", "extended", "extended_allitems"}
        if unknown:
            raise self.err(
                f"unknown loop_control option {sorted(unknown)[0]!r}", v["loop_control"], "loop_control"
            )
        if handler and plain(v.get("name")) is None and "listen" not in v:
            raise self.err("a handler needs a name (or listen)", node)
        return Task(
            module=spec.name,
            args=args,
            where=self.where(node),
            name=plain(v.get("name")),
            when=self.when(v.get("when")),
            register=plain(v.get("register")),
            changed_when=plain(v.get("changed_when")),
            failed_when=plain(v.get("failed_when")),
            ignore_errors=plain(v.get("ignore_errors")) or False,
            loop=loop,
            loop_var=str(lc.get("loop_var", "item")),
            loop_label=lc.get("label"),
            loop_pause=lc.get("pause", 0),
            index_var=lc.get("index_var"),
            notify=tuple(str(n) for n in self.flat_list(v.get("notify"), "notify")),
            listen=tuple(str(n) for n in self.flat_list(v.get("listen"), "listen")),
            tags=self.tags(v.get("tags")),
            check_mode=plain(v.get("check_mode")),
            diff=plain(v.get("diff")),
            vars=self.mapping(v.get("vars"), "vars"),
            environment=self.env_value(v.get("environment")),
            become=plain(v.get("become")),
            become_user=plain(v.get("become_user")),
            until=plain(v.get("until")),
            retries=plain(v.get("retries")) if "retries" in v else 3,
            delay=plain(v.get("delay")) if "delay" in v else 5,
            no_log=bool(plain(v.get("no_log"))),
            base_dir=self.base_dir,
        )

    def include(self, node: YNode, key: str) -> Block:
        target = plain(node.value[key])
        if isinstance(target, dict):
            target = target.get("file")
        if not isinstance(target, str) or "{{" in target:
            raise self.err(f"{key} needs a static file name in dccli (no templates)", node.value[key], key)
        extra = set(node.value) - {key, "name", "when", "tags", "vars"}
        if extra:
            bad = sorted(extra)[0]
            raise self.err(f"{bad} is not supported on {key} in dccli", node.keys[bad], bad)
        path = Path(target) if os.path.isabs(target) else Path(self.base_dir) / target
        sub = _Loader(path)
        try:
            root = sub.read()
        except InputError as exc:
            if exc.message == "no such playbook file":
                raise self.err(f"task file not found: {path}", node.value[key], key) from None
            raise
        body = tuple(sub.task_list(root, "tasks")) if root is not None else ()
        v = node.value
        return Block(
            block=body,
            where=self.where(node),
            name=plain(v.get("name")),
            when=self.when(v.get("when")),
            tags=self.tags(v.get("tags")),
            vars=self.mapping(v.get("vars"), "vars"),
        )

    def module_args(self, spec: M.ModuleSpec, node: YNode, key: str) -> dict[str, Any]:
        if node.kind == "map":
            return plain(node)
        if node.kind == "seq":
            raise self.err("module arguments must be a mapping or a string", node, key)
        if node.value is None:
            return {}
        text = str(node.value)
        if spec.free_form:
            return _split_free_form(text)
        if not spec.kv_form:
            raise self.err("module arguments must be a mapping", node, key)
        try:
            return _parse_kv(text)
        except ValueError as exc:
            raise self.err(f"cannot parse key=value arguments: {exc}", node, key) from None

    def check_args(self, spec: M.ModuleSpec, node: YNode, key: str) -> None:
        if spec.name == "set_fact":
            return
        for arg, knode in node.keys.items():
            if arg not in spec.args:
                raise self.err(
                    f"unknown argument {arg!r} for module {spec.name}{M.suggest(arg, spec.args)}",
                    knode,
                    f"{key}.{arg}",
                )

    def check_arg_names(self, spec: M.ModuleSpec, args: dict, node: YNode, key: str) -> None:
        if spec.name == "set_fact":
            return
        for arg in args:
            if arg not in spec.args:
                raise self.err(
                    f"unknown argument {arg!r} for module {spec.name}{M.suggest(arg, spec.args)}", node, key
                )

    # -- small shapes ----------------------------------------------------------------------------
    def check_keys(self, node: YNode, allowed: frozenset[str], what: str) -> None:
        for key, knode in node.keys.items():
            if key in M.UNSUPPORTED:
                raise self.err(M.UNSUPPORTED[key], knode, key)
            if key not in allowed:
                raise self.err(f"unknown {what}{M.suggest(key, allowed)}", knode, key)

    def env_value(self, node: YNode | None) -> Any:
        """`environment:` is a mapping, or a template that renders to one at run time."""
        if node is not None and node.kind == "scalar" and isinstance(node.value, str) and "{{" in node.value:
            return node.value
        return self.mapping(node, "environment")

    def seq(self, node: YNode | None, what: str) -> list[YNode]:
        if node is None or node.value is None:
            return []
        if node.kind != "seq":
            raise self.err(f"{what} must be a list", node, what)
        return list(node.value)

    def mapping(self, node: YNode | None, what: str) -> dict[str, Any]:
        if node is None or node.value is None:
            return {}
        if node.kind != "map":
            raise self.err(f"{what} must be a mapping", node, what)
        return plain(node)

    def flat_list(self, node: YNode | None, what: str) -> list[Any]:
        value = plain(node)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def when(self, node: YNode | None) -> tuple[Any, ...]:
        value = plain(node)
        if value is None:
            return ()
        return tuple(value) if isinstance(value, list) else (value,)

    def tags(self, node: YNode | None) -> tuple[str, ...]:
        value = plain(node)
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return tuple(str(t) for t in value)


def load(path: str | Path) -> Playbook:
    return _Loader(Path(path)).playbook()
