"""Jinja2 templating with Ansible's rules: strict undefined, lazily templated vars, native single expressions.

- A string holding `{{ }}` or `{% %}` is a template; anything else is returned as is.
- A string that is exactly one `{{ expr }}` yields the expression's native value (a list stays a list).
- A var whose value is itself a template is templated when it is used (Ansible's lazy vars), so
  `b: "{{ a }}/x"` in play vars follows a later `set_fact: a=...`.
- Using an undefined name is an error (`'x' is undefined`), except under `default`, `is defined`, etc.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import StrictUndefined, nodes
from jinja2.runtime import Context, missing

from dccli.playbook.filters import FILTERS, TESTS, to_bool

_MAX_DEPTH = 40


class TemplateError(Exception):
    """A template could not be rendered (syntax, undefined variable, filter error)."""


class OmitValue:
    """Ansible's `omit`: an argument templated to it is dropped."""

    def __repr__(self) -> str:
        return "__omit_place_holder__"


OMIT = OmitValue()


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _LazyContext(Context):
    def resolve_or_missing(self, key: str) -> Any:
        value = super().resolve_or_missing(key)
        if value is missing:
            return missing
        depth = getattr(self.environment, "_depth", 0)
        if depth > _MAX_DEPTH:
            raise TemplateError(f"recursive loop detected in template of variable {key!r}")
        if _needs_templating(value):
            self.environment._depth = depth + 1  # type: ignore[attr-defined]
            try:
                value = render(value, _ContextVars(self))
            finally:
                self.environment._depth = depth  # type: ignore[attr-defined]
        return value


class _ContextVars(Mapping):
    """The vars of a running context, as a mapping for nested rendering."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def __getitem__(self, key: str) -> Any:
        value = Context.resolve_or_missing(self._ctx, key)
        if value is missing:
            raise KeyError(key)
        return value

    def __iter__(self):
        yield from self._ctx.parent
        yield from self._ctx.vars

    def __len__(self) -> int:
        return len(self._ctx.parent) + len(self._ctx.vars)


def _needs_templating(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if depth > 3:
        return False
    if isinstance(value, Mapping):
        return any(_needs_templating(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_needs_templating(v, depth + 1) for v in value)
    return False


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
    )
    env.context_class = _LazyContext
    env.filters.update(FILTERS)
    env.filters["d"] = env.filters["default"]
    env.tests.update(TESTS)
    env.globals["omit"] = OMIT
    return env


@lru_cache(maxsize=4096)
def _compile(source: str) -> jinja2.Template:
    return environment().from_string(source)


@lru_cache(maxsize=4096)
def _compile_expr(source: str):
    return environment().compile_expression(source, undefined_to_none=False)


def _call(fn, vars: Mapping[str, Any]) -> Any:
    try:
        return fn(vars)
    except jinja2.UndefinedError as exc:
        raise TemplateError(str(exc)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message} (line {exc.lineno})") from None
    except TemplateError:
        raise
    except Exception as exc:  # a filter's own error (bad regex, bad JSON...)
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


@lru_cache(maxsize=4096)
def single_expression(source: str) -> str | None:
    """The expression of a template that is exactly one `{{ ... }}` (so it yields a native value), else None."""
    try:
        tokens = list(environment().lex(source))
    except jinja2.TemplateSyntaxError:
        return None
    if len(tokens) < 2 or tokens[0][1] != "variable_begin" or tokens[-1][1] != "variable_end":
        return None
    inner = tokens[1:-1]
    if any(t[1] in ("variable_begin", "variable_end", "block_begin", "data", "comment_begin") for t in inner):
        return None
    return "".join(t[2] for t in inner)


def render_string(source: str, vars: Mapping[str, Any]) -> Any:
    if not is_template(source):
        return source
    single = single_expression(source)
    if single is not None:
        try:
            expr = _compile_expr(single)
        except jinja2.TemplateSyntaxError:
            expr = None  # not a plain expression (e.g. contains a filter block): render as text
        if expr is not None:
            value = _call(lambda v: expr(**_as_dict(v)), vars)
            if isinstance(value, jinja2.Undefined):
                _call(lambda _v: str(value), vars)  # raises the undefined error
            return value
    try:
        template = _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message} (line {exc.lineno})") from None
    return _call(lambda v: template.render(_as_dict(v)), vars)


def _as_dict(vars: Mapping[str, Any]) -> dict:
    return vars if isinstance(vars, dict) else dict(vars)


def render(value: Any, vars: Mapping[str, Any]) -> Any:
    """Template every string inside `value` (dicts and lists recursively); keys are templated too."""
    if isinstance(value, str):
        return render_string(value, vars)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            rv = render(v, vars)
            if rv is OMIT:
                continue
            out[render_string(k, vars) if isinstance(k, str) else k] = rv
        return out
    if isinstance(value, (list, tuple)):
        return [render(v, vars) for v in value]
    return value


def render_file(text: str, vars: Mapping[str, Any]) -> str:
    """A template module's file: always rendered as text, trailing newline kept."""
    try:
        template = _compile(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message} (line {exc.lineno})") from None
    return _call(lambda v: template.render(_as_dict(v)), vars)


