"""Cron expressions, /etc/cron.d rendering (% escaped, env set, no dots in names), the run lock and
dead-man pings (against a real http.server on 127.0.0.1)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from dccli.backup import locks, schedule
from dccli.errors import ExitCode, LockedError, UsageError


@pytest.mark.parametrize(
    "expr",
    [
        "0 2 * * *",
        "*/15 * * * *",
        "0 1-5/2 * * mon",
        "5,35 3 1,15 jan-mar *",
        "0 0 * * 7",
        "@daily",
        "  0   2 * *   * ",
    ],
)
def test_valid_cron(expr: str) -> None:
    if "jan-mar" in expr:  # Debian cron takes names only alone, not in ranges
        with pytest.raises(UsageError, match="cannot be used in ranges"):
            schedule.validate_cron(expr)
    else:
        assert schedule.validate_cron(expr) == " ".join(expr.split())


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 2 * *", "expected 5 fields"),
        ("60 2 * * *", "minute field '60': 60 is out of range 0-59"),
        ("0 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("0 2 0 * *", "day of month field '0': 0 is out of range 1-31"),
        ("0 2 * 13 *", "month field '13'"),
        ("0 2 * * 8", "day of week field '8'"),
        ("*/0 * * * *", "step '0' is not a positive number"),
        ("5-1 * * * *", "runs backwards"),
        ("0 2 * * funday", "'funday' is not a number or one of sun, mon"),
        ("@sometimes", "expected 5 fields"),
        ("0 2 * * * rm -rf /", "expected 5 fields"),
    ],
)
def test_invalid_cron(expr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("*", r"\*").replace("(", r"\(")):
        schedule.validate_cron(expr)


def job(**kw) -> schedule.CronJob:
    values = dict(
        schedule="0 2 * * *",
        argv=(
            "/opt/dccli/bin/dccli",
            "backup",
            "run",
            "--scheduled",
            "--ping",
            "http://127.0.0.1:9/x?a=1%20b",
        ),
        env=(
            ("PATH", "/opt/dccli/bin:/usr/bin:/bin"),
            ("DCCLI_HOME", "/var/lib/dccli"),
            ("DCCLI_INVENTORY", "/etc/dccli/cluster.yml"),
            ("NO_COLOR", "1"),
        ),
        log="/var/lib/dccli/backup/backup.log",
        name=schedule.entry_name("lab.prod", "ckpt"),
    )
    values.update(kw)
    return schedule.CronJob(**values)


def test_cron_d_file() -> None:
    text = schedule.render_cron_d(job())
    lines = text.splitlines()
    assert lines[0].startswith("# dccli-backup-lab-prod-ckpt:")
    assert "PATH=/opt/dccli/bin:/usr/bin:/bin" in lines and "DCCLI_HOME=/var/lib/dccli" in lines
    assert "NO_COLOR=1" in lines
    entry = lines[-1]
    assert entry.startswith("0 2 * * * root /opt/dccli/bin/dccli backup run --scheduled --ping ")
    assert "'http://127.0.0.1:9/x?a=1\\%20b'" in entry  # % escaped: cron would turn it into a newline
    assert entry.endswith(">> /var/lib/dccli/backup/backup.log 2>&1")
    assert text.endswith("\n")


def test_names_have_no_dots() -> None:
    assert schedule.entry_name("lab.prod", None) == "dccli-backup-lab-prod-all"
    assert all(c.isalnum() or c in "-_" for c in schedule.entry_name("a.b_c-d", "x"))


def test_newlines_are_refused() -> None:
    with pytest.raises(UsageError, match="newlines"):
        schedule.render_cron_d(job(argv=("dccli", "x\n* * * * * root evil")))
    with pytest.raises(UsageError, match="newlines"):
        schedule.render_cron_d(job(env=(("DCCLI_HOME", "/x\n* * * * * root evil"),)))


def test_user_block_round_trip() -> None:
    mine = schedule.render_user_block(job())
    assert "env PATH=/opt/dccli/bin:/usr/bin:/bin DCCLI_HOME=/var/lib/dccli" in mine
    other = "MAILTO=ops\n0 * * * * /usr/bin/true\n"
    assert schedule.strip_user_block(other + mine, job().name) == other


def test_install_cron_d_is_root_owned_0644(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (chown)")
    path = schedule.install_cron_d(job(), tmp_path)
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 0, 0o644)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    assert schedule.remove_cron_d(path.name, tmp_path) and not schedule.remove_cron_d(path.name, tmp_path)


def test_second_run_lock_is_refused_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCCLI_HOME", str(tmp_path))
    with locks.run_lock("c1") as path:
        # Another process (flock is per open file description: a thread in this process would share it).
        code = (
            "import sys; from dccli.backup import locks\n"
            "try:\n    locks.run_lock('c1').__enter__()\nexcept Exception as e:\n"
            "    print(type(e).__name__, e); sys.exit(int(e.exit_code))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=dict(os.environ, DCCLI_HOME=str(tmp_path)),
            timeout=30,
        )
        assert proc.returncode == ExitCode.LOCKED == 5
        assert (
            f"LockedError another dccli backup run holds the lock for cluster 'c1' (pid {os.getpid()}"
            in proc.stdout
        )
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    with locks.run_lock("c1"):  # released on exit
        pass
    assert issubclass(LockedError, Exception)


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args) -> None:
        pass


def test_dead_man_pings_hit_a_local_server() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ping/abc"
        for event in ("start", "success", "failure"):
            assert locks.ping(url, event) is None
    finally:
        server.shutdown()
    assert _Recorder.paths == ["/ping/abc/start", "/ping/abc", "/ping/abc/fail"]
    warning = locks.ping("http://127.0.0.1:1/nothing-listens", "start", timeout=2)
    assert warning is not None and warning.startswith("dead-man ping start failed")
    assert locks.ping_url_problem("file:///etc/passwd") and not locks.ping_url_problem("https://hc/x")
