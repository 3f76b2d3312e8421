"""The lab itself: real namespaced hosts with real sshd, checked with OpenSSH's own client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from labcli import dccli

pytestmark = pytest.mark.lab


def on_all(lab, openssh, command: str) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(len(lab.hosts)) as pool:
        results = pool.map(lambda h: openssh(lab, h.name, command), lab.hosts)
        return {h.name: r for h, r in zip(lab.hosts, results, strict=True)}


def ns_of(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def processes_in(namespaces: set[str], kind: str) -> list[int]:
    """Live processes in those namespaces; a zombie (dead, waiting for its parent to reap it) holds nothing."""
    from dccli.lab import procs

    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [pid for pid in pids if ns_of(pid, kind) in namespaces and procs.alive(pid)]


def mounts_under(directory: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if str(directory) in line]


def snapshot(lab) -> dict[str, set[str]]:
    """The PID and mount namespaces of every host (to prove afterwards that they are empty)."""
    inits = [h.init_pid for h in lab.hosts if h.init_pid]
    return {kind: {ns for pid in inits if (ns := ns_of(pid, kind))} for kind in ("pid", "mnt")}


def assert_gone(lab, namespaces: dict[str, set[str]]) -> None:
    from dccli.lab import procs
    from dccli.lab.registry import run_dir

    for kind, found in namespaces.items():
        assert found, f"no {kind} namespaces recorded"
        assert processes_in(found, kind) == [], f"processes left in the hosts' {kind} namespaces"
    assert not any(procs.alive(h.init_pid, h.init_start) for h in lab.hosts)
    assert procs.tagged_pids(lab.tag) == []
    assert mounts_under(lab.dir) == []
    assert not lab.dir.exists()
    claim = run_dir() / f"index-{lab.index}.json"
    assert not claim.exists() or str(lab.dir) not in claim.read_text()


# ---------------------------------------------------------------- hosts, seen through OpenSSH


def test_every_host_answers_with_its_own_hostname(lab, openssh):
    results = on_all(lab, openssh, "hostname; cat /etc/hostname")
    for name, proc in results.items():
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [name, name]


def test_addresses_follow_the_plan(lab):
    assert 1 <= lab.index <= 254
    assert [h.address for h in lab.hosts] == [f"127.{lab.index}.0.{n}" for n in range(1, 9)]
    assert [h.name for h in lab.hosts] == [f"node{n:02d}" for n in range(1, 9)]
    assert oct(lab.key_path.stat().st_mode & 0o777) == "0o600"


def test_sshd_listens_only_on_its_own_address(lab, openssh):
    # 127.0.0.1 and a neighbour's address must not reach node01's sshd (nothing else listens there).
    proc = openssh(
        lab,
        "node01",
        "grep -E '^(ListenAddress|PermitRootLogin|PasswordAuthentication)' /etc/ssh/sshd_config",
    )
    assert f"ListenAddress {lab.hosts[0].address}:22" in proc.stdout
    assert "PermitRootLogin prohibit-password" in proc.stdout
    ss = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    local = [line.split()[3] for line in ss.splitlines()]
    lab_listeners = sorted(a for a in local if a.startswith(f"127.{lab.index}."))
    assert lab_listeners == sorted(f"{h.address}:22" for h in lab.hosts)


def test_files_written_on_a_host_stay_on_that_host(lab, openssh):
    marker = f"/opt/dccli-lab-test-{os.getpid()}"
    proc = openssh(lab, "node01", f"echo hello > {marker} && echo changed > /etc/hostname && cat {marker}")
    assert proc.returncode == 0 and proc.stdout == "hello\n", proc.stderr
    try:
        assert openssh(lab, "node02", f"test -e {marker}").returncode == 1
        assert openssh(lab, "node02", "cat /etc/hostname").stdout == "node02\n"
        assert not Path(marker).exists()  # the control node is untouched
        assert Path("/etc/hostname").read_text() != "changed\n"
        upper = lab.host("node01").upper_dir
        assert (upper / marker.lstrip("/")).read_text() == "hello\n"  # the write went to node01's upper dir
        assert not (lab.host("node02").upper_dir / marker.lstrip("/")).exists()
    finally:
        openssh(lab, "node01", f"rm -f {marker}; echo node01 > /etc/hostname")


def test_control_node_secrets_and_lab_disks_are_hidden(lab, openssh):
    proc = openssh(lab, "node03", "ls -A /root; ls /root/.ssh; ls -A /tmp; ls /etc/ssh")
    assert proc.returncode == 0, proc.stderr
    names = proc.stdout.split()
    assert ".pyenv" not in names and "id_ed25519" not in names
    assert "authorized_keys" in names
    assert "ssh_host_rsa_key" not in names  # the control node's own host keys are whited out
    assert {"ssh_host_ed25519_key", "ssh_host_ecdsa_key"} <= set(names)
    assert openssh(lab, "node03", f"test -e {lab.dir}").returncode == 1


def test_each_host_has_its_own_process_table(lab, openssh):
    proc = openssh(lab, "node04", "ps -e -o pid=,comm=")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(None, 1) for line in proc.stdout.splitlines()]
    commands = {comm for _, comm in rows}
    assert ["1", "python3"] in rows  # the host's init
    assert commands <= {"python3", "sshd", "bash", "sh", "ps"}, commands
    assert len(rows) < 12
    mounts = openssh(lab, "node04", "findmnt -rn -o TARGET").stdout.split()
    # /proc/sys/kernel/random/boot_id: the host's own boot id (dccli lab reboot gives it a new one).
    expected = [
        "/",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/proc",
        "/proc/sys",
        "/proc/sys/kernel/random/boot_id",
        "/run",
        "/sys",
        "/tmp",
    ]
    if Path("/proc/sysrq-trigger").exists():
        expected.insert(7, "/proc/sysrq-trigger")
    assert sorted(mounts) == sorted(expected + list(lab.shares))  # + the checkout, where hosts cannot see it
    # The shared kernel is read-only from a host.
    assert openssh(lab, "node04", "echo 1 > /proc/sys/kernel/sysrq").returncode != 0


def test_sftp_put_and_get(lab, lab_ssh_options, tmp_path):
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(200_000))
    back = tmp_path / "back.bin"
    batch = tmp_path / "batch"
    batch.write_text(f"put {src} /tmp/payload.bin\nget /tmp/payload.bin {back}\n")
    host = lab.host("node05")
    argv = ["sftp", *lab_ssh_options(lab, "node05"), "-b", str(batch), f"root@{host.address}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert back.read_bytes() == src.read_bytes()


def test_host_exec_runs_inside_the_host(lab):
    from dccli.lab.host import host_exec

    proc = host_exec(
        lab, "node06", ["sh", "-c", "hostname; cat; echo $HOME; ps -o pid= -p 1 | tr -d ' '"], input="in\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["node06", "in", "/root", "1"]


def test_sshd_stop_and_start(lab, openssh):
    from dccli.lab.host import sshd_start, sshd_stop
    from dccli.lab.manager import lab_status

    sshd_stop(lab, "node08")
    try:
        refused = openssh(lab, "node08", "true")
        assert refused.returncode == 255 and "refused" in refused.stderr.lower()
        status = {h.name: h for h in lab_status(lab.name).hosts}
        assert status["node08"].init_alive and not status["node08"].sshd_answering
        assert status["node07"].up
    finally:
        sshd_start(lab, "node08")
    assert openssh(lab, "node08", "hostname").stdout == "node08\n"


def test_active_lab_inventory_is_the_running_lab(lab):
    from dccli.lab.registry import active_lab_inventory

    assert active_lab_inventory() == lab.inventory_path


def test_inventory_schema(lab):
    import yaml

    doc = yaml.safe_load(lab.inventory_path.read_text())
    assert doc["cluster"] == f"lab-{lab.name}"
    assert doc["defaults"] == {
        "user": "root",
        "port": 22,
        "identity_file": str(lab.key_path),
        "known_hosts": str(lab.known_hosts_path),
    }
    assert doc["racks"] == {
        "rack01": {
            "location": f"lab {lab.name}",
            "hosts": {"node[01-08]": {"address": f"127.{lab.index}.0.[1-8]", "gpus": 0}},
        }
    }
    assert doc["groups"] == {"gpu": "node[01-08]"}
    # The playbooks' lab settings (docs/playbooks.md): the local apt repository, the in-host reboot command.
    assert doc["vars"]["nvidia_apt_repo"].startswith("deb [trusted=yes] file:/")
    assert doc["vars"]["nvidia_reboot_command"] == "/usr/local/sbin/dccli-lab-reboot"


def test_cli_status_and_inventory(lab):
    env = dict(os.environ, NO_COLOR="1")
    run = [sys.executable, "-m", "dccli", "lab"]
    status = subprocess.run(
        [*run, "status", "--name", lab.name, "--json"], capture_output=True, text=True, env=env
    )
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["schema_version"] == 1 and doc["hosts_up"] == 8 == doc["hosts_total"]
    inv = subprocess.run([*run, "inventory", "--name", lab.name], capture_output=True, text=True, env=env)
    assert inv.returncode == 0 and inv.stdout.strip() == str(lab.inventory_path)
    missing = subprocess.run(
        [*run, "status", "--name", "no-such-lab"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 1 and missing.stderr.startswith("dccli: error: lab 'no-such-lab' not found")


# ---------------------------------------------------------------- labs that tests may break


def test_regenerated_host_keys_are_refused_by_strict_ssh(make_lab, openssh):
    from dccli.lab.host import regenerate_host_keys

    small = make_lab(2)
    assert openssh(small, "node02", "true").returncode == 0
    before = small.known_hosts_path.read_text()
    new_keys = regenerate_host_keys(small, "node02")
    assert len(new_keys) == 2 and all(k.split()[1] not in before for k in new_keys)
    assert small.known_hosts_path.read_text() == before  # deliberately not updated
    refused = openssh(small, "node02", "true")
    assert refused.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    assert openssh(small, "node01", "true").returncode == 0


def test_two_labs_coexist(lab, make_lab, openssh):
    other = make_lab(2)
    assert other.index != lab.index
    assert openssh(other, "node01", "hostname; echo other > /root/mark").stdout == "node01\n"
    assert openssh(lab, "node01", "test -e /root/mark").returncode == 1
    assert openssh(lab, "node01", "hostname").stdout == "node01\n"


def test_down_leaves_no_process_mount_or_file(make_lab, openssh):
    from dccli.lab.manager import lab_down

    small = make_lab(3)
    # Orphans re-parented to the host's init, the way daemons and nohup'd jobs end up.
    bg = "sleep 300 </dev/null >/dev/null 2>&1 &"
    assert openssh(small, "node01", f"{bg} {bg} true").returncode == 0
    namespaces = snapshot(small)
    assert len(processes_in(namespaces["pid"], "pid")) >= 6  # inits + sshd + the sleeps
    started = time.monotonic()
    lab_down(small.name)
    print(f"\n[lab] {small.name}: 3 hosts down in {time.monotonic() - started:.2f}s")
    assert_gone(small, namespaces)
    lab_down(small.name)  # idempotent


def test_down_after_host_init_was_killed(make_lab):
    from dccli.lab.manager import lab_down, lab_status

    small = make_lab(2)
    namespaces = snapshot(small)
    os.kill(small.host("node01").init_pid, signal.SIGKILL)
    time.sleep(0.2)
    status = {h.name: h for h in lab_status(small.name).hosts}
    assert not status["node01"].init_alive and not status["node01"].up and status["node02"].up
    lab_down(small.name)
    assert_gone(small, namespaces)


def test_down_after_sshd_and_init_were_stopped(make_lab):
    from dccli.lab.host import host_exec
    from dccli.lab.manager import lab_down

    small = make_lab(2)
    namespaces = snapshot(small)
    assert host_exec(small, "node01", ["sh", "-c", "kill -STOP $(cat /run/sshd.pid)"]).returncode == 0
    os.kill(small.host("node02").init_pid, signal.SIGSTOP)  # a frozen host
    lab_down(small.name)
    assert_gone(small, namespaces)


def test_down_of_a_half_created_lab(make_lab):
    """lab.json lost the init pids (a crash mid-`up`): the tag in the inits' environment still finds them."""
    from dccli.lab.manager import lab_down

    small = make_lab(2)
    namespaces = snapshot(small)
    data = json.loads((small.dir / "lab.json").read_text())
    for host in data["hosts"]:
        host["init_pid"] = host["init_start"] = None
    data["state"] = "starting"
    (small.dir / "lab.json").write_text(json.dumps(data))
    lab_down(small.name)
    assert_gone(small, namespaces)


