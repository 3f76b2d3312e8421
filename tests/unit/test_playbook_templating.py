"""Templating with Ansible's rules: native single expressions, lazy vars, strict undefined, common filters."""

from __future__ import annotations

import pytest

from dccli.playbook.templating import OMIT, TemplateError, condition, render, render_file, unguarded_names


def test_single_expression_keeps_native_types_and_text_stays_text():
    v = {"l": [3, 1, 3], "n": 5}
    assert render("{{ l | unique }}", v) == [3, 1]
    assert render("{{ n + 1 }}", v) == 6
    assert render("n={{ n }}", v) == "n=5"
    assert render({"a": ["{{ n }}", "x"], "{{ 'k' }}": 1}, v) == {"a": [5, "x"], "k": 1}


def test_vars_are_templated_lazily_and_recursively():
    v = {"base": "/opt/x", "conf": "{{ base }}/a.conf", "both": ["{{ conf }}", "{{ base }}"]}
    assert render("{{ conf }}", v) == "/opt/x/a.conf"
    assert render("{{ both | join(',') }}", v) == "/opt/x/a.conf,/opt/x"


def test_undefined_is_an_error_unless_guarded():
    with pytest.raises(TemplateError, match="'nope' is undefined"):
        render("{{ nope }}", {})
    with pytest.raises(TemplateError, match="has no attribute 'missing'"):
        render("{{ r.missing }}", {"r": {"rc": 0}})
    assert render("{{ nope | default('d') }}", {}) == "d"
    assert render("{{ nope | d(omit) }}", {}) is OMIT
    assert render({"a": "{{ nope | default(omit) }}", "b": 1}, {}) == {"b": 1}
    assert condition("nope is not defined", {})


@pytest.mark.parametrize(
    "expr,expected",
    [
        ("'yes' | bool", True),
        ("'off' | bool", False),
        ("'42' | int + 1", 43),
        ("'1.5' | float", 1.5),
        ("'a-b-c' | regex_replace('-', '_')", "a_b_c"),
        ("'v550.90' | regex_search('[0-9]+')", "550"),
        ("'/a/b.conf' | basename", "b.conf"),
        ("'/a/b.conf' | dirname", "/a"),
        ("{'a': 1} | to_json", '{"a": 1}'),
        ("'{\"a\": 2}' | from_json", {"a": 2}),
        ("{'b': 1} | to_yaml", "{b: 1}\n"),
        ("{'b': [1]} | to_nice_yaml", "b:\n- 1\n"),
        ("'  x ' | trim", "x"),
        ("[3, 1, 2] | sort | first", 1),
        ("[3, 1, 2] | last", 2),
        ("[1, 2, 3] | select('odd') | list", [1, 3]),
        ("[1, 2, 3] | reject('odd') | list", [2]),
        ("[{'k': 'a'}] | map(attribute='k') | list", ["a"]),
        ("{'a': 1} | combine({'b': 2})", {"a": 1, "b": 2}),
        ("{'a': {'x': 1}} | combine({'a': {'y': 2}}, recursive=True)", {"a": {"x": 1, "y": 2}}),
        ("{'a': 1} | dict2items", [{"key": "a", "value": 1}]),
        ("[{'key': 'a', 'value': 1}] | items2dict", {"a": 1}),
        ("'a b' | quote", "'a b'"),
        ("'hi' | b64encode", "aGk="),
        ("'aGk=' | b64decode", "hi"),
        ("'abc' | hash('sha256')", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("'abc' | checksum", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("'ABC' | lower", "abc"),
        ("[1, [2, [3]]] | flatten", [1, 2, 3]),
        ("'570.124.06' is version('550.90.07', '>')", True),
        ("'12.4' is version('12.10', 'lt')", True),
        ("'abc' is search('b')", True),
        ("'abc' is match('b')", False),
        ("{'rc': 1, 'failed': True} is failed", True),
        ("{'changed': True} is changed", True),
        ("[1, 2] | length", 2),
        ("true | ternary('y', 'n')", "y"),
    ],
)
def test_filters_and_tests(expr, expected):
    assert render("{{ " + expr + " }}", {}) == expected


def test_conditions_read_bool_strings_like_ansible():
    assert condition("flag", {"flag": "yes"}) and not condition("flag", {"flag": "false"})
    assert condition(["a == 1", "b"], {"a": 1, "b": True}) and not condition(
        ["a == 1", "not b"], {"a": 1, "b": True}
    )
    assert condition("{{ a == 1 }}", {"a": 1})
    assert condition(True, {}) and not condition(False, {})


def test_template_files_trim_blocks_like_the_template_module():
    text = "a={{ x }}\n{% for i in l %}\n- {{ i }}\n{% endfor %}\nend\n"
    assert render_file(text, {"x": 1, "l": [1, 2]}) == "a=1\n- 1\n- 2\nend\n"


def test_static_analysis_finds_unguarded_names_only():
    names = unguarded_names(
        "{{ a }} {{ b | default(1) }} {% if c is defined %}{{ d.e }}{% endif %}"
        "{% for i in items %}{{ i }}{% endfor %}{% set z = 1 %}{{ z }}"
    )
    assert names == {"a", "d", "items"}
