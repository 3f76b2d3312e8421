"""`dccli train` against real lab hosts: real sshd, real torchrun (c10d, gloo on CPU), real DDP training."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
from functools import partial
from pathlib import Path

import pytest
from labcli import dccli as run_dccli

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "ddp_tiny.py")
torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")


def node_python() -> list[str]:
    """--python (and --env) for lab hosts: this venv's interpreter, unless its base interpreter lives
    under /root, which lab hosts do not see (their /root is private): then the system python3 of the
    same version with this venv's site-packages on PYTHONPATH."""
    real = os.path.realpath(sys.executable)
    if not real.startswith("/root/"):
        return ["--python", sys.executable]
    return ["--python", "/usr/bin/python3", "--env", f"PYTHONPATH={sysconfig.get_paths()['purelib']}"]


def require_visible(lab) -> None:
    """Lab hosts see the control node's root filesystem only: torch and the example must be on it."""
    from dccli.lab.host import host_exec

    torch_init = os.path.join(sysconfig.get_paths()["purelib"], "torch", "__init__.py")
    for path in (torch_init, EXAMPLE):
        if host_exec(lab, lab.hosts[0].name, ["test", "-e", path]).returncode != 0:
            pytest.skip(f"lab hosts cannot see {path} (on a separate filesystem?): no torch on the nodes")


dccli = partial(run_dccli, timeout=300)


def launch(lab, nodes: str, nproc: int, *script_args: str, detach: bool = False, name: str | None = None):
    require_visible(lab)
    args = [
        "train",
        "launch",
        "-i",
        str(lab.inventory_path),
        "--nodes",
        nodes,
        "--nproc-per-node",
        str(nproc),
        *node_python(),
        "--env",
        "SECRET_TOKEN=hunter2",
    ]
    if name:
        args += ["--name", name]
    if detach:
        args.append("--detach")
    return dccli(*args, EXAMPLE, *script_args)


