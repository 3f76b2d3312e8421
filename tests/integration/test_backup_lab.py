"""`dccli backup` against real sshd hosts and real restic: an sftp repository on a storage lab host.

One 3-host lab for the module: node01 and node02 are backed up, node03 holds the repository.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from labcli import dccli as run_dccli

pytestmark = pytest.mark.lab

MIB = 1 << 20
FILES, FILE_MIB = 20, 10  # 200 MiB per host, ten-MiB shards (a checkpoint's tensors)

BACKUP = """
backup:
  concurrency: 4
  repositories:
    main: {url: "sftp:node03:/srv/restic/main"}
  profiles:
    ckpt:
      hosts: "node[01-02]"
      repository: main
      paths: [/data/ckpt]
      excludes: ["*.tmp"]
      checkpoints: {dirs: [/data/ckpt], marker: COMPLETE}
      retention: {keep_last: 2}
    small:
      hosts: node01
      repository: main
      paths: [/data/small]
    broken:
      hosts: node02
      repository: main
      paths: [/data/small, /data/does-not-exist]
"""

MAKE_TREE = r"""
import os, sys
root, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
done = os.path.join(root, "step-000100"); os.makedirs(done, exist_ok=True)
for i in range(files):
    with open(os.path.join(done, "shard-%02d.bin" % i), "wb") as f:
        for _ in range(size):
            f.write(os.urandom(1 << 20))
open(os.path.join(done, "COMPLETE"), "w").close()
partial = os.path.join(root, "step-000200"); os.makedirs(partial, exist_ok=True)
with open(os.path.join(partial, "shard-00.bin"), "wb") as f:
    f.write(os.urandom(1 << 20))
os.makedirs("/data/small", exist_ok=True)
open("/data/small/config.yaml", "w").write("lr: 0.1\n")
"""

CHANGE = r"""
import os, sys
root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):  # rewrite whole shards with new random data: incompressible, nothing to dedup
    with open(os.path.join(root, "step-000100", "shard-%02d.bin" % i), "wb") as f:
        for _ in range(size):
            f.write(os.urandom(1 << 20))
