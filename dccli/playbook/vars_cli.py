"""-e/--extra-vars values: KEY=VALUE (several per option, shell-quoted), a JSON/YAML mapping, or @FILE."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from dccli.errors import InputError, UsageError


def parse_extra_vars(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in values:
        text = raw.strip()
        if text.startswith("@"):
            out.update(_mapping_file(Path(text[1:])))
        elif text.startswith(("{", "---")):
            out.update(_mapping_text(text, "-e"))
        else:
            for token in shlex.split(text):
                key, sep, value = token.partition("=")
                if not sep or not key.isidentifier():
                    raise UsageError(f"-e {raw!r}: expected KEY=VALUE, a JSON mapping or @FILE")
                out[key] = value
    return out


def _mapping_text(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: invalid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: extra vars must be a mapping")
    return data


def _mapping_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read extra vars file: {exc.strerror or exc}", path=str(path)) from None
    return _mapping_text(text, str(path))
