"""The inventory's `backup:` section: repositories and profiles as frozen values.

Shape and field values are checked by schema tables (the loader calls `check_section` while it walks the
file, so every mistake names file:line:col and the key path); host selections and storage hosts can only
be resolved once the hosts are built, which `resolve_section` does right after. Both raise InventoryError.

    backup:
      concurrency: 8                       # hosts backed up at once (default 8)
      repositories:
        ckpt: {url: "sftp:stor01:/srv/restic/ckpt"}    # or a control-node path, or rest:http(s)://...
      profiles:
        checkpoints:
          hosts: "@gpu"                    # node-set expression(s), default every host
          repository: ckpt
          paths: [/data/ckpt, /etc]
          excludes: ["*.tmp"]
          checkpoints: {dirs: [/data/ckpt], marker: COMPLETE}   # or pattern: "*.done"
          retention: {keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 6}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dccli.inventory import fields
from dccli.inventory.schema import (
    Field,
    Record,
    Schema,
    integer,
    list_of,
    mapping_of,
    section,
    string,
    string_or_list,
)
from dccli.inventory.yamlnodes import Source, YNode

LOCAL, SFTP, REST = "local", "sftp", "rest"
_SFTP = re.compile(r"sftp:(?:(?P<user>[A-Za-z_][A-Za-z0-9_.-]*)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>/.*)\Z")
_REST = re.compile(r"rest:https?://[^\s]+\Z")
# restic patterns are matched against paths; anything printable goes, but not newlines or NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Repository:
    name: str
    kind: str  # local | sftp | rest
    url: str  # as written: a path, sftp:host:/path or rest:http(s)://...
    host: str | None = None  # sftp: the storage host (an inventory host)
    path: str | None = None  # local and sftp: the repository's directory

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.redacted,
            "host": self.host,
            "path": self.path,
        }

    @property
    def redacted(self) -> str:
        """The URL without any user:password of a rest-server URL (never printed or logged)."""
        return re.sub(r"//[^/@]*@", "//***@", self.url)


@dataclass(frozen=True)
class Retention:
    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None

    @property
    def empty(self) -> bool:
        return not any((self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly))

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep_last": self.keep_last,
            "keep_daily": self.keep_daily,
            "keep_weekly": self.keep_weekly,
            "keep_monthly": self.keep_monthly,
        }


@dataclass(frozen=True)
class CheckpointRule:
    """Each direct subdirectory of each of `dirs` is one checkpoint; it is complete when it holds `marker`
    (a file name) or a file matching `pattern` (a glob). Incomplete ones are excluded and reported."""

    dirs: tuple[str, ...]
    marker: str | None = None
    pattern: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dirs": list(self.dirs), "marker": self.marker, "pattern": self.pattern}


@dataclass(frozen=True)
class Profile:
    name: str
    repository: str
    hosts: tuple[str, ...]  # resolved host names, inventory order
    paths: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    checkpoints: CheckpointRule | None = None
    retention: Retention = field(default_factory=Retention)
    source: str = ""  # file:line

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repository": self.repository,
            "hosts": list(self.hosts),
            "paths": list(self.paths),
            "excludes": list(self.excludes),
            "checkpoints": self.checkpoints.to_dict() if self.checkpoints else None,
            "retention": self.retention.to_dict(),
            "source": self.source,
        }


@dataclass(frozen=True)
class BackupConfig:
    repositories: Mapping[str, Repository]
    profiles: Mapping[str, Profile]
    concurrency: int = 8

    def profile(self, name: str) -> Profile:
        from dccli.errors import UsageError

        if name not in self.profiles:
            hint = fields.did_you_mean(name, self.profiles)
            raise UsageError(f"no backup profile {name!r}{hint} (profiles: {', '.join(self.profiles)})")
        return self.profiles[name]


# ---- field checks --------------------------------------------------------------------------------------


def _abs_path_problem(value: str) -> str | None:
    if not value.startswith("/"):
        return "must be an absolute path"
    if _CONTROL.search(value):
        return "must not contain control characters"
    if "/../" in value + "/" or len(value) > 4096:
        return "must not contain '..' components"
    return None


def _pattern_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if _CONTROL.search(value):
        return "must not contain control characters"
    return None


def _file_name_problem(value: str) -> str | None:
    if not value or value in (".", "..") or "/" in value or _CONTROL.search(value):
        return "must be a plain file name (no '/')"
    return None


def _url_problem(value: str) -> str | None:
    if value.startswith("sftp:"):
        match = _SFTP.match(value)
        if not match:
            return "is not an sftp repository (write sftp:HOST:/absolute/path, HOST an inventory host)"
        return _abs_path_problem(match["path"])
    if value.startswith("rest:"):
        return None if _REST.match(value) else "is not a rest-server URL (rest:http(s)://host:port/path)"
    if value.startswith("/"):
        return _abs_path_problem(value)
    return "is not a repository (an absolute path on the control node, sftp:HOST:/path or rest:http(s)://...)"


_abs_paths = list_of(string(_abs_path_problem, "an absolute path"), "a list of absolute paths")
_keep = integer(1, 100_000)

REPOSITORY: Schema = {
    "url": Field(
        string(_url_problem, "a repository URL"),
        required=True,
        doc="control-node path, sftp:HOST:/path or rest:http(s)://...",
    ),
}
RETENTION: Schema = {
    "keep_last": Field(_keep),
    "keep_daily": Field(_keep),
    "keep_weekly": Field(_keep),
    "keep_monthly": Field(_keep),
}
CHECKPOINTS: Schema = {
    "dirs": Field(_abs_paths, required=True, doc="directories whose subdirectories are checkpoints"),
    "marker": Field(string(_file_name_problem, "a file name"), doc="file that marks a complete checkpoint"),
    "pattern": Field(string(_file_name_problem, "a glob"), doc="glob of a file that marks completeness"),
}
PROFILE: Schema = {
    "hosts": Field(
        string_or_list(string(what="a node-set expression"), "a node-set expression or a list"),
        doc="hosts backed up (default all)",
    ),
    "repository": Field(string(fields.identifier_problem, "a repository name"), required=True),
    "paths": Field(_abs_paths, required=True),
    "excludes": Field(list_of(string(_pattern_problem, "a restic exclude pattern"), "a list of patterns")),
    "checkpoints": Field(section(CHECKPOINTS)),
    "retention": Field(section(RETENTION, allow_null=True)),
}
BACKUP: Schema = {
    "concurrency": Field(integer(1, 1024), doc="hosts backed up at once (default 8)"),
    "repositories": Field(
        mapping_of(fields.identifier_problem, section(REPOSITORY), "repository name"), required=True
    ),
    "profiles": Field(mapping_of(fields.identifier_problem, section(PROFILE), "profile name"), required=True),
}


def check_section(node: YNode, src: Source) -> Record:
    """Shape of the `backup:` section (called by the inventory loader for the key `backup`)."""
    record = section(BACKUP)(node, src)
    for _, (_, profile) in record.values["profiles"].items():
        rule: Record | None = profile.get("checkpoints")
        if rule is not None and ("marker" in rule) == ("pattern" in rule):
            raise src.error("give exactly one of 'marker' or 'pattern'", rule.node)
        if not profile.values["paths"]:
            raise src.error("at least one path is needed", profile.nodes["paths"])
    return record


def resolve_section(record: Record, inventory: Any, src: Source) -> BackupConfig:
    """Cross-checks against the built hosts: storage hosts exist, host selections match, repositories named."""
    from dccli.errors import UsageError

    repositories: dict[str, Repository] = {}
    for name, (_, rec) in record.values["repositories"].items():
        url = rec.values["url"]
        if url.startswith("sftp:"):
            match = _SFTP.match(url)
            assert match is not None  # checked by _url_problem
            host = match["host"]
            if host not in inventory:
                hint = fields.did_you_mean(host, inventory.names())
                raise src.error(f"storage host {host!r} is not an inventory host{hint}", rec.nodes["url"])
            repositories[name] = Repository(name, SFTP, url, host, match["path"])
        elif url.startswith("rest:"):
            repositories[name] = Repository(name, REST, url)
        else:
            repositories[name] = Repository(name, LOCAL, url, None, url)
    profiles: dict[str, Profile] = {}
    for name, (key_node, rec) in record.values["profiles"].items():
        v = rec.values
        if v["repository"] not in repositories:
            hint = fields.did_you_mean(v["repository"], repositories)
            raise src.error(f"unknown repository {v['repository']!r}{hint}", rec.nodes["repository"])
        hosts: list[str] = []
        for expr_node, expr in v.get("hosts", [(rec.node, None)]):
            try:
                chosen = [h.name for h in inventory.select(expr)]
            except UsageError as exc:
                raise src.error(str(exc).replace("--limit ", "", 1), expr_node) from None
            hosts += [h for h in chosen if h not in hosts]
        order = {n: i for i, n in enumerate(inventory.names())}
        rule = v.get("checkpoints")
        retention: Record | None = v.get("retention")
        profiles[name] = Profile(
            name=name,
            repository=v["repository"],
            hosts=tuple(sorted(hosts, key=order.__getitem__)),
            paths=tuple(v["paths"]),
            excludes=tuple(v.get("excludes", ())),
            checkpoints=CheckpointRule(tuple(rule.values["dirs"]), rule.get("marker"), rule.get("pattern"))
            if rule is not None
            else None,
            retention=Retention(**retention.values) if retention is not None else Retention(),
            source=f"{src.name}:{key_node.line}",
        )
    return BackupConfig(
        MappingProxyType(repositories), MappingProxyType(profiles), record.values.get("concurrency", 8)
    )


def config_of(inventory: Any) -> BackupConfig:
    """The inventory's backup section; a usage error naming the inventory when it has none."""
    from dccli.errors import UsageError

    config = getattr(inventory, "backup", None)
    if config is None:
        where = inventory.path or "the built-in inventory"
        raise UsageError(f"{where}: no 'backup:' section (see docs/backup.md)")
    return config
