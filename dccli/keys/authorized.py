"""authorized_keys as bytes: parse entries, add and remove keys, every other byte left as it was.

Pure functions on the file's content. Lines are split on "\\n" only, each keeping its own terminator
("\\r\\n", "\\n", or none on an unterminated last line), so the lines we do not own come back byte for byte:
options, comments, CRLF, a missing final newline, cert-authority lines, keys of other users and tools.
A new key is PREPENDED (never appended: appending would have to add a newline to someone else's
unterminated last line).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

_LINE = re.compile(rb"[^\n]*\n|[^\n]+\Z")
# Key types OpenSSH accepts in authorized_keys (certificates included); a line starting with anything
# else starts with options.
_TYPE = re.compile(
    r"^(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com"
    r"|[a-z0-9-]+-cert-v0\d@openssh\.com|rsa-sha2-(256|512))$"
)


@dataclass(frozen=True)
class Entry:
    """One key line: options as written, type, the decoded key blob, comment, its 0-based line number."""

    line_no: int
    options: str
    key_type: str
    blob: bytes
    comment: str

    @property
    def cert_authority(self) -> bool:
        return any(o.strip().lower() == "cert-authority" for o in split_options(self.options))

    @property
    def fingerprint(self) -> str:
        from dccli.transport.hostkeys import fingerprint

        return fingerprint(self.blob)


def split_lines(content: bytes) -> list[bytes]:
    """Lines with their own terminators; b"".join(split_lines(x)) == x for every x."""
    return _LINE.findall(content)


def split_options(options: str) -> list[str]:
    """'a,command="x,y",b' -> ['a', 'command="x,y"', 'b'] (commas inside quotes do not split)."""
    out, cur, quoted, i = [], "", False, 0
    while i < len(options):
        ch = options[i]
        if ch == "\\" and quoted and i + 1 < len(options):
            cur += options[i : i + 2]
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    if cur:
        out.append(cur)
    return out


def _skip_options(text: str) -> tuple[str, str] | None:
    """(options, rest) for a line that starts with options, as sshd reads them (quotes may hold spaces)."""
    quoted, i = False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            return text[:i], text[i:].lstrip(" \t")
        i += 1
    return None  # options never ended: not a key line sshd would accept


def parse_line(raw: bytes, line_no: int = 0) -> Entry | None:
    """The key of one line, or None for blanks, comments and lines sshd would not accept."""
    text = raw.decode("utf-8", "surrogateescape").strip()
    if not text or text.startswith("#"):
        return None
    options = ""
    first = text.split(None, 1)[0]
    if not _TYPE.match(first):
        skipped = _skip_options(text)
        if skipped is None:
            return None
        options, text = skipped
    fields = text.split(None, 2)
    if len(fields) < 2 or not _TYPE.match(fields[0]):
        return None
    try:
        blob = base64.b64decode(fields[1].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return Entry(line_no, options, fields[0], blob, fields[2] if len(fields) > 2 else "")


def entries(content: bytes) -> list[Entry]:
    return [e for i, raw in enumerate(split_lines(content)) if (e := parse_line(raw, i)) is not None]


def user_keys(content: bytes) -> list[Entry]:
    """Entries that authorize a key directly (cert-authority lines trust a CA, they are not a user key)."""
    return [e for e in entries(content) if not e.cert_authority]


def has_key(content: bytes, blob: bytes) -> bool:
    return any(e.blob == blob for e in user_keys(content))


def public_line(key_type: str, blob: bytes, comment: str = "") -> bytes:
    text = f"{key_type} {base64.b64encode(blob).decode()}"
    return (text + (f" {comment}" if comment else "")).encode()


def add_key(content: bytes, line: bytes) -> bytes:
    """The content with `line` (one public key line, no newline) first; unchanged if the key is there."""
    entry = parse_line(line)
    if entry is None:
        raise ValueError(f"not a public key line: {line[:40]!r}")
    if has_key(content, entry.blob):
        return content
    return line.rstrip(b"\r\n") + b"\n" + content


def remove_keys(content: bytes, blobs: Iterable[bytes]) -> tuple[bytes, int]:
    """Drop the lines authorizing any of `blobs` (cert-authority lines are never ours to drop)."""
    wanted = set(blobs)
    kept: list[bytes] = []
    removed = 0
    for i, raw in enumerate(split_lines(content)):
        entry = parse_line(raw, i)
        if entry is not None and entry.blob in wanted and not entry.cert_authority:
            removed += 1
            continue
        kept.append(raw)
    return b"".join(kept), removed


def cert_authorities(content: bytes) -> list[Entry]:
    return [e for e in entries(content) if e.cert_authority]
