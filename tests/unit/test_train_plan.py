"""Pure planning of training attempts: argv, environment, ids, ports, filters."""

from __future__ import annotations

import json
import shlex

import pytest

from dccli.errors import InputError, UsageError
from dccli.train import plan
from dccli.train.model import AttemptRecord, Failure, NodeRecord, RunRecord, RunSpec
from dccli.train.sync import changed

SPEC = RunSpec(
    "train.py", ("--lr", "0.1", "it's; rm -rf /"), ("node01", "node02", "node03"), 2, "/opt/py/bin/python"
)
ADDR = {"node01": "127.3.0.1", "node02": "127.3.0.2", "node03": "127.3.0.3"}


def plans(**kw):
    return plan.plan_attempt(
        SPEC,
        run_id="tr-0123abcd",
        attempt=kw.get("attempt", 0),
        rdzv="tr-0123abcd-a0-abc123",
        port=29555,
        addresses=ADDR,
        ifnames={"node01": "lo", "node02": "eth1", "node03": None},
        envs={h: {"TOKEN": "s3cret"} for h in ADDR},
    )


def test_first_node_hosts_the_rendezvous_and_every_node_uses_its_own_address():
    ps = plans()
    assert [p.node_rank for p in ps] == [0, 1, 2]
    assert [p.is_host for p in ps] == [True, False, False]
    for p in ps:
        argv = list(p.argv)
        assert argv[:3] == ["/opt/py/bin/python", "-m", "torch.distributed.run"]
        assert "--rdzv-backend=c10d" in argv and "--rdzv-endpoint=127.3.0.1:29555" in argv
        assert f"--local-addr={ADDR[p.host]}" in argv
        assert "--rdzv-id=tr-0123abcd-a0-abc123" in argv
        conf = next(a for a in argv if a.startswith("--rdzv-conf="))
        assert f"is_host={'true' if p.is_host else 'false'}" in conf
        assert "--nnodes=3" in argv and "--nproc-per-node=2" in argv
        # the script and its arguments come last, untouched, after the per-rank wrapper
        assert argv[-4:] == ["train.py", "--lr", "0.1", "it's; rm -rf /"]


def test_secrets_stay_in_the_env_file_never_in_argv():
    for p in plans():
        assert not any("s3cret" in a for a in p.argv)
        env = json.loads(p.env_file())
        assert env["TOKEN"] == "s3cret"
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["DCCLI_RUN_ID"] == "tr-0123abcd"
        assert env["DCCLI_NODE_RANK"] == str(p.node_rank)
        assert env["DCCLI_NODES"] == "node01,node02,node03"
        assert env["DCCLI_RESTART_COUNT"] == "0"
    by = {p.host: json.loads(p.env_file()) for p in plans()}
    assert by["node01"]["GLOO_SOCKET_IFNAME"] == "lo" and by["node02"]["NCCL_SOCKET_IFNAME"] == "eth1"
    assert "GLOO_SOCKET_IFNAME" not in by["node03"]


def test_remote_command_is_shell_quoted():
    p = plans()[0]
    assert shlex.split(plan.remote(p.argv)) == list(p.argv)


def test_resume_attempt_gets_its_own_dir_and_restart_count():
    p = plans(attempt=2)[0]
    assert p.dir == "/var/tmp/dccli-train/tr-0123abcd/attempt-2"
    assert json.loads(p.env_file())["DCCLI_RESTART_COUNT"] == "2"
    assert plan.rdzv_id("tr-0123abcd", 1, "aa") != plan.rdzv_id("tr-0123abcd", 2, "aa")


