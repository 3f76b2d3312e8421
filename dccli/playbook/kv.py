"""Ansible's string forms of module arguments: `k=v k2="a b"` and free-form commands with k=v options."""

from __future__ import annotations

from typing import Any

_FREE_FORM_KV = {
    "creates",
    "removes",
    "chdir",
    "executable",
    "stdin",
    "warn",
    "stdin_add_newline",
    "strip_empty_ends",
}


def _spans(text: str) -> list[tuple[int, int]]:
    """Word spans, splitting on whitespace outside quotes and outside {{ }} / {% %} (Ansible's split_args)."""
    spans: list[tuple[int, int]] = []
    quote, depth, start, i = "", 0, None, 0
    while i < len(text):
        c, two = text[i], text[i : i + 2]
        if not quote and two in ("{{", "{%"):
            depth += 1
            start = i if start is None else start
            i += 2
            continue
        if not quote and depth and two in ("}}", "%}"):
            depth -= 1
            i += 2
            continue
        if c.isspace() and not quote and not depth:
            if start is not None:
                spans.append((start, i))
                start = None
        else:
            start = i if start is None else start
            if c in "'\"" and not depth:
                quote = "" if quote == c else (quote if quote else c)
        i += 1
    if quote:
        raise ValueError("unbalanced quotes")
    if start is not None:
        spans.append((start, len(text)))
    return spans


def _unquote(word: str) -> str:
    out, quote = [], ""
    for c in word:
        if c in "'\"" and (not quote or quote == c):
            quote = "" if quote else c
            continue
        out.append(c)
    return "".join(out)


def split_args(text: str) -> list[str]:
    return [_unquote(text[a:b]) for a, b in _spans(text)]


def parse_kv(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for token in split_args(text):
        if "=" not in token:
            raise ValueError(f"{token!r} is not key=value")
        k, val = token.split("=", 1)
        out[k] = val
    return out


def split_free_form(text: str) -> dict[str, Any]:
    """`command: touch x creates=/x`: the known k=v options are taken out, the rest is the command."""
    args: dict[str, Any] = {}
    try:
        spans = _spans(text)
    except ValueError:
        return {"_raw_params": text}
    # Only whole k=v words with a known option name are taken out; the rest of the command text is kept
    # as written (its quoting matters to the shell, and to shlex on the host).
    cut = []
    for a, b in spans:
        k, sep, val = text[a:b].partition("=")
        if sep and k in _FREE_FORM_KV and val:
            args[k] = _unquote(val)
            cut.append((a, b))
    rest = text
    for a, b in reversed(cut):
        rest = rest[:a] + rest[b:]
    args["_raw_params"] = rest.strip() if cut else text
    return args


__all__ = ["parse_kv", "split_args", "split_free_form"]
