"""restic argv lists and output parsers: pure functions, no I/O.

Every command is an argv list (never a shell string); user text (paths, patterns) only ever follows an
option or `--`, so it cannot become an option. The repository and password are not in these lists: they
travel as RESTIC_REPOSITORY and a password pipe (see backup/hostside.py and repo.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dccli.backup.profile import Profile, Retention

TAG = "dccli"


def tags(host: str, profile: str, run_id: str) -> list[str]:
    """Snapshot tags: restic tags cannot hold commas; host names, identifiers and run ids never do."""
    return [TAG, f"host:{host}", f"profile:{profile}", f"run:{run_id}"]


def backup_argv(profile: Profile, host: str, run_id: str) -> list[str]:
    argv = ["backup", "--json", "--host", host]
    for tag in tags(host, profile.name, run_id):
        argv += ["--tag", tag]
    for pattern in profile.excludes:
        argv += ["--exclude", pattern]
    # The host step inserts `--exclude DIR` for incomplete checkpoints right before "--".
    return [*argv, "--", *profile.paths]


def snapshots_argv(host: str | None = None, profile: str | None = None) -> list[str]:
    argv = ["snapshots", "--json", "--tag", TAG]
    if host:
        argv += ["--host", host]
    if profile:
        argv += ["--tag", f"profile:{profile}"]
    return argv


def restore_argv(
    snapshot: str, target: str, host: str, profile: str | None, includes: Iterable[str] = ()
) -> list[str]:
    argv = ["restore", snapshot, "--target", target]
    if snapshot == "latest":  # `latest` of this host (and profile), not of the whole repository
        argv += ["--host", host]
        if profile:
            argv += ["--tag", f"profile:{profile}"]
    for path in includes:
        argv += ["--include", path]
    return argv


def check_argv(subset: int | None, of: int | None) -> list[str]:
    if subset is None or of is None or of <= 1:
        return ["check", "--read-data"] if of == 1 else ["check"]
    return ["check", "--read-data-subset", f"{subset}/{of}"]


def forget_argv(profile: str, retention: Retention) -> list[str]:
    """Forget by the profile's policy, per host and path set; prune follows as its own command."""
    argv = ["forget", "--json", "--tag", f"profile:{profile}", "--group-by", "host,paths"]
    for flag, value in (
        ("--keep-last", retention.keep_last),
        ("--keep-daily", retention.keep_daily),
        ("--keep-weekly", retention.keep_weekly),
        ("--keep-monthly", retention.keep_monthly),
    ):
        if value:
            argv += [flag, str(value)]
    return argv


def next_subset(previous: int | None, of: int) -> int:
    """The rotating --read-data-subset n/N: 1..N then 1 again, so N runs read every pack."""
    if previous is None or previous >= of or previous < 1:
        return 1
    return previous + 1


@dataclass(frozen=True)
class BackupSummary:
    snapshot_id: str | None
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    files_processed: int = 0
    bytes_processed: int = 0
    data_added: int = 0
    duration_s: float = 0.0
    errors: tuple[str, ...] = ()

    @property
    def files(self) -> int:
        return self.files_processed

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "files_new": self.files_new,
            "files_changed": self.files_changed,
            "files_unmodified": self.files_unmodified,
            "files": self.files_processed,
            "bytes_processed": self.bytes_processed,
            "bytes_added": self.data_added,
            "restic_duration_s": self.duration_s,
            "errors": list(self.errors),
        }


def parse_backup_json(stdout: str, stderr: str = "") -> BackupSummary:
    """`restic backup --json` output (0.14 and later): the summary line and every error line.

    restic 0.14 exits 0 when a source is missing ("does not exist, skipping" on stderr, not JSON) and 3
    when a file could not be read: both end up in `errors`, and a non-empty `errors` is a failure.
    """
    summary: dict[str, Any] = {}
    errors: list[str] = []
    # 0.14 writes summary and status to stdout, error messages as JSON to stderr; plain warnings too.
    for line in [*stdout.splitlines(), *stderr.splitlines()]:
        line = line.strip()
        if not line.startswith("{"):
            low = line.lower()
            if (
                "does not exist, skipping" in low
                or "could not be read" in low
                or low.startswith("fatal")
                or low.startswith("error")
            ):
                errors.append(line)
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        kind = msg.get("message_type")
        if kind == "summary":
            summary = msg
        elif kind == "error":
            errors.append(_error_text(msg))
    return BackupSummary(
        snapshot_id=summary.get("snapshot_id"),
        files_new=int(summary.get("files_new") or 0),
        files_changed=int(summary.get("files_changed") or 0),
        files_unmodified=int(summary.get("files_unmodified") or 0),
        files_processed=int(summary.get("total_files_processed") or 0),
        bytes_processed=int(summary.get("total_bytes_processed") or 0),
        data_added=int(summary.get("data_added") or 0),
        duration_s=float(summary.get("total_duration") or 0.0),
        errors=tuple(dict.fromkeys(errors)),
    )


def _error_text(msg: dict[str, Any]) -> str:
    """An error message line: {"error": {"Op","Path","Err"} or {"message"}, "item": ...}."""
    import os

    err = msg.get("error")
    item = msg.get("item") or ""
    if isinstance(err, dict):
        if "message" in err:
            text = str(err["message"])
        else:
            code = err.get("Err")
            reason = os.strerror(code) if isinstance(code, int) else str(code)
            text = f"{err.get('Op', 'error')}: {reason}"
    else:
        text = str(err)
    return f"{item}: {text}" if item else text


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: str
    host: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]

    def tag(self, prefix: str) -> str | None:
        for t in self.tags:
            if t.startswith(prefix + ":"):
                return t[len(prefix) + 1 :]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.time,
            "host": self.host,
            "paths": list(self.paths),
            "tags": list(self.tags),
            "profile": self.tag("profile"),
            "run_id": self.tag("run"),
        }


def parse_snapshots(stdout: str) -> list[Snapshot]:
    """`restic snapshots --json`: a JSON list (null when empty on some versions)."""
    data = json.loads(stdout or "[]") or []
    out = []
    for s in data:
        sid = str(s.get("id", ""))
        out.append(
            Snapshot(
                sid,
                str(s.get("short_id") or sid[:8]),
                str(s.get("time", "")),
                str(s.get("hostname", "")),
                tuple(s.get("paths") or ()),
                tuple(s.get("tags") or ()),
            )
        )
    return sorted(out, key=lambda s: s.time)


def is_not_initialized(stderr: str) -> bool:
    """restic's complaint about a missing repository, told apart from one it could not reach or read.

    restic 0.14: "Fatal: unable to open config file: <why>" then "Is there a repository at the following
    location?" for EVERY reason, a rest-server's 401/403 and a refused connection included; only a
    config that does not exist means "no repository" (local/sftp: "no such file or directory", rest:
    "<config/> does not exist"). Later versions say "repository does not exist". Anything else must not
    lead to `restic init` (wrong rest credentials would end in a confusing init failure).
    """
    low = stderr.lower()
    if "repository does not exist" in low:
        return True
    if "unable to open config file" not in low:
        return False
    reason = low.split("unable to open config file", 1)[1].split("\n", 1)[0]
    return "no such file or directory" in reason or "does not exist" in reason


def fatal_line(stderr: str) -> str:
    """The line that says what went wrong: restic's "Fatal: ..." (its last lines are often only "Is there
    a repository at the following location?" and the URL)."""
    lines = [x.strip() for x in stderr.strip().splitlines() if x.strip()]
    fatal = [x for x in lines if x.lower().startswith("fatal:")]
    return (fatal or lines or ["restic failed without a message"])[-1]
