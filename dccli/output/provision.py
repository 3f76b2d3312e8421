"""Drawing `dccli provision`: live per-task lines on stderr, --diff unified diffs, PLAY RECAP, --json lines."""

from __future__ import annotations

import difflib
import json
from typing import Any

from dccli.output import jsonout
from dccli.output.console import Env
from dccli.playbook.events import RECAP_KEYS, HostStats, Notice, PlayStarted, TaskDone

_COLORS = {
    "ok": "32",
    "changed": "33",
    "failed": "31",
    "unreachable": "31",
    "skipped": "36",
    "rescued": "35",
    "ignored": "35",
}


class Progress:
    """The engine's event sink: one line per host per task, as `changed: [node01] conf`."""

    def __init__(
        self, env: Env, *, diff: bool = False, json_lines: bool = False, verbose: bool = False
    ) -> None:
        self.env = env
        self.diff = diff
        self.json_lines = json_lines
        self.verbose = verbose
        self.color = env.color_stderr

    def __call__(self, event: Any) -> None:
        if self.json_lines:
            if isinstance(event, TaskDone):
                payload = event.to_dict()
                if self.diff and event.result.get("diff"):
                    payload["diff"] = render_diff(event.result["diff"])
                self.env.out(jsonout.line(**payload))
            elif isinstance(event, PlayStarted):
                self.env.out(
                    jsonout.line(
                        event="play",
                        name=event.name,
                        hosts=list(event.hosts),
                        batch=event.batch,
                        batches=event.batches,
                    )
                )
            elif isinstance(event, Notice):
                self.env.out(jsonout.line(event="notice", host=event.host, text=event.text))
            self.env.stdout.flush()
            return
        if isinstance(event, PlayStarted):
            batch = f" (batch {event.batch}/{event.batches})" if event.batches > 1 else ""
            self.env.err(self._paint("1", f"PLAY [{event.name}]{batch}: {len(event.hosts)} hosts"))
        elif isinstance(event, Notice):
            self.env.err(f"{'[' + event.host + '] ' if event.host else ''}{event.text}")
        elif isinstance(event, TaskDone):
            self._task(event)

    def _task(self, e: TaskDone) -> None:
        if e.summary and e.status in ("ok", "changed", "skipped"):
            return  # the items' lines said it (as Ansible shows loops)
        label = f" (item={e.item})" if e.item is not None else ""
        prefix = "RUNNING HANDLER " if e.handler else ""
        line = f"{e.status}: [{e.host}] {prefix}{e.task}{label}"
        if (e.status in ("failed", "unreachable", "ignored") and e.msg) or (
            e.msg and e.status in ("ok", "changed") and (self.verbose or e.result.get("_display") is not None)
        ):
            line += f" => {e.msg}"
        self.env.err(self._paint(_COLORS.get(e.status, "0"), line))
        if self.diff and e.result.get("diff") and e.status in ("changed", "ok") and e.result.get("changed"):
            text = render_diff(e.result["diff"])
            if text:
                self.env.err(text.rstrip("\n"))

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text


