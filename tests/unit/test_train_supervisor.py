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


def test_output_split_by_rank_and_exit_recorded(tmp_path):
    script = 'echo "[0]:hello from 0"; echo "agent line"; echo "[1]:hello $SECRET"; echo "[0]:bye"; exit 3'
    d, _, started = start(tmp_path, ["sh", "-c", script], {"SECRET": "from-env-file"})
    assert started["ok"] and started["pgid"] == started["pid"]
    st = status(d)
    assert st["exit_code"] == 3 and st["signal"] is None and st["ranks_done"] == []
    assert (d / "node.log").read_text() == (
        "[0]:hello from 0\nagent line\n[1]:hello from-env-file\n[0]:bye\n"
    )
    assert (d / "rank-0.log").read_text() == "hello from 0\nbye\n"
    assert (d / "rank-1.log").read_text() == "hello from-env-file\n"
    # follow --once streams node.log from an offset
    out = subprocess.run(
        [sys.executable, SUP, "follow", str(d), "17", "--once"], capture_output=True, timeout=30
    )
    assert out.stdout == b"agent line\n[1]:hello from-env-file\n[0]:bye\n"
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
    done = tmp_path / "done"
    done.mkdir()
    ok = tmp_path / "ok.py"
    ok.write_text("import sys\nprint('args', sys.argv[1:], __name__)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit(4)\n")
    env = dict(os.environ, RANK="5")
    out = subprocess.run(
        [sys.executable, SUP, "rank", str(done), "--", str(ok), "--x", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and out.stdout == "args ['--x', '1'] __main__\n"
    assert (done / "5").exists()
    env["RANK"] = "6"
    out = subprocess.run(
        [sys.executable, SUP, "rank", str(done), "--", str(bad)], env=env, capture_output=True, timeout=30
    )
    assert out.returncode == 4 and not (done / "6").exists()
