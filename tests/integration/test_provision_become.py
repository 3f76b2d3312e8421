"""become: a non-root login user, the play's session runs under `sudo -n` (one session, still)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.lab

PLAYBOOK = """
- hosts: gpu
  become: true
  tasks:
    - copy: {dest: /root/dccli-become, content: "root only\\n", mode: "0600"}
    - {command: id -un, register: who, changed_when: false}
    - assert: {that: ["who.stdout == 'root'", "ansible_user_id == 'root'"]}
- hosts: gpu
  gather_facts: false
  tasks:
    - {command: id -un, register: me, changed_when: false}
    - assert: {that: ["me.stdout == 'ops'"]}
    - {copy: {dest: /root/dccli-denied, content: "x"}, register: denied, ignore_errors: true}
    - assert: {that: ["denied is failed", "'Permission denied' in denied.msg"]}
"""


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed (make setup installs it)")
def test_become_runs_the_session_under_sudo(make_lab, tmp_path):
    from dccli.lab.host import host_exec

    lab = make_lab(hosts=1)
    # A login user with passwordless sudo; `usermod -p '*'`: sshd (UsePAM no) refuses a locked account.
    setup = (
        "useradd -m -s /bin/sh ops && usermod -p '*' ops && mkdir -p /home/ops/.ssh && "
        "cp /root/.ssh/authorized_keys /home/ops/.ssh/ && chown -R ops: /home/ops/.ssh && "
        "chmod 700 /home/ops/.ssh && echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops && "
        "chmod 440 /etc/sudoers.d/ops"
    )
    done = host_exec(lab, "node01", ["sh", "-c", setup])
    assert done.returncode == 0, done.stderr
    inventory = tmp_path / "ops.yml"
    inventory.write_text(lab.inventory_path.read_text().replace("  user: root", "  user: ops", 1))
    pb = tmp_path / "pb.yml"
    pb.write_text(PLAYBOOK)
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "dccli", "provision", "-i", str(inventory), str(pb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "node01                     : ok=8    changed=1    unreachable=0    failed=0    skipped=0    "
        "rescued=0    ignored=1" in proc.stdout
    )
    st = (lab.host("node01").upper_dir / "root" / "dccli-become").stat()
    assert st.st_uid == 0 and oct(st.st_mode & 0o777) == "0o600"