def test_down_of_a_bare_lab_dir(lab_home):
    from dccli.lab.manager import lab_down
    from dccli.lab.registry import lab_dir

    directory = lab_dir("bare")
    (directory / "hosts").mkdir(parents=True)
    lab_down("bare")
    assert not directory.exists()


def test_failed_start_cleans_up(lab_home, monkeypatch):
    from dccli.errors import LabError
    from dccli.lab import host
    from dccli.lab.manager import lab_up
    from dccli.lab.registry import lab_dir

    monkeypatch.setattr(host, "sshd_config", lambda h: "NoSuchOption yes\n")
    name = f"bad{os.getpid()}"
    with pytest.raises(LabError, match="failed to start"):
        lab_up(name, 2)
    assert not lab_dir(name).exists()
    assert mounts_under(lab_dir(name)) == []


def test_name_taken_and_bad_input(lab):
    from dccli.errors import LabError
    from dccli.lab.manager import lab_up

    with pytest.raises(LabError, match="already exists"):
        lab_up(lab.name, 1)
    with pytest.raises(LabError, match="bad lab name"):
        lab_up("../x", 1)
    with pytest.raises(LabError, match="--hosts"):
        lab_up("zero", 0)
    assert lab.dir.exists()  # a refused `up` never touches the running lab


