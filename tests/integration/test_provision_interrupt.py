"""A host lost mid-play stops only itself; the recap names it; `--limit @failed` converges. And reboot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.lab

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

PLAYBOOK = """
- hosts: gpu
  gather_facts: false
  tasks:
    - name: slow first task
      command: sleep 1.5
      changed_when: false
    - {name: state dir, file: {path: /opt/dccli-int, state: directory}}
    - {name: state file, copy: {dest: /opt/dccli-int/done, content: "done\\n"}}
"""


def provision(lab, *args: str) -> subprocess.Popen:
    env = dict(os.environ, NO_COLOR="1", DCCLI_INVENTORY=str(lab.inventory_path))
    return subprocess.Popen(
        [sys.executable, "-m", "dccli", "provision", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sshd_stopped_mid_play_then_failed_retry_converges(make_lab, tmp_path):
    from dccli.lab.host import sshd_start, sshd_stop

    lab = make_lab(hosts=3)
    pb = tmp_path / "pb.yml"
    pb.write_text(PLAYBOOK)
    # -f 1: hosts one after another, so node03 is reached only after its sshd is gone.
    proc = provision(lab, "-f", "1", "--timeout", "3", str(pb))
    time.sleep(0.8)
    sshd_stop(lab, "node03")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(out)}
    assert recap["node01"] == (3, 2, 0, 0) and recap["node02"] == (3, 2, 0, 0)
    assert recap["node03"][2] == 1  # unreachable, named in the recap
    assert "unreachable: [node03]" in err

    sshd_start(lab, "node03")
    retry = provision(lab, "--limit", "@failed", str(pb))
    out, err = retry.communicate(timeout=120)
    assert retry.returncode == 0, err
    assert {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(out)} == {"node03": (3, 2, 0, 0)}

    # serial 1 + max_fail_percentage 0 (a rolling upgrade): node01 fails, the later batches never start,
    # the recap names only node01, and @failed holds every host the rollout did not finish.
    rolling = tmp_path / "rolling.yml"
    rolling.write_text(
        "- hosts: gpu\n  gather_facts: false\n  serial: 1\n  max_fail_percentage: 0\n  tasks:\n"
        "    - {command: 'test {{ inventory_hostname }} != node01', changed_when: false}\n"
    )
    proc = provision(lab, str(rolling))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(out)} == {"node01": (0, 0, 0, 1)}
    assert "stopped by every host of the batch failing; not run on 2 more hosts" in err
    retry = provision(lab, "--limit", "@failed", str(pb))
    out, err = retry.communicate(timeout=60)
    assert retry.returncode == 0, err
    assert sorted(m[0] for m in RECAP.findall(out)) == ["node01", "node02", "node03"]


def test_reboot_waits_for_a_new_boot_id(make_lab, tmp_path):
    lab = make_lab(hosts=1)
    pb = tmp_path / "reboot.yml"
    pb.write_text(
        "- hosts: gpu\n  gather_facts: true\n  tasks:\n"
        "    - {set_fact: {before: '{{ dccli_boot_id }}'}}\n"
        "    - {reboot: {reboot_timeout: 60, test_command: 'test -d /proc/1'}, register: rb}\n"
        "    - {command: cat /proc/sys/kernel/random/boot_id, register: after, changed_when: false}\n"
        "    - assert: {that: ['rb.rebooted', 'after.stdout != before']}\n"
        "      when: not ansible_check_mode\n"
    )
    proc = provision(lab, str(pb))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "changed: [node01] reboot" in err
    check = provision(lab, "--check", str(pb))
    _out, err = check.communicate(timeout=60)
    assert check.returncode == 0, err  # check mode reports the reboot without doing it


def test_ctrl_c_stops_every_host_before_its_next_task_and_any_errors_fatal(make_lab, tmp_path):
    import signal

    lab = make_lab(hosts=2)
    pb = tmp_path / "slow.yml"
    pb.write_text(
        "- hosts: gpu\n  gather_facts: false\n  tasks:\n"
        "    - {command: sleep 1.5, changed_when: false}\n"
        "    - {copy: {dest: /opt/after-ctrl-c, content: x}}\n"
    )
    proc = provision(lab, str(pb))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    for h in lab.hosts:
        assert not (h.upper_dir / "opt" / "after-ctrl-c").exists()
    again = provision(lab, str(pb))  # a re-run converges
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert all((h.upper_dir / "opt" / "after-ctrl-c").exists() for h in lab.hosts)

    fatal = tmp_path / "fatal.yml"
    fatal.write_text(
        "- hosts: gpu\n  gather_facts: false\n  any_errors_fatal: true\n  tasks:\n"
        "    - {command: \"{{ 'false' if inventory_hostname == 'node01' else 'sleep 1' }}\", changed_when: false}\n"
        "    - {copy: {dest: /opt/after-fatal, content: x}}\n"
    )
    proc = provision(lab, str(fatal))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "stopped by any_errors_fatal" in err
    assert not any((h.upper_dir / "opt" / "after-fatal").exists() for h in lab.hosts)
