"""One host's run of one play: tasks in order over one interactive session, templating on the control node.

Semantics follow Ansible's linear strategy as seen from one host: a failed task stops the host (unless
ignore_errors or a block's rescue); skipped/changed/ok/rescued/ignored are counted as Ansible's PLAY RECAP
counts them; handlers run at the end of the play or at `meta: flush_handlers`, once each, in definition order.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from dccli.errors import AuthError, TransportError
from dccli.playbook import actions, planner
from dccli.playbook.context import Latch, Options, PlayRun
from dccli.playbook.events import HostStats, TaskDone
from dccli.playbook.model import Block, Node, Task
from dccli.playbook.templating import TemplateError, condition, render
from dccli.playbook.vars import task_vars


class HostFailed(Exception):
    """The host's run stops here (a failed task, not rescued)."""


class EndPlay(Exception):
    """meta: end_play / end_host."""


class HostPlay:
    def __init__(self, run: PlayRun, host, pool) -> None:
        self.run_ = run
        self.play = run.play
        self.host = host
        self.pool = pool
        self.stats = HostStats()
        self.session = None
        self.notified: list[str] = []
        self.failed = False

    # -- entry -----------------------------------------------------------------------------------
    def run(self) -> tuple[str, HostStats]:
        from dccli.playbook.channel import Session

        try:
            try:
                self.session = Session(
                    self.pool.get(self.host), become=self.needs_become(), **self.session_files()
                )
            except TransportError:
                self.arrive()
                raise
            try:
                if actions.truthy(self.play.gather_facts):
                    self.gather_facts()
                self.arrive(wait=True)
                self.run_nodes(self.play.tasks, ())
                self.flush_handlers()
            except EndPlay:
                pass
            except HostFailed:
                self.failed = True
            finally:
                self.arrive()
                self.session.close()
        except TransportError as exc:
            self.stats.unreachable += 1
            self.emit_done(self.current or "(connect)", "unreachable", msg=str(exc))
            # a refused host key or login is exit 4, not 3 (AuthError is a TransportError)
            return ("auth" if isinstance(exc, AuthError) else "unreachable"), self.stats
        return ("failed" if self.failed else "ok"), self.stats

    current: str | None = None
    last_failure: tuple[Task, dict] | None = None
    arrived = False
    no_log = False

    def arrive(self, wait: bool = False) -> None:
        latch = self.run_.facts_latch
        if latch is None:
            return
        if not self.arrived:
            self.arrived = True
            latch.arrive()
        if wait:
            latch.wait(timeout=600)

    def session_files(self) -> dict:
        return {"files": self.run_.files} if self.run_.files else {}

    def needs_become(self) -> bool:
        user = getattr(self.host, "user", None) or self.host_user()
        return bool(actions.truthy(self.play.become)) and user != "root"

    def host_user(self) -> str:
        try:
            return self.pool.endpoint(self.host).user
        except Exception:
            return "root"

    def emit_done(self, task: str, status: str, **kw: Any) -> None:
        if self.no_log:
            kw["result"] = {}
            kw["msg"] = "the output has been hidden due to the fact that 'no_log: true' was specified"
        self.run_.emit(TaskDone(self.host.name, task, status, **kw))

    # -- facts -----------------------------------------------------------------------------------
    def gather_facts(self) -> None:
        from dccli.playbook.factsmap import ansible_facts

        self.current = "Gathering Facts"
        t0 = time.monotonic()
        res = self.session.call("gather_facts", {})
        if res.get("failed"):
            self.stats.failed += 1
            self.emit_done("Gathering Facts", "failed", msg=str(res.get("msg")))
            raise HostFailed()
        self.run_.state[self.host.name]["facts"] = ansible_facts(self.host.name, res["raw"])
        self.stats.ok += 1
        self.emit_done("Gathering Facts", "ok", duration_s=time.monotonic() - t0)

    # -- the tree --------------------------------------------------------------------------------
    def run_nodes(self, nodes: tuple[Node, ...], parents: tuple[Block, ...]) -> None:
        for node in nodes:
            if self.run_.abort.is_set():
                raise HostFailed()
            if isinstance(node, Block):
                self.run_block(node, (*parents, node))
            else:
                self.run_task(node, parents)

    def run_block(self, block: Block, chain: tuple[Block, ...]) -> None:
        try:
            self.run_nodes(block.block, chain)
        except HostFailed:
            if not block.rescue or self.run_.abort.is_set():
                self.run_always(block, chain)
                raise
            self.stats.rescued += 1
            self.stats.failed -= 1  # Ansible counts a rescued failure as rescued, not failed
            if self.last_failure is not None:
                failed_task, failed_result = self.last_failure
                self.run_.state[self.host.name]["set"].update(
                    ansible_failed_task={"name": failed_task.display_name, "action": failed_task.module},
                    ansible_failed_result=failed_result,
                )
            try:
                self.run_nodes(block.rescue, chain)
            except HostFailed:
                self.run_always(block, chain)
                raise
        self.run_always(block, chain)

    def run_always(self, block: Block, chain: tuple[Block, ...]) -> None:
        if block.always:
            self.run_nodes(block.always, chain)

    def selected(self, task: Task, chain: tuple[Block, ...]) -> bool:
        tags = set(self.play.tags) | set(task.tags)
        for b in chain:
            tags |= set(b.tags)
        return planner.tags_selected(tags, self.run_.options.tags, self.run_.options.skip_tags)

    # -- one task --------------------------------------------------------------------------------
    def run_task(self, task: Task, chain: tuple[Block, ...], handler: bool = False) -> None:
        if not handler and not self.selected(task, chain):
            return
        name = task.display_name
        self.current = name
        self.no_log = task.no_log
        t0 = time.monotonic()
        base = task_vars(self.run_, self.host, chain, task)
        with contextlib.suppress(TemplateError):
            name = str(render(task.display_name, base)) if "{{" in task.display_name else name
        when = [c for b in chain for c in b.when] + list(task.when)
        ignore = False
        try:
            ignore = self.ignore_errors(task, chain, base)
            if task.module == "meta":
                if not when or condition(when, base):
                    self.meta(task, chain)
                return
            if task.loop is None:
                if when and not condition(when, base):
                    self.stats.skipped += 1
                    self.emit_done(
                        name,
                        "skipped",
                        where=str(task.where),
                        handler=handler,
                        msg="Conditional result was False",
                    )
                    self.register(
                        task,
                        {
                            "changed": False,
                            "skipped": True,
                            "skip_reason": "Conditional result was False",
                            "false_condition": when[-1],
                        },
                    )
                    return
                result = self.execute(task, chain, base)
            else:
                result = self.run_loop(task, chain, base, when, name, handler)
                if result is None:
                    return
        except TemplateError as exc:
            result = {"failed": True, "changed": False, "msg": f"{task.where}: {exc}"}
        except TransportError:
            raise
        self.finish(task, name, result, ignore, handler, time.monotonic() - t0, chain)

    def ignore_errors(self, task: Task, chain: tuple[Block, ...], v: Mapping[str, Any]) -> bool:
        value = task.ignore_errors
        if not value:
            for b in reversed(chain):
                if b.ignore_errors is not None:
                    value = b.ignore_errors
                    break
        return bool(actions.truthy(render(value, v) if isinstance(value, str) else value))

    def finish(
        self,
        task: Task,
        name: str,
        result: dict,
        ignore: bool,
        handler: bool,
        duration: float,
        chain: tuple[Block, ...],
    ) -> None:
        summary = task.loop is not None
        if result.get("skipped") and not result.get("failed"):
            self.stats.skipped += 1
            self.register(task, result)
            self.emit_done(
                name,
                "skipped",
                where=str(task.where),
                handler=handler,
                result=result,
                msg=str(result.get("msg") or ""),
                summary=summary,
            )
            return
        self.register(task, result)
        failed = bool(result.get("failed"))
        changed = bool(result.get("changed"))
        if failed and not ignore:
            self.stats.failed += 1
            self.last_failure = (task, result)
            self.emit_done(
                name,
                "failed",
                where=str(task.where),
                handler=handler,
                result=result,
                msg=actions.failure_text(result),
                duration_s=duration,
                summary=summary,
            )
            if actions.truthy(self.play.any_errors_fatal):
                self.run_.abort.set()
            raise HostFailed()
        self.stats.ok += 1
        if failed:
            self.stats.ignored += 1
        if changed:
            self.stats.changed += 1
            for n in task.notify:
                if n not in self.notified:
                    self.notified.append(n)
        status = "ignored" if failed else "changed" if changed else "ok"
        self.emit_done(
            name,
            status,
            where=str(task.where),
            handler=handler,
            result=result,
            msg=actions.failure_text(result) if failed else actions.ok_text(task, result),
            duration_s=duration,
            summary=summary,
        )

    def register(self, task: Task, result: dict) -> None:
        if task.register:
            self.run_.state[self.host.name]["set"][task.register] = result

    def run_loop(self, task: Task, chain, base, when, name: str, handler: bool) -> dict | None:
        items = actions.loop_items(task, base)
        results: list[dict] = []
        for index, item in enumerate(items):
            if index and task.loop_pause:
                time.sleep(float(render(task.loop_pause, base)))
            v = dict(base)
            v[task.loop_var] = item
            if task.index_var:
                v[task.index_var] = index
            v["ansible_loop_var"] = task.loop_var
            label = render(task.loop_label, v) if task.loop_label is not None else item
            if when and not condition(when, v):
                r = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
            else:
                try:
                    r = self.execute(task, chain, v)
                except TemplateError as exc:
                    r = {"failed": True, "changed": False, "msg": f"{task.where}: {exc}"}
            r[task.loop_var] = item
            r["ansible_loop_var"] = task.loop_var
            results.append(r)
            status = (
                "failed"
                if r.get("failed")
                else "skipped"
                if r.get("skipped")
                else "changed"
                if r.get("changed")
                else "ok"
            )
            self.emit_done(
                name,
                status,
                where=str(task.where),
                item=label,
                handler=handler,
                result=r,
                msg=actions.failure_text(r) if r.get("failed") else "",
            )
        if not results:
            return {
                "changed": False,
                "skipped": True,
                "skipped_reason": "No items in the list",
                "results": [],
            }
        out: dict[str, Any] = {
            "results": results,
            "msg": "All items completed",
            "changed": any(r.get("changed") for r in results),
        }
        if all(r.get("skipped") for r in results):
            out["skipped"] = True
        if any(r.get("failed") for r in results):
            out["failed"] = True
            out["msg"] = "One or more items failed"
        return out

    def execute(self, task: Task, chain, v: dict) -> dict:
        """One module call (one loop item), with until/retries and changed_when/failed_when applied."""
        attempts = 0
        while True:
            attempts += 1
            result = self.call_module(task, chain, v)
            self.apply_conditions(task, result, v)
            if task.until is None:
                return result
            probe = dict(v)
            if task.register:
                probe[task.register] = result
            if condition(task.until, probe):
                result["attempts"] = attempts
                return result
            retries = int(render(task.retries, v))
            if attempts > retries:
                result["failed"] = True
                result["attempts"] = attempts
                result.setdefault("msg", "Retries exhausted")
                return result
            time.sleep(float(render(task.delay, v)))

    def apply_conditions(self, task: Task, result: dict, v: dict) -> None:
        if task.changed_when is None and task.failed_when is None:
            return
        probe = dict(v)
        probe.update(
            {k: val for k, val in result.items() if isinstance(k, str)}
        )  # `rc`, `stdout` bare, as Ansible
        if task.register:
            probe[task.register] = result
        if task.changed_when is not None:
            result["changed"] = condition(task.changed_when, probe)
        if task.failed_when is not None:
            result["failed_when_result"] = failed = condition(task.failed_when, probe)
            result["failed"] = failed
            if not failed:
                result.pop("msg", None) if result.get("msg") == "non-zero return code" else None

    def check_mode(self, task: Task, chain) -> bool:
        for value in [task.check_mode, *[b.check_mode for b in reversed(chain)], self.play.check_mode]:
            if value is not None:
                return bool(actions.truthy(value))
        return self.run_.options.check

    def call_module(self, task: Task, chain, v: dict) -> dict:
        check = self.check_mode(task, chain)
        diff = self.run_.options.diff if task.diff is None else bool(actions.truthy(task.diff))
        if task.module in actions.LOCAL:
            return actions.LOCAL[task.module](self, task, v)
        args = render(dict(task.args), v)
        env: dict[str, Any] = {}
        for source in [self.play.environment, *[b.environment for b in chain], task.environment]:
            rendered = render(source if isinstance(source, str) else dict(source), v)
            if not isinstance(rendered, dict):
                raise TemplateError(f"environment must be a mapping, got {type(rendered).__name__}")
            env.update(rendered)
        if task.module == "copy" and actions.is_dir_source(task, args):
            return actions.copy_tree(
                self.session, self.pool.get(self.host), task, args, check=check, diff=diff
            )
        if task.module in ("copy", "template"):
            args = actions.prepare_copy(task, args, v)
            return actions.call_copy(self.session, self.pool.get(self.host), args, check=check, diff=diff)
        elif task.module == "reboot":
            from dccli.playbook.reboot import reboot

            return reboot(self, args, check)
        elif task.module in actions.PREPARE:
            args = actions.PREPARE[task.module](self, task, args, v)
        kind = "service" if task.module in ("systemd", "systemd_service") else task.module
        return self.session.call(kind, args, check=check, diff=diff, env=env)

    # -- handlers and meta ---------------------------------------------------------------------------
    def flush_handlers(self) -> None:
        while self.notified:
            pending, self.notified = self.notified, []
            for h in self.play.handlers:
                if h.name in pending or set(h.listen) & set(pending):
                    self.run_task(h, (), handler=True)

    def meta(self, task: Task, chain) -> None:
        action = task.args.get("_raw_params")
        if action == "flush_handlers":
            self.flush_handlers()
        elif action in ("end_play", "end_host", "end_batch"):
            raise EndPlay()
        elif action == "clear_host_errors":
            self.failed = False


__all__ = ["HostFailed", "HostPlay", "Latch", "Options", "PlayRun"]