"""

HASHES = r"""
import hashlib, json, os, sys
root = sys.argv[1]; out = {}
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n); h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[os.path.relpath(p, root)] = h.hexdigest()
print(json.dumps(out, sort_keys=True))
"""


dccli = partial(run_dccli, timeout=300)


def hx(lab, host: str, *argv: str, timeout: float = 120) -> str:
    from dccli.lab.host import host_exec

    proc = host_exec(lab, host, list(argv), timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def blab(lab_home: Path):
    from dccli.lab.manager import lab_down, lab_up

    name = f"bk{os.getpid()}"
    info = lab_up(name, 3)
    try:
        inv = lab_home / f"{name}-backup.yml"
        inv.write_text(info.inventory_path.read_text() + BACKUP)
        for host in ("node01", "node02"):
            hx(info, host, "python3", "-c", MAKE_TREE, "/data/ckpt", str(FILES), str(FILE_MIB))
        yield info, inv, lab_home
    finally:
        lab_down(name)


def plain_restic(lab, home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """restic as an operator would run it by hand on the control node: the repository stays plain restic."""
    host = lab.host("node03")
    ssh = (
        f"ssh -F /dev/null -i {home}/backup/main.key -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={lab.known_hosts_path} root@{host.address} -s sftp"
    )
    argv = [
        "restic",
        "-r",
        "sftp:node03:/srv/restic/main",
        "--password-file",
        f"{home}/backup/main.password",
        "-o",
        f"sftp.command={ssh}",
        *args,
    ]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, RESTIC_CACHE_DIR=str(home / "restic-cache")),
    )


def test_dedup_incomplete_checkpoints_and_byte_identical_restore(blab) -> None:
    lab, inv, home = blab
    first = dccli("backup", "run", "-i", str(inv), "--profile", "ckpt", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert [r["host"] for r in doc["results"]] == ["node01", "node02"]
    for r in doc["results"]:
        assert r["status"] == "ok" and r["snapshot_id"] and r["errors"] == []
        assert r["bytes_added"] >= FILES * FILE_MIB * MIB  # random data: nothing to compress or dedup
        assert r["incomplete_checkpoints"] == ["/data/ckpt/step-000200"]  # no COMPLETE marker: skipped
    mode = (home / "backup" / "main.password").stat().st_mode & 0o777
    assert mode == 0o600

    # 10% of the tree changes; the second snapshot adds about that much, not the whole tree again.
    changed = 2 * FILE_MIB * MIB
    hx(lab, "node01", "python3", "-c", CHANGE, "/data/ckpt", "2", str(FILE_MIB))
    second = dccli("backup", "run", "-i", str(inv), "--profile", "ckpt", "-l", "node01", "--json")
    assert second.returncode == 0, second.stderr
    (r,) = json.loads(second.stdout)["results"]
    assert changed <= r["bytes_added"] <= 1.2 * changed, r
    assert "skipped incomplete checkpoint" not in second.stdout  # --json: the report is in the document
    # Per-host results are in the state DB.
    with sqlite3.connect(home / "state.db") as db:
        rows = db.execute(
            "SELECT host, status, snapshot_id, files, bytes_added, duration_s, skipped FROM backup_hosts"
            " WHERE profile = 'ckpt' ORDER BY finished_at"
        ).fetchall()
    assert [(h, s) for h, s, *_ in rows] == [("node01", "ok"), ("node02", "ok"), ("node01", "ok")]
    assert rows[-1][2] == r["snapshot_id"] and rows[-1][3] == FILES + 1 and rows[-1][5] > 0
    assert json.loads(rows[-1][6]) == ["/data/ckpt/step-000200"]

    # Restore into a fresh directory on the host: byte-identical to the source (sha256 of every file).
    restored = dccli(
        "backup", "restore", "latest", "--host", "node01", "--target", "/restore/a", "-i", str(inv)
    )
    assert restored.returncode == 0, restored.stderr
    source = json.loads(hx(lab, "node01", "python3", "-c", HASHES, "/data/ckpt/step-000100"))
    copy = json.loads(hx(lab, "node01", "python3", "-c", HASHES, "/restore/a/data/ckpt/step-000100"))
    assert len(source) == FILES + 1 and copy == source
    assert (
        hx(lab, "node01", "sh", "-c", "test -e /restore/a/data/ckpt/step-000200 && echo yes || echo no")
        == "no\n"
    )

    # ... and onto the control node, one path only.
    target = home / "restored-node02"
    ctl = dccli(
        "backup",
        "restore",
        "latest",
        "--host",
        "node02",
        "--target",
        str(target),
        "--to-control",
        "--include",
        "/data/ckpt/step-000100/shard-03.bin",
        "-i",
        str(inv),
    )
    assert ctl.returncode == 0, ctl.stderr
    files = [p for p in target.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["shard-03.bin"] and files[0].stat().st_size == FILE_MIB * MIB

    # The repository is plain restic: listed by hand with the password file, snapshots tagged by dccli.
    listed = plain_restic(lab, home, "snapshots", "--json")
    assert listed.returncode == 0, listed.stderr
    snaps = json.loads(listed.stdout)
    assert {s["hostname"] for s in snaps} == {"node01", "node02"}
    assert all({"dccli", f"host:{s['hostname']}", "profile:ckpt"} <= set(s["tags"]) for s in snaps)
    assert all(any(t.startswith("run:") for t in s["tags"]) for s in snaps)

    shown = dccli("backup", "ls", "-i", str(inv), "--host", "node01", "--json")
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["snapshots"]) == 2

    verify = dccli("backup", "verify", "-i", str(inv), "--subsets", "2")
    assert verify.returncode == 0 and "check --read-data-subset 1/2: ok" in verify.stdout, verify.stderr
    verify = dccli("backup", "verify", "-i", str(inv), "--subsets", "2")
    assert "check --read-data-subset 2/2: ok" in verify.stdout, verify.stderr

    pruned = dccli("backup", "prune", "-i", str(inv), "--profile", "ckpt")
    assert pruned.returncode == 0, pruned.stderr
    assert "forgot 0 snapshots (ckpt), prune ok" in pruned.stdout  # keep_last 2 per host: nothing to forget


def test_missing_source_is_a_failure(blab) -> None:
    _, inv, _ = blab
    proc = dccli("backup", "run", "-i", str(inv), "--profile", "broken")
    assert proc.returncode == 1
    assert "node02: broken: FAILED: source /data/does-not-exist: No such file or directory" in proc.stdout


def _wait(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def _restic_pid(lab, host: str) -> int | None:
    from dccli.lab.host import host_exec

    # The backup itself, not the short restic runs around it (version, list locks).
    out = host_exec(lab, host, ["pgrep", "-f", "restic .*backup --json"]).stdout.split()
    return int(out[0]) if out else None


def test_kill_9_mid_backup_then_next_run_clears_its_own_lock(blab) -> None:
    lab, inv, home = blab
    hx(
        lab,
        "node01",
        "python3",
        "-c",
        "import os\nos.makedirs('/data/ckpt/step-000300', exist_ok=True)\n"
        "f = open('/data/ckpt/step-000300/big.bin', 'wb')\n[f.write(os.urandom(1 << 20)) for _ in range(150)]\n"
        "open('/data/ckpt/step-000300/COMPLETE', 'w').close()",
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "dccli", "backup", "run", "-i", str(inv), "--profile", "ckpt", "-l", "node01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )
    try:
        pid = _wait(lambda: _restic_pid(lab, "node01"), 60, "restic to start on node01")
        _wait(
            lambda: plain_restic(lab, home, "list", "locks", "--no-lock").stdout.strip(), 30, "restic's lock"
        )
        # The password reaches restic through a pipe: not in its argv, not in its environment.
        password = (home / "backup" / "main.password").read_text().strip()
        seen = hx(
            lab,
            "node01",
            "sh",
            "-c",
            f"tr '\\0' ' ' < /proc/{pid}/cmdline; tr '\\0' ' ' < /proc/{pid}/environ",
        )
        assert "--password-file /proc/self/fd/" in seen and password not in seen
        helper = hx(lab, "node01", "ps", "-o", "ppid=", "-p", str(pid)).strip()
        # restic dies holding its lock, with dccli's helper on the host (whose lock-clearing thread could
        # otherwise tidy up after it) and dccli itself: nothing gets to clean up.
        hx(lab, "node01", "kill", "-9", helper, str(pid))
        run.kill()
    finally:
        run.wait(30)
    assert plain_restic(lab, home, "list", "locks", "--no-lock").stdout.strip(), (
        "the killed run left no lock?"
    )
    again = dccli("backup", "run", "-i", str(inv), "--profile", "ckpt", "-l", "node01")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "node01: removed its own stale restic lock" in again.stderr and "(node01 pid " in again.stderr
    assert plain_restic(lab, home, "list", "locks", "--no-lock").stdout.strip() == ""
    check = plain_restic(lab, home, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no errors were found" in check.stdout


def test_overlapping_runs_one_runs_the_other_exits_locked(blab) -> None:
    lab, inv, home = blab
    hx(lab, "node01", "sh", "-c", "head -c 60000000 /dev/urandom > /data/ckpt/step-000300/more.bin")
    args = [
        sys.executable,
        "-m",
        "dccli",
        "backup",
        "run",
        "--scheduled",
        "-i",
        str(inv),
        "--profile",
        "ckpt",
    ]
    first = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, NO_COLOR="1")
    )
    lock = home / "backup" / f"run-lab-{lab.name}.lock"
    _wait(lambda: lock.exists() and f"pid {first.pid}" in lock.read_text(), 60, "the first run's lock")
    second = dccli("backup", "run", "--scheduled", "-i", str(inv), "--profile", "ckpt", timeout=60)
    out, err = first.communicate(timeout=300)
    assert second.returncode == 5, second.stderr
    assert second.stderr.strip() == (
        f"dccli: error: another dccli backup run holds the lock for cluster "
        f"'lab-{lab.name}' (pid {first.pid}, since " + second.stderr.split("since ", 1)[1].strip()
    )
    assert first.returncode == 0, out + err
    assert "\x1b[" not in out + err  # scheduled: no colours, no live display
    check = plain_restic(lab, home, "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_restic_presence_check_and_apt_install_step(blab) -> None:
    from dccli.backup.run import host_code
    from dccli.cli.targets import make_pool
    from dccli.inventory.loader import load
    from dccli.remote.session import Step, run_steps

    _, inv_path, _ = blab
    inv = load(inv_path)
    args = {"password": "x", "repo": "/nonexistent", "search_path": "/nonexistent-bin"}
    with make_pool(inv, None) as pool:
        conn = pool.get(inv.host("node02"))
        (missing,) = run_steps(
            conn, [Step("p", "restic_prepare", dict(args, install=False))], extra=host_code()
        )
        # apt-get runs for real in the host's own dpkg state; restic is already there, so nothing downloads.
        (installed,) = run_steps(
            conn, [Step("p", "restic_prepare", dict(args, install=True))], extra=host_code()
        )
    assert not missing.ok and "restic is not installed" in (missing.error or "")
    assert installed.ok, installed.error
    assert installed.data["installed"] is True and installed.data["version"].startswith("restic 0.")


@pytest.mark.slow
def test_cron_fires_a_scheduled_run_that_records_success(blab) -> None:
    """Debian's cron itself reads the /etc/cron.d file we install and runs it at the next minute."""
    import http.server
    import threading

    lab, inv, home = blab
    if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0:
        pytest.skip("a cron daemon already runs on this machine; not starting a second one")
    pings: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            pings.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hc/{lab.name}"
    name = f"dccli-backup-lab-{lab.name}-small"
    proc = dccli(
        "backup", "schedule", "--cron", "* * * * *", "--profile", "small", "--ping", url, "-i", str(inv)
    )
    assert proc.returncode == 0, proc.stderr
    cron_file = Path("/etc/cron.d") / name
    cron = None
    try:
        text = cron_file.read_text()
        assert f"DCCLI_HOME={home}" in text and "NO_COLOR=1" in text and "\n* * * * * root " in text
        cron = subprocess.Popen(
            ["/usr/sbin/cron", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        from contextlib import closing

        from dccli.state import db as state_db

        def finished():
            with closing(state_db.connect(home / "state.db")) as db:  # migrated, even before any run
                return db.execute(
                    "SELECT id, exit_code FROM backup_runs WHERE scheduled = 1 AND profiles = 'small'"
                    " AND finished_at IS NOT NULL"
                ).fetchone()

        run_id, code = _wait(finished, 150, "cron to run the scheduled backup", step=1.0)
        assert code == 0
        with sqlite3.connect(home / "state.db") as db:
            status, snap = db.execute(
                "SELECT status, snapshot_id FROM backup_hosts WHERE run_id = ?", (run_id,)
            ).fetchone()
        assert status == "ok" and snap
        log = (home / "backup" / "backup.log").read_text()
        assert f"backup run {run_id}: 1 of 1 host backups ok" in log and "\x1b[" not in log
        _wait(lambda: len(pings) >= 2, 10, "the success ping")
        assert pings[:2] == [f"/hc/{lab.name}/start", f"/hc/{lab.name}"]
    finally:
        if cron is not None:
            cron.terminate()
            cron.wait(10)
        server.shutdown()
        removed = dccli("backup", "schedule", "--remove", "--profile", "small", "-i", str(inv))
    assert removed.returncode == 0 and not cron_file.exists()