def show(run_id: str) -> dict:
    proc = dccli("train", "show", run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["run"]


def run_pids(lab, host: str, run_id: str) -> list[str]:
    """Processes on the host whose environment carries the run id (seen from inside the host)."""
    from dccli.lab.host import host_exec

    script = (
        f'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f" 2>/dev/null | grep -qx "DCCLI_RUN_ID={run_id}" '
        '&& echo "${f%/environ}"; done; true'
    )
    proc = host_exec(lab, host, ["sh", "-c", script], timeout=30)
    return proc.stdout.split()


def wait_for(predicate, timeout: float, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def check_training(stdout: str, world: int) -> None:
    done = re.findall(
        r"^(node\d+)/(\d+): rank (\d+) done first_loss (\S+) last_loss (\S+) checksum (\S+)$", stdout, re.M
    )
    assert sorted(int(d[1]) for d in done) == list(range(world)), stdout[-3000:]
    for _host, prefix_rank, rank, first, last, _ in done:
        assert prefix_rank == rank  # the host/rank prefix is the global rank
        assert float(last) < float(first) / 100  # the loss went down
    assert len({d[5] for d in done}) == 1  # every rank ends with the same parameters (DDP)


def test_ddp_across_2_nodes_follows_to_success_and_logs_every_line(lab):
    proc = launch(lab, "node[01-02]", 2, "--steps", "120", "--lines", "300", name="tiny2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_training(proc.stdout, 4)
    assert "SUCCEEDED" in proc.stderr
    run_id = re.search(r"run (tr-[0-9a-f]{8})", proc.stderr).group(1)
    # every rank's numbered lines, exactly once, through `train logs` (no -f: the run is over)
    logs = dccli("train", "logs", "tiny2")
    assert logs.returncode == 0, logs.stderr
    for rank in range(4):
        nums = [int(m) for m in re.findall(rf"^node0\d/{rank}: rank {rank} line (\d+)$", logs.stdout, re.M)]
        assert nums == list(range(300)), (rank, len(nums))
    only = dccli("train", "logs", run_id, "--rank", "3", "--grep", "done", "--tail", "5")
    assert re.match(r"node0[12]/3: rank 3 done", only.stdout), only.stdout
    assert len(only.stdout.splitlines()) == 1
    run = show(run_id)
    assert run["state"] == "SUCCEEDED" and run["name"] == "tiny2" and run["duration_s"] > 0
    assert (
        run["spec"]["env_keys"] == ["PYTHONPATH", "SECRET_TOKEN"] or "SECRET_TOKEN" in run["spec"]["env_keys"]
    )
    assert "hunter2" not in json.dumps(run)
    nodes = run["attempts"][0]["nodes"]
    assert [n["host"] for n in nodes] == ["node01", "node02"]
    seen = [(n["host"], n["state"], n["exit_code"], n["ranks_done"]) for n in nodes]
    warning = run["attempts"][0].get("warning") or ""
    assert all(len(n["ranks_done"]) == 2 for n in nodes), (seen, warning)
    # torchrun normally exits 0 once its ranks are done. On a loaded machine (the full suite on 2 cores) two
    # other ends were seen, both after every rank had finished, both documented (docs/train.md): torchrun
    # exiting 1 on both nodes ("crash during teardown"), and one torchrun not exiting within the settle time
    # (its exit barrier), torn down. The run is SUCCEEDED either way, with the warning naming the node and
    # never restarted. Anything else is a failure of this test.
    for host, state, exit_code, _ in seen:
        if state != "exited":
            assert f"{host}: torchrun still running" in warning and "torn down" in warning, (seen, warning)
        elif exit_code != 0:
            assert f"{host}: torchrun ended with" in warning and "crash during teardown" in warning, (seen, warning)
    assert nodes[0]["logs"]["node"].endswith("/attempt-0/node.log")
    # the env file is 0600 on the node and the secret never shows in any process's argv there
    from dccli.lab.host import host_exec

    stat = host_exec(lab, "node01", ["stat", "-c", "%a", f"/var/tmp/dccli-train/{run_id}/attempt-0/env.json"])
    assert stat.stdout.strip() == "600"
    ls = dccli("train", "ls", "-i", str(lab.inventory_path))
    assert run_id in ls.stdout and "SUCCEEDED" in ls.stdout
    assert not run_pids(lab, "node01", run_id) and not run_pids(lab, "node02", run_id)


def test_ddp_across_4_nodes(lab):
    proc = launch(lab, "node[03-06]", 2, "--steps", "100", "--log-every", "25")
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_training(proc.stdout, 8)
    per_rank = {r: len(re.findall(rf"^node0\d/{r}: rank {r} ", proc.stdout, re.M)) for r in range(8)}
    assert set(per_rank.values()) == {1 + 5 + 1}, per_rank  # header, 5 loss lines, done


def test_stop_leaves_nothing_then_resume_and_relaunch_reuse_nothing(lab):
    hosts = ["node07", "node08"]
    proc = launch(
        lab, "node[07-08]", 2, "--steps", "100000", "--sleep", "0.05", "--log-every", "10", detach=True
    )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    follower = subprocess.Popen(
        [sys.executable, "-m", "dccli", "train", "logs", run_id, "-f", "--rank", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )
    assert wait_for(lambda: len(run_pids(lab, "node08", run_id)) >= 3, 60)
    assert wait_for(lambda: show(run_id)["state"] == "RUNNING", 10)
    # drop the follower's connection to node07 mid-run: it reconnects and goes on from its offset
    from dccli.lab.host import host_exec

    def rank0_step() -> int:
        out = dccli("train", "logs", run_id, "--rank", "0", "--tail", "3").stdout
        return max([-1] + [int(n) for n in re.findall(r"rank 0 step (\d+) ", out)])

    assert wait_for(lambda: rank0_step() >= 20, 90, 1.0)
    for h in hosts:  # (which node holds rank 0 is the rendezvous' choice)
        host_exec(lab, h, ["sh", "-c", "pkill -KILL -f 'supervisor[.]py follow' || true"])
    reached = rank0_step()
    assert wait_for(lambda: rank0_step() >= reached + 30, 90, 1.0)
    t0 = time.monotonic()
    stop = dccli("train", "stop", run_id, "--grace", "3")
    stop_s = time.monotonic() - t0
    assert stop.returncode == 0, stop.stderr
    assert "no process of the run left on 2 hosts" in stop.stderr
    for h in hosts:
        assert run_pids(lab, h, run_id) == []
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 130, err  # the follow ended with the run's result: CANCELLED
    assert "log stream lost" in err and "reconnecting" in err  # the drop did happen, and was survived
    steps = [int(s) for s in re.findall(r"^node0[78]/0: rank 0 step (\d+) ", out, re.M)]
    assert len(steps) >= 6 and steps == list(range(0, 10 * len(steps), 10)), out[-2000:]  # none lost or twice
    run = show(run_id)
    assert run["state"] == "CANCELLED" and stop_s < 30
    # resume: a new attempt (new rendezvous id and files), DCCLI_RESTART_COUNT=1, --env values kept
    # on the nodes (never stored here), the old attempt's logs kept
    res = dccli("train", "resume", run_id, "--detach")
    assert res.returncode == 0, res.stderr

    def resumed() -> bool:
        out = dccli("train", "logs", run_id, "--rank", "1", "--grep", "restart").stdout
        return "restart 1)" in out

    assert wait_for(resumed, 90, step=1.0)
    run = show(run_id)
    a0, a1 = run["attempts"]
    assert run["state"] == "RUNNING" and a1["attempt"] == 1
    assert a1["rdzv_id"] != a0["rdzv_id"] and a1["nodes"][0]["dir"].endswith("/attempt-1")
    old = dccli("train", "logs", run_id, "--attempt", "0", "--rank", "0", "--grep", "rank 0 step 0 ")
    assert re.match(r"node0[78]/0: rank 0 step 0 ", old.stdout), old.stdout
    # a node whose processes die (its supervisor killed) ends the attempt: NODE_FAIL naming it, fast,
    # and the run is torn down on every node
    host_exec(lab, "node08", ["sh", "-c", "pkill -KILL -f 'supervisor[.]py start' || true"])
    killed_at = time.monotonic()
    run = wait_for(lambda: (r := show(run_id))["state"] != "RUNNING" and r, 30, 0.2)
    assert run["state"] == "NODE_FAIL" and run["first_failure"]["host"] == "node08", run
    assert time.monotonic() - killed_at < 10
    for h in hosts:
        assert wait_for(lambda h=h: run_pids(lab, h, run_id) == [], 20)
    # a fresh run right after on the same hosts: its own id and files, and it trains to the end
    again = launch(lab, "node[07-08]", 2, "--steps", "30")
    assert again.returncode == 0, again.stderr[-3000:]
    check_training(again.stdout, 4)
    new_id = re.search(r"run (tr-[0-9a-f]{8})", again.stderr).group(1)
    assert new_id != run_id and "restart 0)" in again.stdout
    for h in hosts:  # the run is SUCCEEDED when its ranks are done; torchrun's exit follows within seconds
        assert wait_for(lambda h=h: run_pids(lab, h, run_id) == [] and run_pids(lab, h, new_id) == [], 20)


FREEZE = 'for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$p" = 1 ] || [ "$p" = $$ ] || kill -%s "$p" 2>/dev/null; done; true'


def test_frozen_host_is_node_fail_within_10s_and_the_run_is_torn_down(make_lab):
    from dccli.lab.host import host_exec

    lab = make_lab(2)
    proc = launch(lab, "node[01-02]", 2, "--steps", "100000", "--sleep", "0.05", detach=True)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    assert wait_for(lambda: "rank 3 step 0 " in dccli("train", "logs", run_id, "--rank", "3").stdout, 90, 1.0)
    # freeze node02: its sshd (listener and sessions) and its training processes, everything but init
    host_exec(lab, "node02", ["sh", "-c", FREEZE % "STOP"])
    frozen_at = time.monotonic()
    try:
        run = wait_for(lambda: (r := show(run_id))["state"] != "RUNNING" and r, 30, 0.2)
        detected_s = time.monotonic() - frozen_at
        assert run["state"] == "NODE_FAIL", run
        assert run["first_failure"]["host"] == "node02" and "frozen" in run["first_failure"]["reason"]
        assert detected_s < 10, detected_s
        # the healthy node is torn down at once, not left in a collective or torchrun's exit barrier
        assert wait_for(lambda: run_pids(lab, "node01", run_id) == [], 15)
    finally:
        host_exec(lab, "node02", ["sh", "-c", FREEZE % "CONT"])
    # once node02 answers again, the watcher's retried teardown reaches it too
    assert wait_for(lambda: run_pids(lab, "node02", run_id) == [], 60, 1.0)
    follow = dccli("train", "logs", run_id, "-f", "--tail", "1", timeout=60)
    assert follow.returncode == 3  # NODE_FAIL
    assert "NODE_FAIL" in follow.stderr and "node02" in follow.stderr
