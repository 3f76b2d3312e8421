"""Live `host: line` output and the clush -b style gathered view."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from dccli.executor import HostFinished, HostOutput
from dccli.output.console import Env

_PALETTE = (31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)
_SEP = "-" * 15  # clush/clubak's header rule


def host_color(name: str) -> int:
    # crc32, not hash(): the same host keeps its colour from one run to the next
    return _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]


class LiveLines:
    """Event sink printing each whole line as soon as it arrives; called under the executor's lock."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.width = 0

    def prefix(self, host: str, color: bool) -> str:
        if color:
            return f"\x1b[{host_color(host)}m{host}\x1b[0m: "
        return f"{host}: "

    def __call__(self, event: object) -> None:
        if isinstance(event, HostOutput):
            if event.stream == "stdout":
                self.env.stdout.write(self.prefix(event.host, self.env.color_stdout) + event.line + "\n")
                self.env.stdout.flush()
            else:
                self.env.stderr.write(self.prefix(event.host, self.env.color_stderr) + event.line + "\n")
                self.env.stderr.flush()
        elif isinstance(event, HostFinished):
            o = event.outcome
            if o.error and o.value is None:
                # connection-level failure: say it where the host's output would have been
                self.env.stderr.write(f"{self.prefix(o.host, self.env.color_stderr)}[{o.status}] {o.error}\n")
                self.env.stderr.flush()


def gather(results: Iterable, *, color: bool = False) -> list[str]:
    """clush -b: hosts with identical output and exit code folded under one node set."""
    from dccli.inventory.nodeset import fold

    groups: dict[tuple[str, int | None], list[str]] = {}
    for r in results:
        if r.error and r.exit_code is None:
            continue  # unreachable hosts are listed in the summary, not as output
        groups.setdefault((r.stdout, r.exit_code), []).append(r.host)
    lines: list[str] = []
    # Like clubak: the larger groups first, then by folded name.
    for (stdout, code), hosts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), fold(kv[1]))):
        label = fold(hosts)
        if len(hosts) > 1:
            label += f" ({len(hosts)})"
        if code not in (0, None):
            label += f" [exit {code}]"
        if color:
            label = f"\x1b[34m{label}\x1b[0m"
        lines += [_SEP, label, _SEP]
        lines += stdout.rstrip("\n").split("\n") if stdout else []
    return lines


def summary(group, noun: str = "hosts") -> list[str]:
    """One line of counts, then one line per host that did not end ok, naming its fate."""
    from dccli.inventory.nodeset import fold

    counts: dict[str, list[str]] = {}
    for o in group.outcomes:
        counts.setdefault(o.status, []).append(o.host)
    order = ["ok", "failed", "unreachable", "auth", "interrupted"]
    parts = [f"{len(counts[s])} {s}" for s in order if s in counts]
    lines = [f"{len(group.outcomes)} {noun}: " + ", ".join(parts) + f" in {group.wall_s:.2f}s"]
    for o in group.outcomes:
        if o.status == "ok":
            continue
        if o.status == "failed" and o.value is not None and getattr(o.value, "error", None) is None:
            lines.append(f"  {o.host}: failed, exit {o.value.exit_code}")
        else:
            err = o.error or getattr(o.value, "error", None) or o.status
            lines.append(f"  {o.host}: {o.status}: {err.removeprefix(o.host + ': ')}")
    bad = [o.host for o in group.outcomes if o.status != "ok"]
    if bad:
        lines.append(f"  retry them with: --limit @failed  ({fold(bad)})")
    return lines