def condition(expr: Any, vars: Mapping[str, Any]) -> bool:
    """A `when`/`changed_when`/`failed_when`/`that` entry: a bare expression, a bool, or a list (all true)."""
    if isinstance(expr, list):
        return all(condition(e, vars) for e in expr)
    if isinstance(expr, bool):
        return expr
    if expr is None:
        return False
    text = str(expr).strip()
    single = single_expression(text)
    if single is not None:  # `when: "{{ x }}"` works in Ansible (with a warning): take the expression inside
        text = single.strip()
    try:
        fn = _compile_expr(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"conditional {text!r}: syntax error: {exc.message}") from None
    value = _call(lambda v: fn(**_as_dict(v)), vars)
    if isinstance(value, jinja2.Undefined):
        _call(lambda _v: bool(value), vars)
    if isinstance(value, str):
        # a var holding "yes"/"false" etc. is read as Ansible's bool filter would; other strings by truth
        lowered = value.strip().lower()
        if lowered in ("yes", "no", "true", "false", "on", "off", "0", "1", ""):
            return to_bool(lowered)
    return bool(value)


# -- static analysis (load time) -------------------------------------------------------------------

_GUARD_FILTERS = {"default", "d", "mandatory"}
_GUARD_TESTS = {"defined", "undefined", "none"}


def unguarded_names(source: Any) -> set[str]:
    """Names a template uses without a guard (`default`, `is defined`): they must exist somewhere."""
    names: set[str] = set()
    for text in _strings(source):
        if not is_template(text):
            continue
        try:
            ast = environment().parse(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message}") from None
        names |= _walk(ast, set())
    return names


def expression_names(expr: str) -> set[str]:
    text = str(expr)
    single = single_expression(text)
    if single is not None:
        text = single
    return unguarded_names("{{ " + text + " }}")


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _walk(node: nodes.Node, bound: set[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS and isinstance(node.node, nodes.Name):
        children = [*node.args, *node.kwargs]
    elif isinstance(node, nodes.Test) and node.name in _GUARD_TESTS:
        inner = node.node
        while isinstance(inner, (nodes.Getattr, nodes.Getitem)):
            inner = inner.node
        children = [] if isinstance(inner, nodes.Name) else [node.node]
    elif isinstance(node, (nodes.For,)):
        found |= _walk(node.iter, bound)
        inner = bound | _target_names(node.target)
        for child in [*node.body, *node.else_]:
            found |= _walk(child, inner)
        return found
    elif isinstance(node, (nodes.Assign,)):
        bound.update(_target_names(node.target))
        return _walk(node.node, bound)
    elif isinstance(node, nodes.Name):
        return set() if node.name in bound or node.ctx != "load" else {node.name}
    else:
        children = list(node.iter_child_nodes())
    for child in children:
        found |= _walk(child, bound)
    return found


def _target_names(target: nodes.Node) -> set[str]:
    if isinstance(target, nodes.Name):
        return {target.name}
    return {n.name for n in target.find_all(nodes.Name)}
