"""restic argv building and output parsing (real restic 0.14 captures in data/backup), and the host-side
pure functions of backup/hostside.py (exec'd in the helper's namespace, as on a host)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from dccli.backup import restic
from dccli.backup.profile import CheckpointRule, Profile, Retention
from dccli.backup.run import host_result

DATA = Path(__file__).parent / "data" / "backup"
PROFILE = Profile(
    "ckpt",
    "main",
    ("node01",),
    ("/data/ckpt", "/etc"),
    ("*.tmp", "-not-an-option"),
    CheckpointRule(("/data/ckpt",), "COMPLETE"),
    Retention(keep_last=3, keep_weekly=4),
)


def capture(name: str) -> tuple[str, str]:
    return (DATA / f"restic014_backup_{name}.jsonl").read_text(), (
        DATA / f"restic014_backup_{name}.stderr"
    ).read_text()


def test_backup_argv_tags_and_keeps_user_text_after_options() -> None:
    argv = restic.backup_argv(PROFILE, "node01", "RUN1")
    assert argv[:4] == ["backup", "--json", "--host", "node01"]
    assert argv[argv.index("--") + 1 :] == ["/data/ckpt", "/etc"]
    tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"]
    assert tags == ["dccli", "host:node01", "profile:ckpt", "run:RUN1"]
    # A pattern that looks like an option is the value of --exclude, never an option of its own.
    assert argv[argv.index("-not-an-option") - 1] == "--exclude"
    assert all("," not in t for t in tags)  # restic splits --tag values on commas


def test_other_argv() -> None:
    assert restic.forget_argv("ckpt", PROFILE.retention) == [
        "forget",
        "--json",
        "--tag",
        "profile:ckpt",
        "--group-by",
        "host,paths",
        "--keep-last",
        "3",
        "--keep-weekly",
        "4",
    ]
    assert restic.check_argv(2, 5) == ["check", "--read-data-subset", "2/5"]
    assert restic.check_argv(1, 1) == ["check", "--read-data"]
    assert restic.restore_argv("latest", "/r", "node01", "ckpt", ["/etc"]) == [
        "restore",
        "latest",
        "--target",
        "/r",
        "--host",
        "node01",
        "--tag",
        "profile:ckpt",
        "--include",
        "/etc",
    ]
    assert restic.restore_argv("1a2b3c4d", "/r", "node01", None) == ["restore", "1a2b3c4d", "--target", "/r"]


def test_rotating_subset_covers_everything_in_n_runs() -> None:
    seen, prev = [], None
    for _ in range(8):
        prev = restic.next_subset(prev, 4)
        seen.append(prev)
    assert seen == [1, 2, 3, 4, 1, 2, 3, 4]
    assert restic.next_subset(9, 4) == 1  # N lowered since the last run


def test_parse_clean_backup() -> None:
    s = restic.parse_backup_json(*capture("ok"))
    assert s.snapshot_id == "f088995c" and s.errors == ()
    assert (s.files_new, s.files_unmodified, s.files) == (2, 2, 4)
    assert s.data_added == 2812 and s.bytes_processed == 300015


def test_missing_source_is_an_error_though_restic_014_exits_0() -> None:
    s = restic.parse_backup_json(*capture("missing"))
    assert s.snapshot_id == "4f840173"
    assert s.errors == ("/tmp/rcap/missing does not exist, skipping",)


def test_unreadable_file_is_an_error() -> None:
    s = restic.parse_backup_json(*capture("unreadable"))
    assert s.errors[0] == "/tmp/rcap/src/sub/noread: open: Permission denied"


def test_host_verdicts() -> None:
    base = {"host": "node01", "profile": "ckpt", "repository": "main"}
    out, err = capture("ok")
    ok = host_result(
        base,
        {
            "rc": 0,
            "stdout": out,
            "stderr": err,
            "incomplete": ["/data/ckpt/s2"],
            "locks": {"removed": [{"id": "d0007949", "hostname": "node01", "pid": 7}]},
        },
        1.5,
    )
    assert ok.status == "ok" and ok.snapshot_id == "f088995c" and ok.incomplete == ("/data/ckpt/s2",)
    assert ok.locks_removed == ("d0007949 (node01 pid 7)",)
    out, err = capture("unreadable")
    partial = host_result(base, {"rc": 3, "stdout": out, "stderr": err}, 1.0)
    assert partial.status == "failed" and partial.snapshot_id == "ba641548"
    assert any("restic exited 3" in e for e in partial.errors)
    out, err = capture("missing")
    assert host_result(base, {"rc": 0, "stdout": out, "stderr": err}, 1.0).status == "failed"
    missing = host_result(base, {"rc": None, "missing": ["/data/x: No such file or directory"]}, 0.1)
    assert missing.status == "failed" and missing.errors == ("source /data/x: No such file or directory",)
    assert host_result(base, {"rc": 0, "stdout": "", "stderr": ""}, 0.1).errors == (
        "restic reported no snapshot",
    )


def test_parse_snapshots() -> None:
    snaps = restic.parse_snapshots((DATA / "restic014_snapshots.json").read_text())
    assert len(snaps) == 2 and snaps[0].time < snaps[1].time  # oldest first
    s = snaps[-1]
    assert s.host == "node01" and s.tag("profile") == "ckpt" and s.tag("run") == "20261129T140302-216510"
    assert s.to_dict()["run_id"] == "20261129T140302-216510"
    assert restic.parse_snapshots("null") == []


# ---- host side -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_ns() -> dict:
    """helper.py + backup/hostside.py in one namespace, as the helper runs them (without calling main)."""
    from dccli.backup.run import host_code

    ns: dict = {"__name__": "dccli_helper_test"}
    source = resources.files("dccli.remote").joinpath("helper.py").read_text() + "\n" + host_code().decode()
    exec(compile(source, "helper+backup", "exec"), ns)
    return ns


def test_lock_ownership_needs_our_hostname_and_a_dead_pid(host_ns: dict) -> None:
    import json

    lock = json.loads((DATA / "restic014_lock.json").read_text())  # real restic 0.14 lock, hostname "vm"
    own = host_ns["lock_is_own_and_dead"]
    assert own(lock, "vm", lambda pid: False)
    assert not own(lock, "vm", lambda pid: True)  # the PID still runs: not provably dead
    assert not own(lock, "node02", lambda pid: False)  # another host's PID says nothing about ours
    assert host_ns["pid_alive"](os.getpid()) and not host_ns["pid_alive"](0)
    assert host_ns["_lock_time"](lock["time"]) == pytest.approx(1795961029.761749, abs=1e-3)
    assert host_ns["_lock_time"]("2026-11-29T15:03:49+01:00") == pytest.approx(1795961029.0)


def test_checkpoint_scan_and_sources(host_ns: dict, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    for name, files in (("step1", ["w.bin", "COMPLETE"]), ("step2", ["w.bin"]), ("step[3]", ["x.done"])):
        (root / name).mkdir(parents=True)
        for f in files:
            (root / name / f).write_text("x")
    (root / "loose.txt").write_text("not a checkpoint")
    complete, incomplete = host_ns["checkpoint_scan"]({"dirs": [str(root)], "marker": "COMPLETE"})
    assert complete == [str(root / "step1")]
    assert incomplete == [str(root / "step2"), str(root / "step[3]")]
    complete, _ = host_ns["checkpoint_scan"]({"dirs": [str(root)], "pattern": "*.done"})
    assert complete == [str(root / "step[3]")]
    assert host_ns["_glob_escape"](str(root / "step[3]")).endswith("step\\[3\\]")
    problems = host_ns["source_problems"]([str(root), str(tmp_path / "nope")])
    assert problems == [f"{tmp_path / 'nope'}: No such file or directory"]


def test_not_initialized_is_told_from_a_missing_source() -> None:
    restic_014 = (
        "Fatal: unable to open config file: stat /tmp/nonexist-repo/config: no such file or directory\n"
        "Is there a repository at the following location?\n/tmp/nonexist-repo\n"
    )
    assert restic.is_not_initialized(restic_014)
    assert not restic.is_not_initialized("source /data/x: No such file or directory")


def test_not_initialized_only_when_the_config_does_not_exist() -> None:
    # restic 0.14 asks "Is there a repository at the following location?" whatever went wrong.
    where = "\nIs there a repository at the following location?\nrest:http://dccli:***@127.0.0.1:8000/r/\n"
    assert restic.is_not_initialized("Fatal: unable to open config file: <config/> does not exist" + where)
    assert restic.is_not_initialized("Fatal: repository does not exist: unable to open config file: x")
    for other in (
        "Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized",
        "Fatal: unable to open config file: unexpected HTTP response (403): 403 Forbidden",
        'Fatal: unable to open config file: client.Head: Head "http://dccli:***@127.0.0.1:8001/r/config":'
        " dial tcp 127.0.0.1:8001: connect: connection refused",
    ):
        assert not restic.is_not_initialized(other + where), other


def test_host_json_reader_says_valueerror_for_anything_not_json(host_ns: dict) -> None:
    # The clearing of stale locks skips a lock whose `restic cat` printed nothing (removed meanwhile).
    read = host_ns["_json_loads"]
    assert read('{"hostname": "node01", "pid": 7}') == {"hostname": "node01", "pid": 7}
    for bad in ("", "  ", "{", "not json", '{"a": 1} trailing'):
        with pytest.raises(ValueError):
            read(bad)
