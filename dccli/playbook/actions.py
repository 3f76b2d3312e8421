"""Control-node side of modules: debug, set_fact, assert, fail, pause; copy/template sources; loop items."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from dccli.playbook.filters import to_bool
from dccli.playbook.templating import TemplateError, condition, render, render_file


def truthy(value: Any) -> bool:
    return to_bool(value) if isinstance(value, str) else bool(value)


def a_debug(hp, task, v) -> dict:
    args = task.args
    if "var" in args:
        name = str(args["var"])
        try:
            value = render("{{ " + name + " }}", v)
        except TemplateError:
            value = "VARIABLE IS NOT DEFINED!"
        return {"changed": False, name: value, "_display": f"{name} = {json.dumps(value, default=str)}"}
    msg = render(args.get("msg", "Hello world!"), v)
    return {
        "changed": False,
        "msg": msg,
        "_display": msg if isinstance(msg, str) else json.dumps(msg, default=str),
    }


def a_set_fact(hp, task, v) -> dict:
    facts = render({k: val for k, val in task.args.items() if k != "cacheable"}, v)
    for k, val in facts.items():
        hp.run_.state[hp.host.name]["set"][k] = val
    return {"changed": False, "ansible_facts": facts}


def a_assert(hp, task, v) -> dict:
    that = task.args.get("that")
    conds = that if isinstance(that, list) else [that]
    for c in conds:
        if not condition(c, v):
            msg = task.args.get("fail_msg", task.args.get("msg", "Assertion failed"))
            return {
                "failed": True,
                "changed": False,
                "assertion": c,
                "evaluated_to": False,
                "msg": render(msg, v),
            }
    return {"changed": False, "msg": render(task.args.get("success_msg", "All assertions passed"), v)}


def a_fail(hp, task, v) -> dict:
    return {
        "failed": True,
        "changed": False,
        "msg": render(task.args.get("msg", "Failed as requested from task"), v),
    }


def a_pause(hp, task, v) -> dict:
    if "prompt" in task.args:
        return {"failed": True, "changed": False, "msg": "pause with a prompt is not supported by dccli"}
    seconds = float(render(task.args.get("seconds", 0), v)) + 60 * float(
        render(task.args.get("minutes", 0), v)
    )
    time.sleep(seconds)
    return {"changed": False, "delta": seconds}


LOCAL = {"debug": a_debug, "set_fact": a_set_fact, "assert": a_assert, "fail": a_fail, "pause": a_pause}


def find_source(task, src: str, subdir: str) -> Path:
    """Ansible's search: absolute as is; else <playbook dir>/<files|templates>/src, then <playbook dir>/src."""
    p = Path(os.path.expanduser(src))
    if p.is_absolute():
        return p
    base = Path(task.base_dir)
    for cand in (base / subdir / p, base / p):
        if cand.exists():
            return cand
    return base / subdir / p


