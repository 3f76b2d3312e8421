"""playbooks/ run by real ansible-playbook against lab hosts: real apt/dpkg on the lab's simulated NVIDIA
packages, real pip on a local wheelhouse, the lab's reboot for the driver's kernel module.

Each playbook: the first run changes every host, the second changes nothing, check mode writes nothing
(the hosts' files hashed before and after). The driver branch upgrade (550 -> 570) rolls rack by rack.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
ALL = [f"playbooks/{p}" for p in ("node-tuning.yml", "nvidia-driver.yml", "cuda-toolkit.yml", "dcgm.yml",
       "nvidia-container-toolkit.yml", "python-env.yml")]  # fmt: skip
# The check-mode snapshot hashes every file a host has written (its overlay upper dir) except these:
# sshd's log and Ansible's own temp files change with every login, apt's binary caches with every read.
VOLATILE = ("var/log/", "root/.ansible/", "var/cache/apt/", "var/cache/debconf/")


def ansible_playbook() -> str:
    path = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
        "ansible-playbook"
    )
    assert path, "ansible-core is a test dependency (pip install -e '.[test]')"
    return path


def export_inventory(inventory: Path, tmp_path: Path) -> Path:
    out = subprocess.run([sys.executable, "-m", "dccli", "inventory", "export", "--format", "ansible",
                          "-i", str(inventory)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    path = tmp_path / "hosts.yml"
    path.write_text(out.stdout)
    return path


def provision(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    """dccli provision (stdout and stderr together: the per-task lines and the recap)."""
    argv = [sys.executable, "-m", "dccli", "provision", "-i", str(inventory), *args]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
                          cwd=REPO, env=dict(os.environ, NO_COLOR="1"))  # fmt: skip


def play(hosts: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_PYTHON_INTERPRETER="auto_silent",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS="8", ANSIBLE_PIPELINING="True",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"))  # fmt: skip
    argv = [ansible_playbook(), "-i", str(hosts), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)


def recap(out: str) -> dict[str, dict[str, int]]:
    hosts = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", out, re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def changed_by_play(out: str) -> dict[str, dict[str, int]]:
    """PLAY name -> host -> number of changed task results (loop items counted one by one)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    current = ""
    for line in out.splitlines():
        if m := re.match(
            r"PLAY \[(.*?)\]", line
        ):  # Ansible: "PLAY [name] ***", dccli: "PLAY [name]: 2 hosts"
            current = m.group(1)
        elif m := re.match(r"changed: \[([^\]]+)\]", line):
            counts[current][m.group(1)] += 1
    return counts


def host_sh(lab, host: str, script: str) -> str:
    from dccli.lab.host import host_exec
    from dccli.lab.registry import load

    # Reloaded each time: a reboot gives the host a new init pid.
    proc = host_exec(load(lab.name), host, ["sh", "-c", script], timeout=60)
    assert proc.returncode == 0, (script, proc.stdout, proc.stderr)
    return proc.stdout


