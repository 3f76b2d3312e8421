"""Pure checks for the strings an inventory holds: host names, addresses, users, paths, jumps, identifiers.

Each check returns None when the value is acceptable, else a short reason. They are deliberately strict:
whatever passes here may end up in an ssh_config file, an Ansible inventory or a remote argv, so nothing
shell-active (spaces, quotes, `$`, backticks, `;`, `|`, `&`, `<`, `>`, newlines) survives.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# POSIX portable user names, minus the trailing `$` some systems allow (shell-active).
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
# Paths: a leading ~ or ~user, then portable path characters; `%` is excluded because ssh_config expands it.
_PATH = re.compile(r"~?[A-Za-z0-9._/+,=@-]+\Z")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}\Z")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_CLUSTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+/-]{0,127}\Z")
# Free text (rack locations): printable, but none of the characters a shell or ssh_config treats specially.
_TEXT_FORBIDDEN = set("`$;|&<>\\'\"%")


def host_name_problem(name: str) -> str | None:
    """RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 253 characters at most."""
    if not name:
        return "is empty"
    if len(name) > 253:
        return f"is {len(name)} characters long (at most 253)"
    for label in name.split("."):
        if not _LABEL.match(label):
            return "is not an RFC 1123 host name (letters, digits, inner hyphens, dot-separated labels)"
    return None


def dns_name_problem(name: str) -> str | None:
    problem = host_name_problem(name.removesuffix(".") if name.endswith(".") and len(name) > 1 else name)
    if problem:
        return problem
    # An all-numeric last label is never a DNS name; it is a mistyped IPv4 address such as 10.1.0.300.
    if name.rstrip(".").rsplit(".", 1)[-1].isdigit() and "." in name:
        return "is neither a valid IP address nor a DNS name"
    return None


def address_problem(address: str) -> str | None:
    """An IPv4/IPv6 address (no zone index: `%` is an ssh_config token) or an RFC 1123 DNS name."""
    if not address:
        return "is empty"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return "has an IPv6 zone index (%...), which dccli does not support"
        return None
    if ":" in address:
        return "is not a valid IPv6 address"
    if dns_name_problem(address):
        return "is neither a valid IP address nor an RFC 1123 DNS name"
    return None


def user_problem(user: str) -> str | None:
    if _USER.match(user):
        return None
    return "is not a valid POSIX user name (letters, digits, _ . -; not starting with a digit, . or -; 32 at most)"


def path_problem(path: str) -> str | None:
    if not path:
        return "is empty"
    if len(path) > 4096:
        return "is too long"
    if path.startswith("-"):
        return "must not start with '-'"
    if not _PATH.match(path) or "~" in path[1:]:
        return "may only hold letters, digits and . _ / + , = @ - (and a leading ~); no spaces or shell characters"
    return None


def identifier_problem(value: str) -> str | None:
    if IDENTIFIER.match(value):
        return None
    return "is not an identifier (a letter or _, then letters, digits, _ or -; 63 at most)"


def var_name_problem(value: str) -> str | None:
    if VAR_NAME.match(value):
        return None
    return "is not a valid variable name (a letter or _, then letters, digits or _)"


def cluster_name_problem(value: str) -> str | None:
    if _CLUSTER.match(value):
        return None
    return "is not a valid cluster name (letters, digits, _ . -; starting with a letter or digit; 63 at most)"


def gpu_model_problem(value: str) -> str | None:
    if _MODEL.match(value):
        return None
    return "may only hold letters, digits, spaces and . _ + / - (128 at most)"


def service_name_problem(value: str) -> str | None:
    """systemd unit / process names for health checks: passed as argv, never through a shell."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9@._:+-]{0,127}", value):
        return None
    return "may only hold letters, digits and @ . _ : + - (128 at most)"


def text_problem(value: str) -> str | None:
    if len(value) > 200:
        return "is longer than 200 characters"
    bad = sorted({c for c in value if c in _TEXT_FORBIDDEN or not c.isprintable()})
    if bad:
        return f"must not contain {', '.join(repr(c) for c in bad)}"
    return None


@dataclass(frozen=True)
class JumpSpec:
    """A ProxyJump target: either an inventory host (`host_ref`) or an explicit [user@]host[:port]."""

    text: str
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def is_reference(self) -> bool:
        """A bare single-label name: must name an inventory host (so a typo is caught at load time)."""
        return self.user is None and self.port is None and "." not in self.host and ":" not in self.host


_JUMP = re.compile(r"(?:(?P<user>[^@]*)@)?(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[^:]*))?\Z")


def parse_jump(text: str) -> JumpSpec:
    """Parse `[user@]host[:port]` (IPv6 hosts in brackets when a port follows); ValueError with a reason."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        problem = address_problem(str(ip))
        if problem:
            raise ValueError(problem)
        return JumpSpec(text=text, host=text)
    m = _JUMP.match(text)
    if not m:
        raise ValueError("is not [user@]host[:port]")
    user, host, port_text = m.group("user"), m.group("host"), m.group("port")
    if user is not None:
        problem = user_problem(user)
        if problem:
            raise ValueError(f"user {user!r} {problem}")
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    problem = address_problem(host)
    if problem:
        raise ValueError(f"host {host!r} {problem}")
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"port {port_text!r} is not an integer from 1 to 65535")
        port = int(port_text)
    return JumpSpec(text=text, host=host, user=user, port=port)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def quote_value(value: object, limit: int = 60) -> str:
    """A value as shown in an error: strings in double quotes with escapes, never more than one line."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > limit:
            text = text[: limit - 4] + '..."'
        return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return one_line(repr(value))[:limit]


def one_line(text: str) -> str:
    """Escape anything that would break a one-line error (newlines, control characters)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