def prepare_copy(task, args: dict, v: dict) -> dict:
    """copy/template: the bytes are read (and rendered) here, then travel in the task line (never argv)."""
    args = dict(args)
    if task.module == "template":
        path = find_source(task, str(args.pop("src")), "templates")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(f"could not read template {path}: {exc.strerror or exc}") from None
        tv = dict(
            v,
            template_path=str(path),
            template_host=os.uname().nodename,
            template_destpath=args.get("dest"),
            ansible_managed="Ansible managed",
        )
        data = render_file(text, tv).encode()
        for k in ("newline_sequence", "trim_blocks", "lstrip_blocks", "output_encoding", "validate"):
            args.pop(k, None)
    elif "content" in args:
        content = args.pop("content")
        if not isinstance(content, str):
            content = json.dumps(content)
        data = content.encode()
    elif args.get("remote_src"):
        raise TemplateError("copy with remote_src is not supported by dccli (docs/provision.md)")
    elif "src" in args:
        path = find_source(task, str(args.pop("src")), "files")
        if path.is_dir():
            raise TemplateError(
                f"copy of a directory ({path}) is not supported by dccli; copy files one by one"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TemplateError(f"could not find or access '{path}': {exc.strerror or exc}") from None
        args["_src_name"] = path.name
    else:
        raise TemplateError("src (or content) is required")
    args["_data"] = base64.b64encode(data).decode("ascii")
    return args


def is_dir_source(task, args: dict) -> bool:
    src = args.get("src")
    return (
        bool(src)
        and "content" not in args
        and not args.get("remote_src")
        and find_source(task, str(src), "files").is_dir()
    )


def copy_tree(session, conn, task, args: dict, *, check: bool, diff: bool) -> dict:
    """copy with a directory src, as Ansible: `dir/` copies its contents into dest, `dir` copies dir itself."""
    src = str(args["src"])
    root = find_source(task, src, "files")
    dest = str(args["dest"]).rstrip("/") or "/"
    if not src.endswith("/"):
        dest = f"{dest}/{root.name}"
    file_args = {k: args[k] for k in ("mode", "owner", "group", "backup", "force") if k in args}
    dir_args = {"mode": args["directory_mode"]} if args.get("directory_mode") else {}
    changed, results = False, []
    for here, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(here, root)
        target = dest if rel == "." else f"{dest}/{rel}"
        r = session.call("file", {"path": target, "state": "directory", **dir_args}, check=check, diff=diff)
        if r.get("failed"):
            return dict(r, dest=target)
        changed = changed or bool(r.get("changed"))
        if check and r.get("changed"):
            continue  # the directory does not exist yet: every file in it would be new
        for name in sorted(files):
            data = (Path(here) / name).read_bytes()
            r = call_copy(
                session,
                conn,
                {"dest": f"{target}/{name}", "_data": base64.b64encode(data).decode("ascii"), **file_args},
                check=check,
                diff=diff,
            )
            if r.get("failed"):
                return r
            changed = changed or bool(r.get("changed"))
            results.append({"dest": r.get("dest"), "changed": r.get("changed")})
    return {"changed": changed, "dest": dest, "src": str(root), "files": results}


INLINE_LIMIT = 4 << 20  # larger files go over SFTP, and only when the host's copy differs


def call_copy(session, conn, args: dict, *, check: bool, diff: bool) -> dict:
    """One copy: small contents travel in the task line; a large one is offered by checksum first, then
    uploaded next to its destination over SFTP (same connection) and renamed into place by the host."""
    if len(args.get("_data") or "") <= INLINE_LIMIT * 4 // 3:
        return session.call("copy", args, check=check, diff=diff)
    data = base64.b64decode(args["_data"])
    probe = {k: v for k, v in args.items() if k != "_data"}
    probe["_sha1"] = hashlib.sha1(data).hexdigest()
    res = session.call("copy", probe, check=check)
    if not res.get("_need_data"):
        return res
    if check:
        return {"changed": True, "dest": res.get("dest")}
    tmp = f"{res['dest']}.dccli-upload-{os.getpid()}"
    conn.put_bytes(data, tmp, 0o600)
    return session.call("copy", dict(probe, _tmp_src=tmp), check=check)


def loop_items(task, v: dict) -> list:
    loop = task.loop
    if (
        isinstance(loop, list)
        and len(loop) == 1
        and isinstance(loop[0], tuple)
        and loop[0][0] == "__flatten__"
    ):
        items = render(loop[0][1], v)
        if not isinstance(items, list):
            items = [items]
        out: list = []
        for it in items:
            out.extend(it if isinstance(it, list) else [it])
        return out
    items = render(loop, v)
    if isinstance(items, str):
        items = [items] if "{{" not in str(loop) else items
    if not isinstance(items, list):
        raise TemplateError(f"loop must be a list, got {type(items).__name__}: {items!r}"[:200])
    return items


def failure_text(result: dict) -> str:
    msg = result.get("msg") or ""
    if result.get("stderr") and msg in ("non-zero return code", ""):
        msg = f"{msg}: {result['stderr']}".strip(": ")
    return str(msg)


def ok_text(task, result: dict) -> str:
    return str(result.get("_display", "")) if task.module == "debug" else ""


def prepare_unarchive(hp, task, args: dict, v: dict) -> dict:
    if args.get("remote_src") or args.get("copy") is False:
        return {k: val for k, val in args.items() if k not in ("remote_src", "copy")}
    path = find_source(task, str(args["src"]), "files")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"could not find or access '{path}': {exc.strerror or exc}") from None
    return dict(args, _data=base64.b64encode(data).decode("ascii"))


PREPARE: dict = {"unarchive": prepare_unarchive}
