"""`dccli provision` front end without hosts: bad playbooks are exit 2 with file:line before any connection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dccli.output.provision import recap_lines, render_diff
from dccli.playbook.events import HostStats
from dccli.playbook.vars_cli import parse_extra_vars


def dccli(*args: str, env_home: Path, inventory: Path) -> subprocess.CompletedProcess:
    env = {
        "DCCLI_HOME": str(env_home),
        "DCCLI_INVENTORY": str(inventory),
        "PATH": "/usr/bin:/bin",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "dccli", "provision", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def unreachable_inventory(tmp_path: Path) -> Path:
    # 127.255.255.254:9 answers nothing: if dccli tried to connect, the exit code would be 3, not 2.
    p = tmp_path / "inv.yml"
    p.write_text(
        "cluster: t\nracks:\n  r1:\n    hosts:\n      n1: {address: 127.255.255.254, port: 9}\n"
        "groups:\n  gpu: n1\n"
    )
    return p


@pytest.mark.parametrize(
    "body,expected",
    [
        ("- hosts: gpu\n  tasks:\n    - copy: {dest: /x, content: y, mdoe: '0644'}\n", ":3:"),
        (
            "- hosts: gpu\n  tasks:\n    - debug: msg={{ undefined_thing }}\n",
            "undefined variable 'undefined_thing'",
        ),
        ("- hosts: nosuchgroup\n  tasks: []\n", "unknown host 'nosuchgroup'"),
    ],
)
def test_bad_playbooks_exit_2_before_touching_hosts(tmp_path, unreachable_inventory, body, expected):
    pb = tmp_path / "pb.yml"
    pb.write_text(body)
    proc = dccli(str(pb), env_home=tmp_path / "home", inventory=unreachable_inventory)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unreachable_host_is_exit_3_and_named(tmp_path, unreachable_inventory):
    pb = tmp_path / "pb.yml"
    pb.write_text(
        textwrap.dedent("""
        - hosts: gpu
          gather_facts: false
          tasks:
            - ping:
    """)
    )
    proc = dccli(str(pb), "--timeout", "1", env_home=tmp_path / "home", inventory=unreachable_inventory)
    assert proc.returncode == 3, proc.stderr
    assert "unreachable: [n1]" in proc.stderr
    assert "n1                         : ok=0    changed=0    unreachable=1    failed=0" in proc.stdout


def test_extra_vars_forms(tmp_path):
    f = tmp_path / "ev.yml"
    f.write_text("a: 1\nb: [x]\n")
    assert parse_extra_vars(["k=v 'q=a b'", "@" + str(f), '{"j": true}']) == {
        "k": "v",
        "q": "a b",
        "a": 1,
        "b": ["x"],
        "j": True,
    }


def test_recap_matches_ansible_columns_and_diff_rendering():
    s = HostStats(ok=10, changed=9)
    assert recap_lines({"node01": s})[1] == (
        "node01                     : ok=10   changed=9    unreachable=0    failed=0    skipped=0    "
        "rescued=0    ignored=0   "
    )
    text = render_diff([{"before": "a\n", "after": "b\n", "before_header": "f", "after_header": "f"}])
    assert "-a\n+b\n" in text and text.startswith("--- before: f\n+++ after: f\n")


def test_live_board_on_a_terminal_ends_with_the_final_table():
    import io

    from dccli.output.console import Env
    from dccli.output.provision import LiveBoard
    from dccli.playbook.events import PlayStarted, TaskDone

    err = io.StringIO()
    env = Env(stdout=io.StringIO(), stderr=err, stdout_isatty=True, stderr_isatty=True, no_color=True)
    with LiveBoard(env) as board:
        board(PlayStarted("gpu", ("node01", "node02")))
        board(TaskDone("node01", "conf", "changed"))
        board(TaskDone("node02", "conf", "failed", msg="boom"))
        board(TaskDone("node01", "loop", "ok", item="a"))
        board(TaskDone("node01", "loop", "ok", summary=True))
    text = err.getvalue()
    assert "failed: [node02] conf => boom" in text and "PLAY [gpu]" in text
    last = text[text.rindex("PLAY [gpu]") :]
    assert [line.split()[:1] + line.split()[-4:] for line in last.splitlines()[2:4]] == [
        ["node01", "2", "1", "0", "0"],
        ["node02", "0", "0", "1", "0"],
    ]
