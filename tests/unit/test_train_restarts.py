"""--max-restarts: dccli restarts the whole run as a new attempt, torchrun never restarts in place.
Pure parts: the plan, the watcher's decision, the budget and its bookkeeping, the teardown's give-up rule,
what `show` and the follow print; and the supervisor's environment handling, run for real here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dccli.output.train import attempt_table, summary_line
from dccli.train import plan
from dccli.train.follow import restart_note
from dccli.train.model import (
    LAUNCH,
    RESTART,
    RESUME,
    AttemptRecord,
    Failure,
    NodeRecord,
    RunRecord,
    RunSpec,
)
from dccli.train.verdict import NodeView, decide, gone_for_good, should_restart

SUP = str(Path(__file__).resolve().parents[2] / "dccli" / "train" / "supervisor.py")
SPEC = RunSpec("train.py", (), ("n1", "n2"), 2, "/py", max_restarts=2)
NOW = 1000.0


def att(number: int, trigger: str, state: str = "FAILED", start: float = 0.0, end: float | None = None):
    failure = Failure("n2", start + 1, "torchrun exited 1", "FAILED") if state == "FAILED" else None
    nodes = (NodeRecord("n1", "127.0.0.1", 0, f"/d/attempt-{number}"),)
    return AttemptRecord(
        number, f"r{number}", "n1", "127.0.0.1:29500", state, start, nodes, end, failure, trigger=trigger
    )


def run_of(*attempts: AttemptRecord, state: str = "RUNNING", spec: RunSpec = SPEC) -> RunRecord:
    return RunRecord("tr-00000001", None, "c", state, 0.0, spec, attempts)


# ------------------------------------------------------------------------------------------ plan
def test_torchrun_never_restarts_in_place_and_the_budget_travels_in_the_env():
    plans = plan.plan_attempt(
        SPEC,
        run_id="tr-00000001",
        attempt=1,
        rdzv="tr-00000001-a1-abcdef",
        port=29555,
        addresses={"n1": "127.3.0.1", "n2": "127.3.0.2"},
        ifnames={"n1": "lo", "n2": "lo"},
        envs={},
    )
    for p in plans:
        assert "--max-restarts=0" in p.argv and "--max-restarts=2" not in p.argv
        env = json.loads(p.env_file())
        assert env["DCCLI_RESTART_COUNT"] == "1" and env["DCCLI_MAX_RESTARTS"] == "2"
        assert env["GLOO_SOCKET_IFNAME"] == "lo"


def test_a_restart_plans_no_interface_so_the_inherited_one_stays():
    (p,) = plan.plan_attempt(
        RunSpec("t.py", (), ("n1",), 1, max_restarts=1),
        run_id="tr-00000001",
        attempt=3,
        rdzv="x",
        port=29555,
        addresses={"n1": "127.3.0.1"},
        ifnames={},
        envs={},
    )
    env = json.loads(p.env_file())
    assert "GLOO_SOCKET_IFNAME" not in env and "NCCL_SOCKET_IFNAME" not in env
    assert env["DCCLI_ATTEMPT"] == "3"


# -------------------------------------------------------------------------------------- decision
def exited(host: str, code: int | None, sig: int | None = None, at: float = NOW - 1) -> NodeView:
    st = {"state": "exited", "exit_code": code, "signal": sig, "ranks_done": [], "ended_at": at}
    return NodeView(host, st, NOW, at)


def running(host: str, heard: float = NOW) -> NodeView:
    return NodeView(host, {"state": "running", "supervisor_alive": True, "ranks_done": []}, heard, heard)


def test_only_a_worker_failure_is_restartable():
    worker = decide([exited("a", 1), running("b")], now=NOW, nproc=2, timeout=5)
    assert worker.state == "FAILED" and worker.restartable
    assert should_restart(worker, restarts_left=1) and not should_restart(worker, restarts_left=0)
    # a node lost or killed, or a torchrun that could not start, would fail the same way again
    killed = decide([exited("a", None, sig=9), running("b")], now=NOW, nproc=2, timeout=5)
    frozen = decide([running("a", heard=NOW - 9), running("b")], now=NOW, nproc=2, timeout=5)
    no_start = {"state": "failed_to_start", "error": "no python", "exit_code": 127}
    start = decide([NodeView("a", no_start, NOW, NOW), running("b")], now=NOW, nproc=2, timeout=5)
    for v in (killed, frozen, start):
        assert not v.restartable and not should_restart(v, restarts_left=5), v


def test_the_earliest_failure_decides_even_when_an_echo_is_a_worker_failure():
    # node a was killed first; b's torchrun then exited 1 (its peer gone): not a restart
    v = decide(
        [exited("a", None, sig=9, at=NOW - 3), exited("b", 1, at=NOW - 1)], now=NOW, nproc=2, timeout=5
    )
    assert v.state == "NODE_FAIL" and not v.restartable
    v = decide(
        [exited("a", 1, at=NOW - 3), exited("b", None, sig=15, at=NOW - 1)], now=NOW, nproc=2, timeout=5
    )
    assert v.state == "FAILED" and v.restartable and v.failure.host == "a"


# ---------------------------------------------------------------------------------------- budget
def test_restarts_count_since_the_latest_launch_or_resume():
    r = run_of(att(0, LAUNCH), att(1, RESTART), att(2, RESTART))
    assert r.restarts == 2 and r.restarts_left == 0
    assert [r.restart_index(n) for n in (0, 1, 2)] == [0, 1, 2]
    # a resume is the operator's new start: a fresh budget, and the earlier restarts stay on record
    r = run_of(att(0, LAUNCH), att(1, RESTART), att(2, RESUME), att(3, RESTART))
    assert r.restarts == 1 and r.restarts_left == 1 and [a.number for a in r.chain] == [2, 3]
    assert r.restart_index(3) == 1 and r.restart_index(2) == 0
    assert run_of(att(0, LAUNCH)).restarts_left == 2
    assert run_of(att(0, LAUNCH), spec=RunSpec("t.py", (), ("n1",), 1)).restarts_left == 0


def test_duration_spans_the_restarts_and_to_dict_names_them():
    r = run_of(att(0, LAUNCH, start=10.0, end=20.0), att(1, RESTART, "SUCCEEDED", start=25.0, end=40.0))
    r = RunRecord(r.id, None, "c", "SUCCEEDED", 0.0, SPEC, r.attempts, 40.0)
    assert r.duration_s == 30.0
    d = r.to_dict()
    assert d["restarts"] == 1 and d["max_restarts"] == 2
    assert [a["trigger"] for a in d["attempts"]] == [LAUNCH, RESTART]


def test_records_written_before_restarts_existed_read_as_launch_then_resumes():
    old = att(0, LAUNCH).to_dict()
    del old["trigger"]
    assert AttemptRecord.from_dict(old).trigger == LAUNCH
    later = att(4, LAUNCH).to_dict()
    del later["trigger"]
    assert AttemptRecord.from_dict(later).trigger == RESUME
    new = att(1, RESTART)
    assert AttemptRecord.from_dict(json.loads(json.dumps(new.to_dict()))) == new


# -------------------------------------------------------------------------------------- printing
def test_show_follow_and_summary_name_the_restarts():
    r = run_of(att(0, LAUNCH, start=10.0, end=17.5), att(1, RESTART, "RUNNING", start=20.0))
    note = restart_note(r, 0, 1)
    assert note == "run tr-00000001: attempt 0 FAILED (n2: torchrun exited 1); restart 1 of 2: attempt 1"
    rows = attempt_table(r.attempts)
    assert rows[1][:3] == ["0", "launch", "FAILED"] and rows[1][4] == "7.5s" and "n2" in rows[1][5]
    assert rows[2][:3] == ["1", "restart", "RUNNING"] and rows[2][5] == "-"
    done = RunRecord(r.id, None, "c", "FAILED", 0.0, SPEC, (*r.attempts[:1], att(1, RESTART, end=30.0)), 30.0)
    assert summary_line(done).endswith("after 20.0s (1 restart of 2)")
    assert restart_note(run_of(att(0, LAUNCH), att(1, RESUME)), 0, 1).endswith("; attempt 1")


# ------------------------------------------------------------------------------------- teardown
def test_teardown_gives_up_only_on_hosts_that_refuse_connections_all_along():
    refused = "n1: connect to 127.9.0.1:22 failed: Connection refused"
    timeout = "n1: connect to 127.9.0.1:22 timed out after 3s"
    assert not gone_for_good([])
    assert not gone_for_good([(t, refused) for t in (0.0, 2.0, 4.0)])  # too few tries
    assert not gone_for_good([(t, refused) for t in (0.0, 2.0, 4.0, 6.0)])  # too short a time
    assert gone_for_good([(t, refused) for t in (0.0, 7.0, 14.0, 21.0)])
    # a frozen or cut-off host (timeouts) may come back with the run's processes: retried on
    assert not gone_for_good([(float(t), timeout) for t in range(0, 300, 2)])
    # only the latest unbroken streak of refusals counts
    mixed = [(0.0, refused), (10.0, refused), (20.0, timeout), (22.0, refused), (24.0, refused)]
    assert not gone_for_good(mixed)
    assert gone_for_good([*mixed, (30.0, refused), (42.0, refused)])


# ------------------------------------------------------------------------------------ supervisor
def test_a_restarted_attempt_inherits_the_whole_environment_down_a_chain(tmp_path):
    """attempt-1 (a restart) gets only dccli's own variables in its env.json; the supervisor merges the
    previous attempt's, writes the result back (0600), so attempt-2 inherits everything again."""
    script = tmp_path / "show_env.py"
    script.write_text(
        "import os\nfor k in ('SECRET', 'GLOO_SOCKET_IFNAME', 'DCCLI_RESTART_COUNT', 'TORCHELASTIC_RESTART_COUNT',"
        " 'TORCHELASTIC_MAX_RESTARTS'):\n    print(k, os.environ.get(k))\n"
    )
    first = {"SECRET": "s3cret", "GLOO_SOCKET_IFNAME": "eth9", "DCCLI_RESTART_COUNT": "0"}
    for number in range(3):
        env = first if number == 0 else {"DCCLI_RESTART_COUNT": str(number), "DCCLI_MAX_RESTARTS": "2"}
        run_attempt(tmp_path, number, env, script)
    log = (tmp_path / "attempt-2" / "rank-0.log").read_text().splitlines()
    assert log == [
        "SECRET s3cret",
        "GLOO_SOCKET_IFNAME eth9",
        "DCCLI_RESTART_COUNT 2",
        "TORCHELASTIC_RESTART_COUNT 2",  # torchrun's own variable carries dccli's count
        "TORCHELASTIC_MAX_RESTARTS 2",
    ]
    merged = tmp_path / "attempt-2" / "env.json"
    assert json.loads(merged.read_text())["SECRET"] == "s3cret"
    assert oct(merged.stat().st_mode & 0o777) == "0o600"


