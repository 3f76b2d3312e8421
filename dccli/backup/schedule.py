"""Cron schedules for `dccli backup run`: validation and rendering are pure; install/remove write files.

/etc/cron.d rules Debian's cron enforces (man 8 cron): the file name holds only letters, digits, `_` and
`-` (a name with a dot is silently ignored), the file is owned by root and not writable by group or
others. In the command field `%` means newline, so it is escaped as `\\%`. A cron job's environment is
nearly empty: PATH and the DCCLI_* variables are set in the file so the run finds dccli and its state.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dccli.errors import UsageError

CRON_D = Path("/etc/cron.d")
MARK = "dccli-backup"
_MACROS = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@reboot"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, low, high, names that may stand for numbers)
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_SAFE_VALUE = re.compile(r"[^\x00-\x1f\x7f]*\Z")


def validate_cron(expr: str) -> str:
    """A normalised 5-field cron expression (or @macro); UsageError naming the bad field otherwise."""
    text = " ".join(expr.split())
    if text in _MACROS:
        return text
    parts = text.split(" ")
    if len(parts) != 5:
        raise UsageError(
            f"--cron {expr!r}: expected 5 fields (minute hour day month weekday) or one of "
            f"{', '.join(sorted(_MACROS))}"
        )
    for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            problem = _item_problem(item.lower(), low, high, names)
            if problem:
                raise UsageError(f"--cron {expr!r}: {name} field {part!r}: {problem}")
    return text


def _item_problem(item: str, low: int, high: int, names: list[str] | None) -> str | None:
    base, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"step {step!r} is not a positive number"
    if base == "*":
        return None
    ends = base.split("-")
    if len(ends) > 2 or not all(ends):
        return f"{item!r} is not a number, a range or *"
    values = []
    for end in ends:
        if end.isdigit():
            values.append(int(end))
        elif names and end in names and len(ends) == 1 and not step:
            values.append(low + names.index(end))
        elif names and end in names:
            return f"names like {end!r} cannot be used in ranges or steps (Debian cron)"
        else:
            return f"{end!r} is not a number" + (f" or one of {', '.join(names)}" if names else "")
    for v in values:
        if not low <= v <= high:
            return f"{v} is out of range {low}-{high}"
    if len(values) == 2 and values[0] > values[1]:
        return f"range {base!r} runs backwards"
    if step and len(values) == 1:
        return f"{item!r}: a step needs * or a range before it"
    return None


def entry_name(cluster: str, profile: str | None) -> str:
    """The /etc/cron.d file name: letters, digits, _ and - only (cron ignores names with dots)."""
    raw = f"{MARK}-{cluster}-{profile or 'all'}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)


@dataclass(frozen=True)
class CronJob:
    schedule: str  # validated
    argv: tuple[str, ...]  # the dccli command
    env: tuple[tuple[str, str], ...]  # PATH, DCCLI_HOME, DCCLI_INVENTORY, NO_COLOR
    log: str  # file the job's output is appended to
    name: str


def _check_value(what: str, value: str) -> str:
    if not _SAFE_VALUE.match(value):
        raise UsageError(f"{what} must not contain newlines or control characters")
    return value


def command_line(job: CronJob) -> str:
    """The command field: shell-quoted argv, output to the log, every % escaped for cron."""
    for arg in job.argv:
        _check_value("a scheduled command's argument", arg)
    _check_value("the log path", job.log)
    text = " ".join(shlex.quote(a) for a in job.argv) + f" >> {shlex.quote(job.log)} 2>&1"
    return text.replace("%", "\\%")


def render_cron_d(job: CronJob, user: str = "root") -> str:
    lines = [
        f"# {job.name}: installed by `dccli backup schedule`; remove with --remove. Do not edit.",
        "SHELL=/bin/sh",
    ]
    for key, value in job.env:
        lines.append(f"{key}={_check_value(key, value)}")
    lines.append(f"{job.schedule} {user} {command_line(job)}")
    return "\n".join(lines) + "\n"


def render_user_block(job: CronJob) -> str:
    """Lines for a user crontab; env goes through `env` on the command so the user's other entries keep theirs."""
    env = " ".join(shlex.quote(f"{k}={_check_value(k, v)}").replace("%", "\\%") for k, v in job.env)
    return f"# BEGIN {job.name}\n{job.schedule} env {env} {command_line(job)}\n# END {job.name}\n"


def strip_user_block(crontab: str, name: str) -> str:
    out, skipping = [], False
    for line in crontab.splitlines(keepends=True):
        if line.strip() == f"# BEGIN {name}":
            skipping = True
            continue
        if skipping and line.strip() == f"# END {name}":
            skipping = False
            continue
        if not skipping:
            out.append(line)
    return "".join(out)


def install_cron_d(job: CronJob, directory: Path = CRON_D) -> Path:
    """Write /etc/cron.d/<name> atomically: root-owned, 0644, complete before cron can see it."""
    if os.geteuid() != 0:
        raise UsageError("writing /etc/cron.d needs root; use --user for your own crontab")
    path = directory / job.name
    tmp = directory / f".{job.name}.tmp"  # a dotted name: cron ignores it while it is being written
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_cron_d(job))
    os.chmod(tmp, 0o644)
    os.chown(tmp, 0, 0)
    os.replace(tmp, path)
    return path


def remove_cron_d(name: str, directory: Path = CRON_D) -> bool:
    try:
        (directory / name).unlink()
        return True
    except FileNotFoundError:
        return False


def _crontab_read() -> str:
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return proc.stdout if proc.returncode == 0 else ""  # "no crontab for user" exits 1


def _crontab_write(text: str) -> None:
    proc = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UsageError(f"crontab refused the new table: {proc.stderr.strip()}")


def install_user(job: CronJob) -> None:
    _crontab_write(strip_user_block(_crontab_read(), job.name) + render_user_block(job))


def remove_user(name: str) -> bool:
    current = _crontab_read()
    stripped = strip_user_block(current, name)
    if stripped == current:
        return False
    _crontab_write(stripped)
    return True