def test_parse_env_args():
    assert plan.parse_env_args(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    for bad in (["NOEQ"], ["1A=2"], ["RANK=3"], ["DCCLI_RUN_ID=x"]):
        with pytest.raises(UsageError):
            plan.parse_env_args(bad)


def test_env_from_inventory_vars():
    assert plan.env_from_vars(
        "n1", "inv.yml:3", {"train_env": {"NCCL_DEBUG": "INFO", "N": 4, "ON": True}}
    ) == {"NCCL_DEBUG": "INFO", "N": "4", "ON": "1"}
    assert plan.env_from_vars("n1", "inv.yml:3", {"other": 1}) == {}
    with pytest.raises(InputError, match=r"inv.yml: vars.train_env.X"):
        plan.env_from_vars("n1", "inv.yml:3", {"train_env": {"X": [1, 2]}})
    with pytest.raises(InputError, match="bad environment name"):
        plan.env_from_vars("n1", "inv.yml:3", {"train_env": {"bad-name": "1"}})


def test_ifname_from_real_ip_route_get_output():
    assert plan.parse_ifname("local 127.3.0.1 dev lo src 127.0.0.1 uid 0 \\    cache <local> ") == "lo"
    assert plan.parse_ifname("10.1.0.12 via 10.1.0.1 dev ens5 src 10.1.0.11 uid 0") == "ens5"
    assert plan.parse_ifname("RTNETLINK answers: Network is unreachable") is None


def test_port_candidates_skip_active_ports_and_cover_the_range():
    c = plan.port_candidates([29500, 29501], seed=0)
    assert c[0] == 29502 and 29500 not in c and len(c) == len(plan.PORT_RANGE) - 2
    assert plan.port_candidates([], seed=499)[0] == 29999


def test_parse_ranks_and_follow_records():
    assert plan.parse_ranks("0,2-3") == {0, 2, 3}
    assert plan.parse_ranks(None) is None
    with pytest.raises(UsageError):
        plan.parse_ranks("a")
    assert plan.parse_follow_line(b"12\tloss 0.1\tx") == ("12", 12, "loss 0.1\tx")
    assert plan.parse_follow_line(b"n\tW1129 torch agent\r") == ("n", None, "W1129 torch agent")


def test_run_name_and_id():
    assert plan.new_run_id("0123abcd") == "tr-0123abcd"
    with pytest.raises(ValueError):
        plan.new_run_id("xyz")
    plan.check_name("bert-large_2")
    with pytest.raises(UsageError):
        plan.check_name("bad name")


def test_sync_quick_check():
    local = {"a.py": (10, 100), "b.py": (5, 200), "c/d.py": (1, 1)}
    remote = {"a.py": [10, 100], "b.py": [5, 199]}
    assert changed(local, remote) == ["b.py", "c/d.py"]


def test_records_round_trip_through_json_with_env_keys_only():
    spec = RunSpec("t.py", ("--x",), ("n1", "n2"), 2, env_keys=("TOKEN",))
    att = AttemptRecord(
        0,
        "r",
        "n1",
        "127.0.0.1:29500",
        "NODE_FAIL",
        1.0,
        (
            NodeRecord("n1", "127.0.0.1", 0, "/d", "lo", "exited", 5, 6, 0, None, (0, 1)),
            NodeRecord("n2", "127.0.0.2", 1, "/d"),
        ),
        9.0,
        Failure("n2", 5.0, "frozen", "NODE_FAIL"),
    )
    assert AttemptRecord.from_dict(json.loads(json.dumps(att.to_dict()))) == att
    assert RunSpec.from_dict(spec.to_dict()) == spec
    run = RunRecord("tr-1", None, "c", "NODE_FAIL", 0.0, spec, (att,), 9.0)
    d = run.to_dict()
    assert d["first_failure"]["host"] == "n2" and d["duration_s"] == 8.0
    assert d["spec"]["env_keys"] == ["TOKEN"] and "s3cret" not in json.dumps(d)


def test_tail_takes_the_last_lines_of_each_stream():
    from dccli.train.follow import LogFilter, LogLine, tail_each

    lines = [LogLine("n1", r, f"{r}-{i}") for i in range(5) for r in (None, 0, 1)]
    assert [x.text for x in tail_each(lines, 2)] == ["None-3", "None-4", "0-3", "0-4", "1-3", "1-4"]
    assert tail_each(lines, 0) == []
    import re

    flt = LogFilter(ranks=frozenset({1}), grep=re.compile("-[34]$"))
    assert [x.text for x in lines if flt.keep(x)] == ["1-3", "1-4"]
