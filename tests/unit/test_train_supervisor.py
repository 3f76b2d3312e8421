"""The node-side supervisor, run for real on this machine (it is stdlib-only and node-agnostic):
daemonizing, per-rank log split, end records, stop with /proc verification, the per-rank wrapper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

SUP = str(Path(__file__).resolve().parents[2] / "dccli" / "train" / "supervisor.py")


def start(tmp_path: Path, argv: list[str], env: dict | None = None) -> tuple[Path, str, dict]:
    d = tmp_path / "attempt-0"
    d.mkdir()
    (d / "spec.json").write_text(json.dumps({"argv": argv, "workdir": str(tmp_path)}))
    (d / "env.json").write_text(json.dumps(env or {}))
    run_id = f"tr-test-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        ["env", f"DCCLI_RUN_ID={run_id}", sys.executable, SUP, "start", str(d)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return d, run_id, json.loads(out.stdout)


def status(d: Path, final: bool = True, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads((d / "status.json").read_text())
        if not final or st["state"] == "exited" or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


def test_ranks_write_their_own_files_and_follow_merges_them_from_offsets(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import os, sys\nr = os.environ['RANK']\nprint('hello from', r, os.environ['SECRET'])\n"
        "print('to stderr', r, file=sys.stderr)\nsys.exit(int(r))\n"
    )
    d = tmp_path / "attempt-0"
    # a stand-in for torchrun: its own line, then two ranks through the per-rank wrapper; rank 1 fails
    fake = (
        f'echo "agent line"; for r in 0 1; do RANK=$r {sys.executable} -u {SUP} rank {d} -- {script} & done; '
        "wait; exit 3"
    )
    d, _, started = start(tmp_path, ["sh", "-c", fake], {"SECRET": "from-env-file"})
    assert started["ok"] and started["pgid"] == started["pid"]
    st = status(d)
    assert st["exit_code"] == 3 and st["signal"] is None and st["ranks_done"] == [0]  # rank 1 exited 1
    assert (d / "node.log").read_text() == "agent line\n"
    assert (d / "rank-0.log").read_text() == "hello from 0 from-env-file\nto stderr 0\n"
    assert (d / "rank-1.log").read_text() == "hello from 1 from-env-file\nto stderr 1\n"
    out = subprocess.run(
        [sys.executable, SUP, "follow", str(d), "n:0", "--once"], capture_output=True, timeout=30
    )
    assert sorted(out.stdout.splitlines()) == sorted(
        [
            b"n\tagent line",
            b"0\thello from 0 from-env-file",
            b"0\tto stderr 0",
            b"1\thello from 1 from-env-file",
            b"1\tto stderr 1",
        ]
    )
    # from offsets: node.log and rank 0 already read, rank 1 from its second line
    out = subprocess.run(
        [sys.executable, SUP, "follow", str(d), f"n:11,0:{(d / 'rank-0.log').stat().st_size},1:27"],
        capture_output=True,
        timeout=30,
    )
    assert out.stdout == b"1\tto stderr 1\n"
    # an attempt is never started twice
    again = subprocess.run([sys.executable, SUP, "start", str(d)], capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "already started" in again.stdout


def test_torchrun_runs_in_its_own_session_and_stop_leaves_nothing(tmp_path):
    d, run_id, started = start(tmp_path, ["sh", "-c", "sleep 300 & sleep 300 & wait"])
    pid = started["pid"]
    assert os.getsid(pid) == pid != os.getsid(started["supervisor_pid"])  # torchrun's own session
    procs = json.loads(
        subprocess.run([sys.executable, SUP, "procs", run_id], capture_output=True, timeout=30).stdout
    )
    assert len(procs) >= 4  # supervisor, sh, two sleeps
    stop = subprocess.run(
        [sys.executable, SUP, "stop", str(d), run_id, "2"], capture_output=True, text=True, timeout=60
    )
    res = json.loads(stop.stdout)
    assert res["leftovers"] == []
    st = status(d)
    assert st["state"] == "exited" and st["signal"] == 15
    procs = json.loads(
        subprocess.run([sys.executable, SUP, "procs", run_id], capture_output=True, timeout=30).stdout
    )
    assert procs == []


def test_killing_the_supervisor_takes_torchrun_down(tmp_path):
    d, _run_id, started = start(tmp_path, ["sh", "-c", "sleep 300"])
    os.kill(started["supervisor_pid"], 9)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(started["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("torchrun outlived its supervisor")
    watch = subprocess.run(
        [sys.executable, SUP, "watch", str(d), "0.1"], capture_output=True, text=True, timeout=30
    )
    beat = json.loads(watch.stdout.splitlines()[-1])
    assert (
        beat["state"] == "running" and beat["supervisor_alive"] is False
    )  # what the watcher calls NODE_FAIL


def test_rank_wrapper_marks_only_finished_ranks(tmp_path):
    (tmp_path / "done").mkdir()
    ok = tmp_path / "ok.py"
    ok.write_text("import sys\nprint('args', sys.argv[1:], __name__)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit(4)\n")
    env = dict(os.environ, RANK="5")
    out = subprocess.run(
        [sys.executable, SUP, "rank", str(tmp_path), "--", str(ok), "--x", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and (tmp_path / "rank-5.log").read_text() == "args ['--x', '1'] __main__\n"
    assert (tmp_path / "done" / "5").exists()
    env["RANK"] = "6"
    out = subprocess.run(
        [sys.executable, SUP, "rank", str(tmp_path), "--", str(bad)], env=env, capture_output=True, timeout=30
    )
    assert out.returncode == 4 and not (tmp_path / "done" / "6").exists()
