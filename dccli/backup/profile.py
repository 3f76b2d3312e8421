"""The inventory's `backup:` section: repositories and profiles as frozen values.

Shape and field values are checked by schema tables (the loader calls `check_section` while it walks the
file, so every mistake names file:line:col and the key path); host selections and storage hosts can only
be resolved once the hosts are built, which `resolve_section` does right after. Both raise InventoryError.

    backup:
      concurrency: 8                       # hosts backed up at once (default 8)
      repositories:
        ckpt: {url: "sftp:stor01:/srv/restic/ckpt"}    # or a control-node path, or rest:http(s)://...
        off:  {url: "rest:https://user:password@backup.example.org:8000/c1"}  # restic's REST protocol
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
# A rest-server URL as restic (Go's net/url) reads it: rest:http(s)://[user:password@]host[:port][/path].
_REST = re.compile(r"rest:(?P<scheme>https?)://(?P<authority>[^/]*)(?P<path>/.*)?\Z", re.DOTALL)
_HOSTPORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[^:]*))?\Z")
# Characters Go's net/url accepts unescaped in userinfo; anything else must be percent-encoded.
_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*\Z")
_URL_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*\Z")
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
        """The URL with a rest-server password replaced by *** (what messages, logs and --json show)."""
        return redact_url(self.url)

    @property
    def rest_password(self) -> str | None:
        """The password in a rest: URL (percent-decoded), None when it has none: hosts scrub it from output."""
        return None if self.kind != REST else rest_url_parts(self.url).password


@dataclass(frozen=True)
class RestURL:
    """The parts of a rest: URL; user and password percent-decoded (None when the URL has no userinfo)."""

    base: str  # http(s)://host:port/path/ without userinfo: where the REST API lives
    user: str | None = None
    password: str | None = None


def redact_url(url: str) -> str:
    """rest:http://user:secret@host/x -> rest:http://user:***@host/x (restic shows it the same way).

    The userinfo ends at the LAST @ before the path, as in Go's net/url: a password may hold an @.
    """
    match = re.match(r"(rest:https?://)([^/]*)@", url)
    if not match:
        return url
    user = match[2].split(":", 1)[0]
    return f"{match[1]}{user}:***@{url[match.end() :]}"


def rest_url_parts(url: str) -> RestURL:
    """Split a valid rest: URL (checked by _rest_problem) into the API base and its credentials."""
    from urllib.parse import unquote

    match = _REST.match(url)
    assert match is not None
    userinfo, _, hostport = match["authority"].rpartition("@")
    base = f"{match['scheme']}://{hostport}{(match['path'] or '/').rstrip('/')}/"
    if not userinfo:
        return RestURL(base)
    user, _, password = userinfo.partition(":")
    return RestURL(base, unquote(user), unquote(password))


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


def _rest_problem(value: str) -> str | None:
    """What restic would trip over in a rest: URL, checked the way Go's net/url parses it."""
    match = _REST.match(value)
    if not match:
        return "is not a rest-server URL (write rest:http://HOST:PORT/PATH or rest:https://...)"
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        return "must not contain spaces or control characters"
    if "?" in value or "#" in value:
        return "must not hold a query (?) or fragment (#); percent-encode them in a password (%3F, %23)"
    if "@" in (match["path"] or ""):
        return "has an @ after the host; a / in the password must be percent-encoded (%2F)"
    userinfo, at, hostport = match["authority"].rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if not user:
            return "has credentials without a user name (write rest:http://USER:PASSWORD@HOST:PORT/PATH)"
        if not colon or not password:
            return "has a user name but no password (write USER:PASSWORD@)"
        if not _USERINFO.match(userinfo):
            return "has a user or password with characters a URL cannot hold; percent-encode them (/ is %2F)"
    hp = _HOSTPORT.match(hostport)
    if not hp or not hp["host"]:
        return "has no server host name (write rest:http://HOST:PORT/PATH)"
    host = hp["host"][1:-1] if hp["host"].startswith("[") else hp["host"]
    if hp["host"].startswith("[") and (":" not in host or fields.address_problem(host)):
        return "has a bracketed server address that is not an IPv6 address"
    if fields.address_problem(host):
        return f"has a server host name that {fields.address_problem(host)}"
    port = hp["port"]
    if port is not None and (not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535):
        return "has a port that is not an integer from 1 to 65535"
    if match["path"] and not _URL_PATH.match(match["path"]):
        return "has a path with characters a URL cannot hold (percent-encode them)"
    return None


def _url_problem(value: str) -> str | None:
    if value.startswith("sftp:"):
        match = _SFTP.match(value)
        if not match:
            return "is not an sftp repository (write sftp:HOST:/absolute/path, HOST an inventory host)"
        return _abs_path_problem(match["path"])
    if value.startswith("rest:"):
        return _rest_problem(value)
    if value.startswith("/"):
        return _abs_path_problem(value)
    return "is not a repository (an absolute path on the control node, sftp:HOST:/path or rest:http(s)://...)"


_abs_paths = list_of(string(_abs_path_problem, "an absolute path"), "a list of absolute paths")
_keep = integer(1, 100_000)


def _repository_url(node: YNode, src: Source) -> str:
    """Like string(_url_problem), but an error shows the URL with its password as ***: inventory errors
    go to terminals, cron logs and CI output."""
    if node.kind != "scalar" or not isinstance(node.value, str):
        raise src.error(f"expected a repository URL, got {node.describe()}", node)
    reason = _url_problem(node.value)
    if reason:
        raise src.error(f"{fields.quote_value(_redact_broken(node.value))} {reason}", node)
    return node.value


def _redact_broken(value: str) -> str:
    """A URL that failed the checks may have a password anywhere before its last @ (an unescaped / or #
    in it moves Go's idea of where userinfo ends): hide all of that, user name included."""
    if "@" not in value:
        return value
    start = value.find("//") + 2 if "//" in value else value.find(":") + 1
    return f"{value[:start]}***@{value.rpartition('@')[2]}"


REPOSITORY: Schema = {
    "url": Field(
        _repository_url,
        required=True,
        doc="control-node path, sftp:HOST:/path or rest:http(s)://[user:password@]host:port/path",
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