def test_an_earlier_env_flag_outranks_the_inventory_read_again_at_resume(tmp_path):
    """launch --env LR=0.1 while the inventory's train_env says LR=0.01: a resume (which reads train_env
    again) keeps 0.1; a train_env value not given with --env follows the inventory; a resume --env wins;
    a restart (cli keys none, names accumulated) keeps the latest --env value."""
    script = tmp_path / "show_env.py"
    script.write_text("import os\nfor k in ('LR', 'BATCH', 'TOKEN'):\n    print(k, os.environ.get(k))\n")
    attempts = [  # (what the control node sends: inventory train_env + this attempt's --env, --env names)
        ({"LR": "0.1", "BATCH": "32", "TOKEN": "t0"}, ["LR", "TOKEN"]),  # launch --env LR=0.1 TOKEN=t0
        ({"LR": "0.01", "BATCH": "64"}, []),  # resume, the inventory changed: LR 0.01, BATCH 64
        ({"LR": "0.5", "BATCH": "64"}, ["LR"]),  # resume --env LR=0.5
        ({}, []),  # a restart after a worker failure: the environment as it was
    ]
    seen = [run_attempt(tmp_path, n, env, script, cli).split() for n, (env, cli) in enumerate(attempts)]
    assert seen == [
        ["LR", "0.1", "BATCH", "32", "TOKEN", "t0"],
        ["LR", "0.1", "BATCH", "64", "TOKEN", "t0"],
        ["LR", "0.5", "BATCH", "64", "TOKEN", "t0"],
        ["LR", "0.5", "BATCH", "64", "TOKEN", "t0"],
    ]
    assert json.loads((tmp_path / "attempt-3" / "spec.json").read_text())["cli_env_keys"] == ["LR", "TOKEN"]