def snapshot(lab) -> dict[str, str]:
    """sha256 of every regular file and target of every symlink the hosts have written (their upper dirs)."""
    digests = {}
    for h in lab.hosts:
        for path in sorted(h.upper_dir.rglob("*")):
            rel = str(path.relative_to(h.upper_dir))
            if rel.startswith(VOLATILE):
                continue
            if path.is_symlink():
                digests[f"{h.name}:{rel}"] = "-> " + os.readlink(path)
            elif path.is_file():
                digests[f"{h.name}:{rel}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def boot_ids(lab) -> dict[str, str]:
    return {h.name: host_sh(lab, h.name, "cat /proc/sys/kernel/random/boot_id").strip() for h in lab.hosts}


@pytest.fixture(scope="module")
def plab(lab_home):
    from dccli.lab.manager import lab_down, lab_up

    name = f"pb{os.getpid()}"
    info = lab_up(name, 2, gpus=1)  # the lab's GPU simulator reads the driver packages' version file
    try:
        yield info
    finally:
        lab_down(name)


def test_every_playbook_converges_is_idempotent_and_check_mode_writes_nothing(plab, tmp_path):
    hosts = export_inventory(plab.inventory_path, tmp_path)
    booted = boot_ids(plab)
    first = play(hosts, tmp_path, *ALL)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    changed = changed_by_play(first.stdout)
    plays = [p for p in changed if p]
    assert len(plays) == len(ALL), plays
    for name in plays:
        assert all(changed[name][h.name] > 0 for h in plab.hosts), (name, dict(changed[name]))

    for h in plab.hosts:
        out = host_sh(plab, h.name, "nvidia-smi --version; apt-mark showhold; readlink /usr/local/cuda; "
                      "/opt/dccli/venv/bin/python -c 'import torch; print(torch.__version__)'; "
                      "/etc/init.d/nvidia-persistenced status; /etc/init.d/nvidia-dcgm status; "
                      "cat /etc/security/limits.d/90-rdma-memlock.conf /etc/sysctl.d/90-gpu-node.conf; "
                      "head -1 /etc/cdi/nvidia.yaml; grep -c '^server' /etc/chrony/chrony.conf")  # fmt: skip
        assert "DRIVER version      : 550.90.07" in out
        assert "nvidia-driver-550\n" in out and "/usr/local/cuda-12.4\n" in out
        # The lab wheelhouse's simulated torch, pushed from the control node:
        assert "2.5.1+dccli.sim\n" in out
        assert "nvidia-persistenced is running" in out and "nvidia-dcgm is running" in out
        assert "*    hard    memlock    unlimited" in out and "vm.swappiness = 1" in out
        assert "driver 550.90.07" in out
    assert all(boot_ids(plab)[n] != b for n, b in booted.items())  # the new kernel module: one reboot each
    # apt saw only the repository the playbooks added, and dpkg's state changed in each host's own disk.
    for h in plab.hosts:
        assert host_sh(
            plab, h.name, "ls /etc/apt/sources.list.d; ls /etc/apt | grep -x sources.list || true"
        ) == ("nvidia-cuda.list\n")
        assert "Package: nvidia-driver-550\n" in (h.upper_dir / "var/lib/dpkg/status").read_text()
    assert "Package: nvidia-driver-550\n" not in Path("/var/lib/dpkg/status").read_text()

    second = play(hosts, tmp_path, *ALL)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr
    assert {h: r["changed"] for h, r in recap(second.stdout).items()} == {"node01": 0, "node02": 0}

    # The other tool agrees: dccli provision finds Ansible's result converged, all six playbooks.
    agree = provision(plab.inventory_path, *ALL)
    assert agree.returncode == 0, agree.stdout[-4000:]
    assert {h: r["changed"] for h, r in recap(agree.stdout).items()} == {"node01": 0, "node02": 0}, (
        agree.stdout
    )

    # Check mode against a new desired state: it reports the changes and writes nothing.
    before = snapshot(plab)
    drift = play(hosts, tmp_path, "--check", "-l", "node01", "-e", "cuda_toolkit_series=12-8", "-e", "cuda_toolkit_version=12.8.1",
                 "-e", "node_tuning_memlock=65536", "-e", "nvidia_driver_version=550.127.05",
                 "playbooks/cuda-toolkit.yml", "playbooks/node-tuning.yml", "playbooks/nvidia-driver.yml")  # fmt: skip
    assert drift.returncode == 0, drift.stdout[-4000:] + drift.stderr
    assert recap(drift.stdout)["node01"]["changed"] >= 3, drift.stdout[-3000:]
    assert snapshot(plab) == before


def two_racks(lab, tmp_path: Path) -> Path:
    """The lab's inventory with one host per rack, so that serial: 1 is rack by rack."""
    data = yaml.safe_load(lab.inventory_path.read_text())
    (entry,) = data["racks"]["rack01"]["hosts"].values()
    data["racks"] = {
        f"rack0{i}": {"location": "lab", "hosts": {h.name: {**entry, "address": h.address}}}
        for i, h in enumerate(lab.hosts, 1)
    }
    path = tmp_path / "two-racks.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_driver_branch_upgrade_550_to_570_rolls_rack_by_rack(plab, tmp_path):
    hosts = export_inventory(two_racks(plab, tmp_path), tmp_path)
    # 550 everywhere (already so after the test above; dccli provision makes sure of it in a second or two).
    first = provision(plab.inventory_path, "playbooks/nvidia-driver.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    booted = boot_ids(plab)

    up = play(hosts, tmp_path, "playbooks/nvidia-driver.yml", "-e", "nvidia_driver_branch=570",
              "-e", "nvidia_driver_version=570.124.06", "-e", "nvidia_driver_serial=1")  # fmt: skip
    assert up.returncode == 0, up.stdout[-4000:] + up.stderr
    # Rack by rack: node01 (rack01) is upgraded and rebooted before node02 (rack02) is touched.
    events = re.findall(r"TASK \[(Install|Reboot)[^\]]*\][^\n]*\n(changed): \[(node0\d)\]", up.stdout)
    assert [(task, host) for task, _, host in events] == [
        ("Install", "node01"),
        ("Reboot", "node01"),
        ("Install", "node02"),
        ("Reboot", "node02"),
    ], up.stdout[-3000:]
    assert all(boot_ids(plab)[n] != b for n, b in booted.items())
    for h in plab.hosts:
        out = host_sh(plab, h.name, "nvidia-smi --query-gpu=driver_version --format=csv,noheader; "
                      "apt-mark showhold; dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' 'nvidia-driver-*'")  # fmt: skip
        assert out.splitlines()[0] == "570.124.06", out
        assert "nvidia-driver-570\n" in out and "nvidia-driver-570 hi" in out
        assert "nvidia-driver-550 ii" not in out and "nvidia-driver-550 hi" not in out
    # dccli provision agrees that Ansible's upgrade is converged.
    again = provision(plab.inventory_path, "-e", "nvidia_driver_branch=570", "-e", "nvidia_driver_version=570.124.06",
                      "playbooks/nvidia-driver.yml")  # fmt: skip
    assert {h: r["changed"] for h, r in recap(again.stdout).items()} == {"node01": 0, "node02": 0}, (
        again.stdout
    )


def test_the_same_playbooks_with_dccli_provision(lab_home, tmp_path):
    """dccli provision on fresh hosts: converge, idempotent, check mode writes nothing, 550 -> 570 rack by rack."""
    from dccli.lab.manager import lab_down, lab_up

    name = f"pd{os.getpid()}"
    lab = lab_up(name, 2, gpus=1)
    try:
        first = provision(lab.inventory_path, *ALL)
        assert first.returncode == 0, first.stdout[-4000:]
        changed = changed_by_play(first.stdout)
        assert len([p for p in changed if p]) == len(ALL), first.stdout[-4000:]
        for play_name, hosts in changed.items():
            assert all(hosts[h.name] > 0 for h in lab.hosts), (play_name, dict(hosts))
        second = provision(lab.inventory_path, *ALL)
        assert {h: r["changed"] for h, r in recap(second.stdout).items()} == {"node01": 0, "node02": 0}, (
            second.stdout
        )

        before = snapshot(lab)
        drift = provision(lab.inventory_path, "--check", "-l", "node01", "-e", "cuda_toolkit_series=12-8",
                          "-e", "cuda_toolkit_version=12.8.1", "-e", "node_tuning_memlock=65536",
                          "-e", "nvidia_driver_version=550.127.05", "playbooks/cuda-toolkit.yml",
                          "playbooks/node-tuning.yml", "playbooks/nvidia-driver.yml")  # fmt: skip
        assert drift.returncode == 0, drift.stdout[-4000:]
        assert recap(drift.stdout)["node01"]["changed"] >= 3, drift.stdout[-3000:]
        assert snapshot(lab) == before

        booted = boot_ids(lab)
        up = provision(two_racks(lab, tmp_path), "-e", "nvidia_driver_branch=570", "-e",
                       "nvidia_driver_version=570.124.06", "-e", "nvidia_driver_serial=1", "playbooks/nvidia-driver.yml")  # fmt: skip
        assert up.returncode == 0, up.stdout[-4000:]
        events = re.findall(r"^changed: \[(node0\d)\] (Install|Reboot)", up.stdout, re.M)
        assert events == [
            ("node01", "Install"),
            ("node01", "Reboot"),
            ("node02", "Install"),
            ("node02", "Reboot"),
        ]
        assert all(boot_ids(lab)[n] != b for n, b in booted.items())
        for h in lab.hosts:
            out = host_sh(
                lab, h.name, "nvidia-smi --query-gpu=driver_version --format=csv,noheader; apt-mark showhold"
            )
            assert out == "570.124.06\nnvidia-driver-570\n", out
    finally:
        lab_down(name)
