"""`dccli backup` with rest-server repositories, against a real server: `rclone serve restic`.

Debian 12 has no rest-server package; rclone implements restic's REST protocol (the v2 API, htpasswd users,
--private-repos, --append-only). It runs INSIDE the storage lab host node03 (its own mount, PID and UTS
namespaces, its files on node03's disk) on node03's loopback address: node01 and node02 reach it over
TCP as hosts reach a storage server, and `lab down` stops it with the host.

The rest password sits in the repository URL (rest:http://dccli:PASSWORD@host:port/dccli/main). It must
never show up in any process's argv or environment (on the hosts and on the control node), in dccli's
output, in the state DB or in any file under $DCCLI_HOME: a watcher scans every process's cmdline and
environ while dccli runs, and the files afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from labcli import dccli as run_dccli

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        shutil.which("rclone") is None, reason="rclone is not installed (make setup installs it)"
    ),
]

MIB = 1 << 20
USER = "dccli"
# A / and an @ in the password: the URL holds it percent-encoded, restic and dccli must decode it alike.
PASSWORD = f"Rs/{secrets.token_hex(10)}@x"
PORT, APPEND_ONLY_PORT = 8000, 8001

MAKE_TREE = r"""
import os, sys
root, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root, exist_ok=True)
for i in range(files):
    with open(os.path.join(root, "shard-%02d.bin" % i), "wb") as f:
        f.write(os.urandom(size << 20))
"""

HASHES = r"""
import hashlib, json, os, sys
root = sys.argv[1]; out = {}
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
print(json.dumps(out, sort_keys=True))
"""


def rest_url(lab, path: str, password: str = PASSWORD, port: int = PORT) -> str:
    return f"rest:http://{USER}:{quote(password, safe='')}@{lab.host('node03').address}:{port}/{path}"


def backup_section(lab) -> str:
    return f"""
backup:
  repositories:
    main: {{url: "{rest_url(lab, "dccli/main")}"}}
    wrong: {{url: "{rest_url(lab, "dccli/main", password="not-the-password")}"}}
    foreign: {{url: "{rest_url(lab, "someone-else/repo")}"}}
    keepall: {{url: "{rest_url(lab, "dccli/keepall", port=APPEND_ONLY_PORT)}"}}
  profiles:
    ckpt: {{hosts: "node[01-02]", repository: main, paths: [/data/ckpt], retention: {{keep_last: 1}}}}
    wrongpw: {{hosts: node01, repository: wrong, paths: [/data/ckpt]}}
    notmine: {{hosts: node01, repository: foreign, paths: [/data/ckpt]}}
    archive: {{hosts: node02, repository: keepall, paths: [/data/ckpt], retention: {{keep_last: 1}}}}
