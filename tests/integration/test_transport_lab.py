"""Transport behaviour against real sshd: timeouts, agent, ~/.ssh/config, and the exports used by other tools."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from labcli import dccli

pytestmark = pytest.mark.lab



def sshd_listener(lab, host_name: str) -> psutil.Process:
    init = psutil.Process(lab.host(host_name).init_pid)
    return next(p for p in init.children(recursive=True) if p.name() == "sshd")


def without_identity(lab, tmp_path: Path) -> Path:
    inv = tmp_path / "noid.yml"
    inv.write_text("\n".join(line for line in lab.inventory_path.read_text().splitlines()
                             if not line.strip().startswith("identity_file:")) + "\n")
    return inv


def test_frozen_sshd_is_unreachable_after_the_connect_timeout(make_lab):
    lab = make_lab(hosts=2)
    sshd = sshd_listener(lab, "node02")
    sshd.send_signal(signal.SIGSTOP)  # TCP still connects (the kernel accepts); the banner never comes
    try:
        t0 = time.monotonic()
        proc = dccli("run", "-i", str(lab.inventory_path), "--timeout", "2", "--json", "hostname")
        elapsed = time.monotonic() - t0
    finally:
        sshd.send_signal(signal.SIGCONT)
    assert proc.returncode == 3, proc.stderr
    results = {r["host"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["node01"]["stdout"] == "node01\n"
    assert "node02" in results["node02"]["error"]
    assert elapsed < 15, elapsed  # bounded by the timeout, not by TCP's own minutes


def test_command_timeout(lab):
    t0 = time.monotonic()
    proc = dccli("run", "-i", str(lab.inventory_path), "-l", "node01", "-t", "1", "--json", "sleep 20")
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["exit_code"] is None and "timed out after 1s" in result["error"]


def test_ssh_agent_keys_are_used(lab, tmp_path):
    inv = without_identity(lab, tmp_path)
    env = dict(os.environ, NO_COLOR="1", HOME=str(tmp_path))  # no ~/.ssh keys to fall back on
    env.pop("SSH_AUTH_SOCK", None)
    refused = dccli("run", "-i", str(inv), "-l", "node01", "hostname", env=env)
    assert refused.returncode == 4 and "no usable private key" in refused.stderr
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        env["SSH_AUTH_SOCK"] = str(sock)
        subprocess.run(["ssh-add", "-q", str(lab.key_path)], env=env, check=True, capture_output=True)
        # Every host at once: they share one agent connection (signing requests must not interleave).
        proc = dccli("run", "-i", str(inv), "hostname", env=env)
        assert proc.returncode == 0, proc.stderr
        assert sorted(proc.stdout.splitlines()) == [f"{h.name}: {h.name}" for h in lab.hosts]
    finally:
        agent.terminate()
        agent.wait(5)


def test_user_ssh_config_is_honoured(lab, tmp_path):
    """A host named only in the inventory gets HostName, User, IdentityFile from ~/.ssh/config."""
    node = lab.host("node04")
    (tmp_path / ".ssh").mkdir(mode=0o700)
    (tmp_path / ".ssh" / "config").write_text(
        f"Host db-alias\n  HostName {node.address}\n  User root\n  IdentityFile {lab.key_path}\n")
    inv = tmp_path / "aliases.yml"
    inv.write_text(f"cluster: aliases\ndefaults:\n  known_hosts: {lab.known_hosts_path}\n"
                   "hosts:\n  db-alias: {}\n")
    env = dict(os.environ, NO_COLOR="1", HOME=str(tmp_path))
    env.pop("SSH_AUTH_SOCK", None)
    proc = dccli("run", "-i", str(inv), "hostname", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "db-alias: node04\n"


def test_ssh_config_export_lets_openssh_and_pdsh_reach_every_host(lab, tmp_path):
    cfg = tmp_path / "ssh_config"
    export = dccli("inventory", "export", "--format", "ssh-config", "-i", str(lab.inventory_path))
    assert export.returncode == 0, export.stderr
    cfg.write_text(export.stdout)
    names = [h.name for h in lab.hosts]
    for name in names:
        out = subprocess.run(["ssh", "-F", str(cfg), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                              name, "hostname"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.strip() == name, out.stderr
    if shutil.which("pdsh"):
        env = dict(os.environ, PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS=f"-F {cfg} -o BatchMode=yes -x -l%u %h")
        out = subprocess.run(["pdsh", "-w", ",".join(names), "hostname"], capture_output=True, text=True,
                             env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.splitlines()) == sorted(f"{n}: {n}" for n in names)
    else:
        pytest.fail("pdsh is not installed (make setup installs it)")


def test_ansible_export_drives_ansible_against_the_lab(lab, tmp_path):
    ansible = shutil.which("ansible", path=str(Path(sys.executable).parent)) or shutil.which("ansible")
    assert ansible, "ansible-core is a test dependency (pip install -e '.[test]')"
    inv = tmp_path / "hosts.yml"
    inv.write_text(dccli("inventory", "export", "--format", "ansible", "-i", str(lab.inventory_path)).stdout)
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_PYTHON_INTERPRETER="auto_silent",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_HOME=str(tmp_path / "a"))
    out = subprocess.run([ansible, "-i", str(inv), "node01,node02", "-m", "command", "-a", "hostname", "-o"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "node01 | CHANGED | rc=0 | (stdout) node01" in out.stdout
    assert "node02 | CHANGED | rc=0 | (stdout) node02" in out.stdout


def _pool(lab):
    from dccli.cli.targets import make_pool
    from dccli.inventory.loader import load

    inventory = load(lab.inventory_path)
    return inventory, make_pool(inventory, None)


def test_output_after_exit_status_is_not_lost(lab):
    """sshd sends exit-status when the command exits, possibly before the rest of its output: exec must read
    to EOF. Here a child still writes a megabyte after the shell has exited (the old loop returned empty)."""
    inventory, pool = _pool(lab)
    try:
        conn = pool.get(inventory.select("node01")[0])
        res = conn.exec("(sleep 0.3; head -c 1000000 /dev/zero | tr '\\0' x) & exit 7", timeout=60)
    finally:
        pool.close()
    assert res.exit_code == 7 and not res.timed_out
    assert res.stdout == b"x" * 1_000_000


def test_background_process_holding_the_output_does_not_hang_exec(lab, monkeypatch):
    """`cmd &` without a redirect keeps the channel's output open after the shell exits (OpenSSH's ssh waits
    for ever there); exec gives up on EOF after a grace and returns the exit status."""
    from dccli.transport import ssh

    monkeypatch.setattr(ssh, "EOF_GRACE_S", 0.5)
    inventory, pool = _pool(lab)
    try:
        conn = pool.get(inventory.select("node01")[0])
        res = conn.exec("echo started; sleep 60 & exit 0", timeout=30)
        conn.exec("pkill -x sleep || true", timeout=30)
    finally:
        pool.close()
    assert not res.timed_out and res.exit_code == 0
    assert res.stdout == b"started\n"