@pytest.mark.slow
def test_64_hosts_up_and_down(make_lab, openssh):
    from dccli.lab.manager import lab_down

    started = time.monotonic()
    big = make_lab(64)
    up_s = time.monotonic() - started
    results = on_all(big, openssh, "hostname")  # 64 parallel OpenSSH connections
    assert {name: r.stdout.strip() for name, r in results.items()} == {h.name: h.name for h in big.hosts}
    namespaces = snapshot(big)
    started = time.monotonic()
    lab_down(big.name)
    down_s = time.monotonic() - started
    print(f"\n[lab] {big.name}: 64 hosts up in {up_s:.2f}s, down in {down_s:.2f}s")
    assert_gone(big, namespaces)


def test_64_parallel_connections_to_one_host(lab, openssh):
    """MaxStartups/MaxSessions are raised: a 64-fork fan-out at one host is never dropped."""
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda _: openssh(lab, "node02", "hostname"), range(64)))
    assert [r.stdout for r in results] == ["node02\n"] * 64, {r.stderr for r in results}


# ---------------------------------------------------------------- pure: addressing and inventory layout


@pytest.mark.parametrize(
    ("number", "address"), [(1, "127.7.0.1"), (250, "127.7.0.250"), (251, "127.7.1.1"), (600, "127.7.2.100")]
)
def test_address_plan(number, address):
    from dccli.lab.model import host_address

    assert host_address(7, number) == address