"""


def hx(lab, host: str, *argv: str, input: str | None = None, timeout: float = 120) -> str:
    from dccli.lab.host import host_exec

    proc = host_exec(lab, host, list(argv), input=input, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def start_rclone(lab, port: int, *options: str) -> None:
    """`rclone serve restic` in node03, as its storage service; users from an htpasswd file ({SHA}), so
    the password is not in rclone's argv either (the watcher below would see it)."""
    import base64

    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    hx(
        lab,
        "node03",
        "sh",
        "-c",
        "umask 077; mkdir -p /etc/rclone; cat > /etc/rclone/htpasswd",
        input=f"{USER}:{{SHA}}{digest}\n",
    )
    address = lab.host("node03").address
    hx(
        lab,
        "node03",
        "sh",
        "-c",
        f"mkdir -p /srv/rest-{port} && setsid rclone serve restic /srv/rest-{port} --addr {address}:{port}"
        f" --htpasswd /etc/rclone/htpasswd --private-repos {' '.join(options)}"
        f" > /var/log/rclone-{port}.log 2>&1 < /dev/null &",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(hx(lab, "node03", "cat", f"/var/log/rclone-{port}.log")) from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def rlab(lab_home: Path):
    from dccli.lab.manager import lab_down, lab_up

    name = f"bkr{os.getpid()}"
    info = lab_up(name, 3)
    try:
        start_rclone(info, PORT)
        start_rclone(info, APPEND_ONLY_PORT, "--append-only")
        inv = lab_home / f"{name}-backup.yml"
        inv.write_text(info.inventory_path.read_text() + backup_section(info))
        hx(info, "node01", "python3", "-c", MAKE_TREE, "/data/ckpt", "8", "8")  # 64 MiB: restic runs a while
        hx(info, "node02", "python3", "-c", MAKE_TREE, "/data/ckpt", "4", "4")
        yield info, inv, lab_home
    finally:
        lab_down(name)


class SecretWatch:
    """Scans every process's cmdline and environ (the lab hosts' processes are visible from here) for the
    password, raw or percent-encoded, every few milliseconds while dccli runs."""

    def __init__(self) -> None:
        self.needles = [PASSWORD.encode(), quote(PASSWORD, safe="").encode()]
        self.hits: list[str] = []
        self.restic_seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)

    def _scan(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == str(os.getpid()):
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        data = Path(f"/proc/{pid}/{what}").read_bytes()
                    except OSError:
                        continue
                    if what == "cmdline" and b"restic\0" in data[:200] and b"--repository-file" in data:
                        self.restic_seen.add(data.split(b"\0")[-2])  # the last argument: what it backs up
                    if any(n in data for n in self.needles):
                        self.hits.append(f"pid {pid} {what}: {data[:120]!r}")
            time.sleep(0.005)

    def __enter__(self) -> SecretWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


OUTPUTS: list[str] = []  # everything dccli printed in this module: the password must be in none of it


def dccli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = run_dccli(*args, timeout=timeout)
    OUTPUTS.append(proc.stdout + proc.stderr)
    return proc


def assert_no_secret_anywhere(home: Path) -> None:
    needles = [PASSWORD.encode(), quote(PASSWORD, safe="").encode()]
    for text in OUTPUTS:
        assert not any(n.decode() in text for n in needles), text
    for path in home.rglob("*"):
        if path.is_file() and not path.name.endswith(".yml") and "labs" not in path.parts:
            data = path.read_bytes()
            assert not any(n in data for n in needles), path


def test_rest_repository_end_to_end(rlab) -> None:
    lab, inv, home = rlab
    with SecretWatch() as watch:
        first = dccli("backup", "run", "-i", str(inv), "--profile", "ckpt", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    results = json.loads(first.stdout)["results"]
    assert [(r["host"], r["status"]) for r in results] == [("node01", "ok"), ("node02", "ok")]
    assert results[0]["bytes_added"] >= 64 * MIB and results[1]["bytes_added"] >= 16 * MIB
    # Both hosts' restic ran under the watcher's eyes, with the URL in a pipe: no password in any argv or
    # environment (hosts, helper, sshd, this machine), nor a RESTIC_REPOSITORY.
    assert watch.restic_seen >= {b"/data/ckpt"}, watch.restic_seen
    assert watch.hits == []
    assert (home / "backup" / "main.initialized").read_text().startswith("sha256:")

    with SecretWatch() as watch:
        shown = dccli("backup", "ls", "-i", str(inv), "--profile", "ckpt", "--json")
        restored = dccli(
            "backup", "restore", "latest", "--host", "node01", "--target", "/restore/r1", "-i", str(inv)
        )
        target = home / "rest-restored-node02"
        to_control = dccli(
            "backup",
            "restore",
            "latest",
            "--host",
            "node02",
            "--target",
            str(target),
            "--to-control",
            "--include",
            "/data/ckpt/shard-01.bin",
            "-i",
            str(inv),
        )
        verified = [
            dccli("backup", "verify", "-i", str(inv), "--profile", "ckpt", "--subsets", "2") for _ in range(2)
        ]
    assert watch.hits == []
    assert shown.returncode == 0, shown.stderr
    snaps = json.loads(shown.stdout)["snapshots"]
    assert sorted(s["host"] for s in snaps) == ["node01", "node02"]
    assert {s["id"][:8] for s in snaps} == {r["snapshot_id"] for r in results}
    assert all(s["repository"] == "main" and s["profile"] == "ckpt" for s in snaps)

    # Byte-identical restore onto the host (sha256 of every file) ...
    assert restored.returncode == 0, restored.stderr
    source = json.loads(hx(lab, "node01", "python3", "-c", HASHES, "/data/ckpt"))
    copy = json.loads(hx(lab, "node01", "python3", "-c", HASHES, "/restore/r1/data/ckpt"))
    assert len(source) == 8 and copy == source
    # ... and onto the control node, one file.
    assert to_control.returncode == 0, to_control.stderr
    got = target / "data/ckpt/shard-01.bin"
    want = json.loads(hx(lab, "node02", "python3", "-c", HASHES, "/data/ckpt"))["shard-01.bin"]
    assert [p.name for p in target.rglob("*") if p.is_file()] == ["shard-01.bin"]
    assert hashlib.sha256(got.read_bytes()).hexdigest() == want

    assert [v.returncode for v in verified] == [0, 0], [v.stdout + v.stderr for v in verified]
    assert "main: check --read-data-subset 1/2: ok" in verified[0].stdout
    assert "main: check --read-data-subset 2/2: ok" in verified[1].stdout

    # The repository is plain restic: an operator lists dccli's snapshots with restic alone.
    plain = plain_restic(lab, home, "snapshots", "--json")
    assert plain.returncode == 0, plain.stderr
    listed = json.loads(plain.stdout)
    assert {s["hostname"] for s in listed} == {"node01", "node02"}
    assert all({"dccli", f"host:{s['hostname']}", "profile:ckpt"} <= set(s["tags"]) for s in listed)

    # A second backup of node01, then prune by the profile's policy (keep_last 1 per host and paths).
    hx(lab, "node01", "python3", "-c", MAKE_TREE, "/data/ckpt", "1", "1")
    again = dccli("backup", "run", "-i", str(inv), "--profile", "ckpt", "-l", "node01")
    assert again.returncode == 0, again.stdout + again.stderr
    pruned = dccli("backup", "prune", "-i", str(inv), "--profile", "ckpt")
    assert pruned.returncode == 0, pruned.stderr
    assert "main: forgot 1 snapshots (ckpt), prune ok" in pruned.stdout
    after = dccli("backup", "ls", "-i", str(inv), "--profile", "ckpt", "--json")
    assert sorted(s["host"] for s in json.loads(after.stdout)["snapshots"]) == ["node01", "node02"]

    assert_no_secret_anywhere(home)


def test_refused_credentials_fail_in_one_line_and_nothing_is_initialized(rlab) -> None:
    _, inv, home = rlab
    wrong = dccli("backup", "run", "-i", str(inv), "--profile", "wrongpw")
    assert wrong.returncode == 1
    assert wrong.stdout.strip() == (
        "node01: wrongpw: FAILED: repository wrong: "
        "Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized"
    )
    assert "not-the-password" not in wrong.stdout + wrong.stderr
    # --private-repos: user dccli may use /dccli/... only. A refusal is not a missing repository: no init.
    foreign = dccli("backup", "run", "-i", str(inv), "--profile", "notmine")
    assert foreign.returncode == 1
    assert "unexpected HTTP response (403): 403 Forbidden" in foreign.stdout
    assert "init" not in foreign.stdout + foreign.stderr
    assert not (home / "backup" / "wrong.initialized").exists()
    assert not (home / "backup" / "foreign.initialized").exists()
    assert_no_secret_anywhere(home)


def _restic_pid(lab, host: str) -> int | None:
    from dccli.lab.host import host_exec

    out = host_exec(lab, host, ["pgrep", "-f", "restic .*backup --json"]).stdout.split()
    return int(out[0]) if out else None


def plain_restic(lab, home: Path, *args: str) -> subprocess.CompletedProcess:
    """restic itself (not dccli) on the rest repository dccli made, with the password file dccli keeps."""
    return subprocess.run(
        ["restic", "-r", rest_url(lab, "dccli/main"), "--password-file", str(home / "backup/main.password"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, RESTIC_CACHE_DIR=str(home / "restic-cache")),
    )


def _locks(lab, home: Path) -> list[str]:
    proc = plain_restic(lab, home, "list", "locks", "--no-lock")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_kill_9_mid_backup_then_next_run_clears_its_own_lock(rlab) -> None:
    """The lock listing comes from the rest-server itself (one HTTP request from the control node); the
    host that wrote the lock proves its PID dead and removes it."""
    lab, inv, home = rlab
    hx(lab, "node01", "python3", "-c", MAKE_TREE, "/data/ckpt", "8", "16")  # 128 MiB of new data
    run = subprocess.Popen(
        [sys.executable, "-m", "dccli", "backup", "run", "-i", str(inv), "--profile", "ckpt", "-l", "node01"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, NO_COLOR="1"),
    )
    try:
        deadline = time.monotonic() + 60
        while (pid := _restic_pid(lab, "node01")) is None or not _locks(lab, home):
            assert time.monotonic() < deadline, "restic and its lock never showed up"
            time.sleep(0.05)
        helper = hx(lab, "node01", "ps", "-o", "ppid=", "-p", str(pid)).strip()
        hx(lab, "node01", "kill", "-9", helper, str(pid))  # restic dies holding its lock; nothing cleans up
        run.kill()
    finally:
        run.wait(30)
    assert _locks(lab, home), "the killed run left no lock?"
    again = dccli("backup", "run", "-i", str(inv), "--profile", "ckpt", "-l", "node01")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "node01: removed its own stale restic lock" in again.stderr and "(node01 pid " in again.stderr
    assert _locks(lab, home) == []


def test_append_only_server_takes_backups_and_refuses_prune_at_once(rlab) -> None:
    _, inv, home = rlab
    backed = dccli("backup", "run", "-i", str(inv), "--profile", "archive")
    assert backed.returncode == 0, backed.stdout + backed.stderr
    backed = dccli("backup", "run", "-i", str(inv), "--profile", "archive")
    assert backed.returncode == 0, backed.stdout + backed.stderr
    # restic retries a 403 for ~45 s; dccli gives up on a refusal at its first retry (hostside.py).
    pruned = dccli("backup", "prune", "-i", str(inv), "--profile", "archive")
    assert pruned.returncode == 1
    assert "keepall: forgot 0 snapshots (archive), prune FAILED" in pruned.stdout
    assert "the server refused to delete (HTTP 403 Forbidden): an append-only rest-server" in pruned.stderr
    assert_no_secret_anywhere(home)