def test_spec_file_names_the_env_flags_but_never_their_values():
    p = plan.NodePlan("n1", "127.0.0.1", 0, True, "/var/tmp/x/attempt-0", ("torchrun",), {"LR": "0.1"})
    data = json.loads(plan.spec_file_bytes(p, None, None, ["LR"]))
    assert data["cli_env_keys"] == ["LR"] and "0.1" not in json.dumps(data)


def run_attempt(tmp_path: Path, number: int, env: dict, script: Path, cli: list[str] | None = None) -> str:
    """Attempt `number` of a one-rank run through the real supervisor (the rank wrapper standing in for
    torchrun), inheriting attempt number-1's env.json; returns rank 0's log."""
    d = tmp_path / f"attempt-{number}"
    d.mkdir()
    inherit = str(tmp_path / f"attempt-{number - 1}" / "env.json") if number else None
    (d / "env.json").write_text(json.dumps(env))
    argv = ["env", "RANK=0", sys.executable, SUP, "rank", str(d), "--", str(script)]  # torchrun's part
    spec = {"argv": argv, "workdir": str(tmp_path), "inherit_env": inherit}
    if cli is not None:
        spec["cli_env_keys"] = cli
    (d / "spec.json").write_text(json.dumps(spec))
    out = subprocess.run(
        ["env", "DCCLI_RUN_ID=tr-test-env", sys.executable, SUP, "start", str(d)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    wait_exited(d)
    return (d / "rank-0.log").read_text()


def wait_exited(d: Path) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = json.loads((d / "status.json").read_text())
        if st["state"] == "exited":
            assert st["exit_code"] == 0, (d / "supervisor.log").read_text()
            return
        time.sleep(0.05)
    raise AssertionError(f"{d}: the attempt did not end")


def test_the_rank_wrapper_leaves_torchrun_variables_alone_outside_dccli(tmp_path):
    (tmp_path / "done").mkdir()
    script = tmp_path / "s.py"
    script.write_text("import os\nprint(os.environ.get('TORCHELASTIC_RESTART_COUNT'))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCCLI_")}
    env.update(RANK="0", TORCHELASTIC_RESTART_COUNT="4")
    out = subprocess.run(
        [sys.executable, SUP, "rank", str(tmp_path), "--", str(script)],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0 and (tmp_path / "rank-0.log").read_text() == "4\n"
