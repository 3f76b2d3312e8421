"""Loading playbooks: the model, and every load-time error naming file:line (nothing touches a host)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dccli.errors import InputError, UsageError
from dccli.inventory.loader import localhost_inventory
from dccli.playbook import loader, names, planner
from dccli.playbook.model import Block

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "bench" / "reference-10-tasks.yml"


def write(tmp_path: Path, text: str, name: str = "pb.yml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_reference_playbook_loads_with_positions():
    pb = loader.load(REFERENCE)
    play = pb.plays[0]
    assert play.hosts == "gpu" and play.gather_facts is False
    assert [t.module for t in play.tasks] == [
        "file",
        "copy",
        "copy",
        "lineinfile",
        "command",
        "copy",
        "command",
        "copy",
        "file",
        "file",
    ]
    cmd = play.tasks[4]
    assert dict(cmd.args) == {
        "_raw_params": "touch /opt/dccli-bench/marker",
        "creates": "/opt/dccli-bench/marker",
    }
    assert cmd.where.line == 12 and play.tasks[6].changed_when is False


def test_free_form_and_key_value_arguments(tmp_path):
    pb = loader.load(
        write(
            tmp_path,
            """
        - hosts: all
          tasks:
            - file: path={{ base }}/x state=directory mode=0755
            - command: touch "{{ base }}/a b" creates={{ base }}/a
            - ansible.builtin.shell: echo hi | tr a-z A-Z
            - block:
                - debug: msg="in block"
              rescue:
                - meta: flush_handlers
    """,
        )
    )
    t = pb.plays[0].tasks
    assert dict(t[0].args) == {"path": "{{ base }}/x", "state": "directory", "mode": "0755"}
    assert dict(t[1].args) == {"_raw_params": 'touch "{{ base }}/a b"', "creates": "{{ base }}/a"}
    assert t[2].module == "shell" and t[2].args["_raw_params"] == "echo hi | tr a-z A-Z"
    assert isinstance(t[3], Block) and t[3].rescue[0].module == "meta"


@pytest.mark.parametrize(
    "body,message,line",
    [
        (
            "- hosts: all\n  tasks:\n    - coppy: {dest: /x, content: y}\n",
            "unknown module (did you mean 'copy'?)",
            3,
        ),
        (
            "- hosts: all\n  tasks:\n    - copy: {dest: /x, contnt: y}\n",
            "unknown argument 'contnt' for module copy",
            3,
        ),
        ("- hosts: all\n  tasks:\n    - copy: dest=/x bogus=1\n", "unknown argument 'bogus'", 3),
        (
            "- hosts: all\n  tasks:\n    - name: x\n      whenn: true\n      debug: msg=x\n",
            "unknown task keyword",
            4,
        ),
        ("- hosts: all\n  roles: [common]\n", "roles are not supported", 2),
        ("- hosts: all\n  taks: []\n", "unknown play keyword (did you mean 'tasks'?)", 2),
        (
            "- hosts: all\n  tasks:\n    - debug: msg=x\n      delegate_to: localhost\n",
            "delegate_to is not supported",
            4,
        ),
        ("- hosts: all\n  tasks:\n    - meta: flush_handler\n", "unknown meta action", 3),
        ("- hosts: all\n  vars_files: [nope.yml]\n", "vars file not found", 2),
        ("- hosts: all\n  tasks:\n  - debug: {msg: [}\n", "invalid YAML", 3),
        ("- hosts: all\n  tasks:\n    - template: {dest: /x}\n", "missing required argument: src", 3),
    ],
)
def test_load_errors_name_file_and_line(tmp_path, body, message, line):
    path = write(tmp_path, body)
    with pytest.raises(InputError) as info:
        loader.load(path)
    assert message in str(info.value)
    assert info.value.path == str(path) and info.value.line == line


def test_undefined_variables_are_caught_before_any_host(tmp_path):
    path = write(
        tmp_path,
        """
        - hosts: all
          vars: {driver_branch: "550"}
          tasks:
            - command: echo {{ driver_branch }}
              register: out
            - debug: msg="{{ out.stdout }} {{ missing | default('ok') }} {{ item }}"
              loop: [1]
            - set_fact: {late: 1}
            - debug: msg="{{ late }} {{ ansible_hostname }}"
            - debug: msg="{{ dirver_branch }}"
    """,
    )
    pb = loader.load(path)
    with pytest.raises(InputError) as info:
        names.check([pb], localhost_inventory(), {})
    assert "undefined variable 'dirver_branch' (did you mean 'driver_branch'?)" in str(info.value)
    assert info.value.line == 11
    names.check([pb], localhost_inventory(), {"dirver_branch": "x"})  # -e defines it


def test_when_expressions_are_checked_too(tmp_path):
    pb = loader.load(
        write(tmp_path, "- hosts: all\n  tasks:\n    - debug: msg=x\n      when: typo_var == 1\n")
    )
    with pytest.raises(InputError, match="undefined variable 'typo_var'"):
        names.check([pb], localhost_inventory(), {})


def test_import_tasks_is_inlined(tmp_path):
    write(tmp_path, "- debug: msg=inner\n- command: true\n", "inc.yml")
    pb = loader.load(write(tmp_path, "- hosts: all\n  tasks:\n    - import_tasks: inc.yml\n"))
    block = pb.plays[0].tasks[0]
    assert isinstance(block, Block) and [t.module for t in block.block] == ["debug", "command"]


def test_serial_batches_like_ansible():
    hosts = list(range(10))
    assert planner.batches(hosts, None) == [hosts]
    assert planner.batches(hosts, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert planner.batches(hosts, "30%") == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert planner.batches(hosts, [1, 3, "50%"]) == [[0], [1, 2, 3], [4, 5, 6, 7, 8], [9]]
    assert planner.batches(hosts, "1%") == [[h] for h in hosts]  # never a batch of 0
    with pytest.raises(UsageError):
        planner.batches(hosts, "many")


def test_max_fail_percentage_and_patterns():
    assert (
        planner.batch_aborts(1, 4, 0)
        and not planner.batch_aborts(1, 4, 25)
        and planner.batch_aborts(2, 4, 25)
    )
    assert planner.batch_aborts(4, 4, None) and not planner.batch_aborts(0, 4, 0)
    assert planner.nodeset_pattern("gpu:&rack01:!node03", {"gpu", "rack01"}) == "@gpu&@rack01!node03"
    assert planner.nodeset_pattern("all", {}) == "@all"
    assert planner.nodeset_pattern("node[01-04],node09", {}) == "node[01-04],node09"
    with pytest.raises(UsageError, match="wildcard"):
        planner.nodeset_pattern("node*", {})


def test_tag_selection_like_ansible():
    sel = planner.tags_selected
    none: frozenset[str] = frozenset()
    assert sel(set(), none, none) and sel({"a"}, none, none) and not sel({"never"}, none, none)
    assert sel({"a"}, frozenset({"a"}), none) and not sel({"b"}, frozenset({"a"}), none)
    assert sel({"always"}, frozenset({"a"}), none) and not sel({"always"}, none, frozenset({"always"}))
    assert sel({"never", "debug"}, frozenset({"debug"}), none)
    assert sel(set(), frozenset({"untagged"}), none) and not sel({"a"}, frozenset({"untagged"}), none)
    assert not sel({"a"}, none, frozenset({"tagged"})) and not sel(
        {"a", "b"}, frozenset({"a"}), frozenset({"b"})
    )
