"""`train launch --max-restarts N` against real lab hosts and real torchrun (c10d, gloo on CPU): a failed
worker restarts the whole run as a new attempt on every node; and the watcher's teardown gives up on
hosts that are gone for good (a lab torn down) instead of retrying them for 15 minutes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from test_train_lab import EXAMPLE, dccli, node_python, require_visible, run_pids, show, wait_for

pytestmark = pytest.mark.lab

SCRIPT = str(Path(__file__).resolve().parent / "data" / "flaky_once.py")


def launch_flaky(lab, nodes: str, nproc: int, max_restarts: int, *script_args: str):
    require_visible(lab)
    return dccli(
        "train", "launch", "-i", str(lab.inventory_path), "--nodes", nodes, "--nproc-per-node", str(nproc),
        *node_python(), "--env", "SECRET_TOKEN=hunter2", "--max-restarts", str(max_restarts),
        SCRIPT, *script_args,
        timeout=240,
    )  # fmt: skip


def run_id_of(proc) -> str:
    m = re.search(r"run (tr-[0-9a-f]{8})", proc.stderr)
    assert m, proc.stderr[-2000:]
    return m.group(1)


def test_a_worker_failing_once_restarts_the_whole_run_which_succeeds(lab):
    from dccli.lab.host import host_exec

    proc = launch_flaky(lab, "node0[5-6]", 2, 2)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    run_id = run_id_of(proc)
    assert re.search(r"^node0[56]/1: rank 1 failing on purpose \(restart 0\)$", out, re.M), out[-3000:]
    # the whole world came back together in attempt 1 and finished the collective (sum = world size)
    ok = re.findall(r"^node0[56]/(\d): rank (\d) ok restart=(\d) sum=(\d)$", out, re.M)
    assert sorted(ok) == [(str(r), str(r), "1", "4") for r in range(4)], out[-3000:]
    # every rank agrees on the count, torchrun's own variable included
    for r in range(4):
        assert re.search(rf"^node0[56]/{r}: rank {r} attempt 1 torchelastic 1$", out, re.M), out[-3000:]
    assert f"run {run_id}: attempt 0 FAILED (" in err and "restart 1 of 2: attempt 1" in err, err
    assert re.search(rf"run {run_id}: SUCCEEDED after \S+ \(1 restart of 2\)", err), err
    run = show(run_id)
    assert run["state"] == "SUCCEEDED" and run["restarts"] == 1 and run["max_restarts"] == 2
    a0, a1 = run["attempts"]
    assert (a0["trigger"], a0["state"], a0["failure"]["reason"]) == ("launch", "FAILED", "torchrun exited 1")
    assert a0["failure"]["host"] in ("node05", "node06")
    assert (a1["trigger"], a1["state"], a1["failure"]) == ("restart", "SUCCEEDED", None)
    assert a1["rdzv_id"] != a0["rdzv_id"] and a1["nodes"][0]["dir"].endswith("/attempt-1")
    assert all(n["exit_code"] == 0 and len(n["ranks_done"]) == 2 for n in a1["nodes"])
    # the failed attempt's logs are kept, apart
    old = dccli("train", "logs", run_id, "--attempt", "0", "--grep", "on purpose")
    assert re.fullmatch(r"node0[56]/1: rank 1 failing on purpose \(restart 0\)\n", old.stdout), old.stdout
    new = dccli("train", "logs", run_id, "--grep", "on purpose")
    assert new.returncode == 0 and new.stdout == ""
    # the --env value reached the restarted attempt (inherited on the node, never stored here), still 0600
    for host in ("node05", "node06"):
        env_file = f"/var/tmp/dccli-train/{run_id}/attempt-1/env.json"
        got = host_exec(lab, host, ["sh", "-c", f"stat -c %a {env_file}; grep -c SECRET_TOKEN {env_file}"])
        assert got.stdout.split() == ["600", "1"], got.stdout + got.stderr
        assert wait_for(lambda h=host: run_pids(lab, h, run_id) == [], 30)


def test_a_worker_failing_every_time_exhausts_the_restarts_and_the_run_fails(lab):
    t0 = time.monotonic()
    proc = launch_flaky(lab, "node0[7-8]", 1, 2, "--fail-attempts", "1000")
    elapsed = time.monotonic() - t0
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 1, out[-3000:] + err[-3000:]  # FAILED
    run_id = run_id_of(proc)
    failing = re.findall(r"^node0[78]/1: rank 1 failing on purpose \(restart (\d)\)$", out, re.M)
    assert failing == ["0", "1", "2"], out[-3000:]  # the launch and two restarts, then no more
    assert "ok restart=" not in out
    assert re.search(
        rf"run {run_id}: FAILED \(first failure: node0[78]: torchrun exited 1\) .*\(2 restarts of 2\)", err
    )
    run = show(run_id)
    assert run["state"] == "FAILED" and run["restarts"] == 2
    assert [(a["trigger"], a["state"]) for a in run["attempts"]] == [
        ("launch", "FAILED"),
        ("restart", "FAILED"),
        ("restart", "FAILED"),
    ]
    assert elapsed < 200, elapsed  # ended, not hung in init_process_group (each attempt takes ~10 s here)
    for host in ("node07", "node08"):
        assert wait_for(lambda h=host: run_pids(lab, h, run_id) == [], 30)


def test_the_watcher_gives_up_soon_on_a_lab_that_was_torn_down(make_lab):
    """A lab torn down under a running run: NODE_FAIL as fast as ever, and the watcher then gives up on
    hosts that refuse every connection instead of retrying them for 15 minutes."""
    from dccli.lab.manager import lab_down
    from dccli.train import store
    from dccli.train.launch import watcher_alive

    lab = make_lab(2)
    require_visible(lab)
    proc = dccli(
        "train", "launch", "-i", str(lab.inventory_path), "--nodes", "node[01-02]", "--nproc-per-node", "1",
        *node_python(), "--detach", EXAMPLE, "--steps", "100000", "--sleep", "0.05",
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    assert wait_for(lambda: "rank 1 step 0 " in dccli("train", "logs", run_id, "--rank", "1").stdout, 90, 1.0)
    with store.opened() as db:
        watcher = store.get(db, run_id).watcher_pid
    assert watcher_alive(watcher, run_id)
    lab_down(lab.name)
    gone_at = time.monotonic()
    run = wait_for(lambda: (r := show(run_id))["state"] != "RUNNING" and r, 30, 0.2)
    assert run["state"] == "NODE_FAIL", run
    assert time.monotonic() - gone_at < 10
    assert wait_for(lambda: not watcher_alive(watcher, run_id), 90, 1.0), "the watcher still retries"
    with store.opened() as db:
        events = store.get(db, run_id).events
    assert any("teardown gave up on" in e and "connection refused" in e for e in events), events