def render_diff(diff: Any) -> str:
    """Ansible's diff dicts (before/after text or dicts, headers) as unified diffs."""
    parts = diff if isinstance(diff, list) else [diff]
    out: list[str] = []
    for d in parts:
        if not isinstance(d, dict) or ("before" not in d and "after" not in d):
            continue
        before, after = d.get("before", ""), d.get("after", "")
        if isinstance(before, dict) or isinstance(after, dict):
            before = json.dumps(before, indent=4, sort_keys=True) + "\n"
            after = json.dumps(after, indent=4, sort_keys=True) + "\n"
        if before == after:
            continue
        out.extend(
            difflib.unified_diff(
                str(before).splitlines(True),
                str(after).splitlines(True),
                f"before: {d.get('before_header', '')}".rstrip(": "),
                f"after: {d.get('after_header', '')}".rstrip(": "),
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def recap_lines(stats: dict[str, HostStats], color: bool = False) -> list[str]:
    """Ansible's PLAY RECAP, column for column."""
    lines = ["PLAY RECAP " + "*" * 68]
    for host, s in stats.items():
        d = s.to_dict()
        cells = " ".join(f"{k}={d[k]:<4}" for k in RECAP_KEYS)
        state = "failed" if d["failed"] or d["unreachable"] else "changed" if d["changed"] else "ok"
        name = f"{host:<26}"
        if color:
            name = f"\x1b[{_COLORS[state]}m{name}\x1b[0m"
        lines.append(f"{name} : {cells}")
    return lines


def recap_json(stats: dict[str, HostStats], exit_code: int, fates: dict[str, str]) -> str:
    return jsonout.line(
        event="recap",
        exit_code=exit_code,
        hosts={h: {**s.to_dict(), "fate": fates.get(h, "ok")} for h, s in stats.items()},
    )


class LiveBoard(Progress):
    """On a terminal: a live table (host, batch state, current task, counts) redrawn in place by rich;
    failures, diffs and notices scroll above it. Off a terminal Progress's plain lines are used instead."""

    def __init__(self, env: Env, *, diff: bool = False, verbose: bool = False) -> None:
        super().__init__(env, diff=diff, verbose=verbose)
        from rich.live import Live

        self.console = env.stderr_console()
        self.rows: dict[str, dict[str, Any]] = {}
        self.play = ""
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=True)

    def __enter__(self) -> LiveBoard:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._table())
        self.live.__exit__(None, None, None)
        self.console.print(self._table())  # the final state stays on screen

    def __call__(self, event: Any) -> None:
        if isinstance(event, PlayStarted):
            batch = f" (batch {event.batch}/{event.batches})" if event.batches > 1 else ""
            self.play = f"PLAY [{event.name}]{batch}"
            for h in event.hosts:
                self.rows.setdefault(h, {"task": "", "state": "running", **{k: 0 for k in RECAP_KEYS}})
                self.rows[h]["state"] = "running"
        elif isinstance(event, Notice):
            self.console.print(f"{'[' + event.host + '] ' if event.host else ''}{event.text}", markup=False)
        elif isinstance(event, TaskDone):
            row = self.rows.setdefault(
                event.host, {"task": "", "state": "running", **{k: 0 for k in RECAP_KEYS}}
            )
            row["task"] = event.task + (f" ({event.item})" if event.item is not None else "")
            if event.item is None:  # one count per task (a loop counts once, by its summary)
                key = {"failed": "failed", "unreachable": "unreachable", "skipped": "skipped"}.get(
                    event.status, "ok"
                )
                row[key] += 1
                row["changed"] += event.status == "changed"
            if event.status in ("failed", "unreachable"):
                row["state"] = event.status
                from rich.text import Text

                line = Text(f"{event.status}: [{event.host}] {event.task}", style="red")
                line.append(f" => {event.msg}" if event.msg else "")
                self.console.print(line, highlight=False)
            if self.diff and event.result.get("diff") and event.result.get("changed"):
                text = render_diff(event.result["diff"])
                if text:
                    self.console.print(text.rstrip("\n"), markup=False, highlight=False)
        self.live.update(self._table())

    def _table(self):
        from rich.markup import escape
        from rich.table import Table

        table = Table(
            title=escape(self.play) if self.play else None, title_justify="left", box=None, pad_edge=False
        )
        for col in ("host", "task", "ok", "changed", "failed", "skipped"):
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60 if col == "task" else None)
        for host, r in self.rows.items():
            style = (
                "red" if r["state"] in ("failed", "unreachable") else "yellow" if r["changed"] else "green"
            )
            table.add_row(
                host,
                r["task"],
                str(r["ok"]),
                str(r["changed"]),
                str(r["failed"] + r["unreachable"]),
                str(r["skipped"]),
                style=style,
            )
        return table