def test_inventory_splits_ranges_at_the_250_host_boundary(tmp_path):
    import yaml

    from dccli.lab import inventory
    from dccli.lab.model import LabHost, LabInfo, host_address, host_name

    hosts = tuple(LabHost(host_name(n, 260), host_address(9, n), 22, None, tmp_path) for n in range(1, 261))
    info = LabInfo("big", 9, tmp_path, tmp_path / "inv.yml", tmp_path / "id", tmp_path / "kh", hosts)
    doc = yaml.safe_load(inventory.render(info))
    assert len(doc["racks"]) == 33 and "rack01" in doc["racks"] and "rack33" in doc["racks"]
    assert doc["racks"]["rack32"]["hosts"] == {
        "node[249-250]": {"address": "127.9.0.[249-250]", "gpus": 0},
        "node[251-256]": {"address": "127.9.1.[1-6]", "gpus": 0},
    }
    assert doc["racks"]["rack33"]["hosts"] == {"node[257-260]": {"address": "127.9.1.[7-10]", "gpus": 0}}
    assert doc["groups"] == {"gpu": "node[001-260]"}


def test_lab_commands_without_name_find_the_only_running_lab(lab):
    """`lab status/inventory/fault/reboot` without --name: the "default" lab if up, else the only lab up."""
    from dccli.lab.registry import resolve_name

    assert resolve_name(None) == lab.name and resolve_name("other") == "other"
    status = dccli("lab", "status")
    assert status.returncode == 0 and status.stdout.startswith(f"lab {lab.name} "), status.stderr
    assert dccli("lab", "inventory").stdout.strip() == str(lab.inventory_path)
