"""Rendering for `dccli keys`: plain lines (stdout = data), one per host."""

from __future__ import annotations

import time


def short(fp: str | None) -> str:
    return (fp or "-")[:19] + ("…" if fp and len(fp) > 19 else "")


def rotation_lines(report) -> list[str]:
    key = report.key
    verb = "new key" if report.generated else "continuing rotation to key"
    lines = [f"# {verb} {key['name']} ({key['type']} {key['fingerprint']})"]
    width = max((len(h.host) for h in report.hosts), default=0)
    for h in report.hosts:
        if h.outcome == "failed":
            keeps = "the new key (already switched)" if h.uses else "its current key"
            lines.append(
                f"{h.host:<{width}}  FAILED at {h.step}: {_strip(h.host, h.error)}; still accepts {keeps}"
            )
        else:
            gone = f", removed {', '.join(short(f) for f in h.removed)}" if h.removed else ""
            lines.append(f"{h.host:<{width}}  {h.outcome}{gone} ({h.duration_s:.2f}s)")
    if report.archived:
        lines.append(f"# archived (no host uses them): {', '.join(report.archived)}")
    return lines


def _strip(host: str, error: str | None) -> str:
    return (error or "").removeprefix(host + ": ")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def when(epoch: float | None) -> str:
    return "-" if not epoch else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def status_lines(rows) -> list[str]:
    header = ("HOST", "DCCLI KEYS AUTHORIZED", "LOGIN KEY AGE", "LAST ROTATION", "HOST KEY", "CA")
    table = [header]
    for r in rows:
        if r.error:
            table.append((r.host, f"error: {_strip(r.host, r.error)}", "", "", "", ""))
            continue
        keys = ", ".join(f"{k['name']}{'*' if k['current'] else ''}" for k in r.authorized) or "none"
        last = r.last_rotation or {}
        rot = f"{when(last.get('at'))} {last.get('outcome', '')}".strip() if last else "never"
        hk = r.host_key
        hk_text = (
            f"{short(hk.get('fingerprint'))} {'known' if hk.get('known') else 'NOT KNOWN'}" if hk else "-"
        )
        ca = "-" if r.ca_trusted is None else ("trusted" if r.ca_trusted else "no")
        table.append((r.host, keys, age(r.key_age_s), rot, hk_text, ca))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
