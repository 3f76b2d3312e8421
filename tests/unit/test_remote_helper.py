"""The remote helper protocol, run for real through a local python3 (no SSH needed for the protocol)."""

from __future__ import annotations

import sys

import pytest

from dccli.remote.session import HelperError, Step, _payload, helper_source, run_steps
from dccli.transport.local import LocalConnection


def test_helper_is_stdlib_only_and_small():
    source = helper_source().decode()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= set(sys.stdlib_module_names), imports - set(sys.stdlib_module_names)
    command, packed = _payload()
    assert len(command) < 200 and len(packed) < 8192  # one round trip: bootstrap stays tiny


def test_steps_run_in_order_in_one_session():
    seen = []
    results = run_steps(
        LocalConnection(),
        [Step("a", "exec", {"argv": ["sh", "-c", "echo one"]}),
         Step("b", "bogus"),
         Step("c", "read_files", {"paths": ["/etc/hostname", "/nonexistent"]}),
         Step("d", "facts")],
        on_result=seen.append,
    )
    assert [r.id for r in results] == ["a", "b", "c", "d"] == [r.id for r in seen]
    assert results[0].ok and results[0].data["stdout"] == "one\n" and results[0].data["rc"] == 0
    assert not results[1].ok and "unknown step kind" in results[1].error
    assert results[2].data["/nonexistent"] is None
    facts = results[3].data
    assert facts["cpu_count"] >= 1 and "MemTotal" in facts["meminfo"] and "/" in facts["disks"]


def test_secrets_travel_on_stdin_not_argv():
    """The job (which later carries secrets) is on stdin; the remote command line is the fixed bootstrap."""
    command, _ = _payload()
    assert "exec" in command and "secret" not in command
    results = run_steps(LocalConnection(), [Step("s", "exec", {"argv": ["cat"], "stdin": "s3cret"})])
    assert results[0].data["stdout"] == "s3cret"


def test_missing_python_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HelperError, match="needs python3"):
        run_steps(LocalConnection(), [Step("x", "facts")])


def test_step_files_extend_the_helper():
    results = run_steps(LocalConnection(), [Step("s", "stat", {"paths": ["/", "/nonexistent"]})])
    assert results[0].ok and results[0].data["/nonexistent"] is None
    assert results[0].data["/"]["mode"] & 0o040000


def test_helper_start_imports_no_json_re_or_subprocess(tmp_path):
    """What every host pays at each session start: the core must not import json (re, enum) or subprocess
    (signal, threading); the steps that need them import them on first use."""
    import subprocess

    probe = helper_source().decode().replace("\nmain()\n", "\nprint(sorted(m for m in ('json', 're', "
                                             "'enum', 'subprocess', 'threading') if m in sys.modules))\n")
    out = subprocess.run(["python3", "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_big_results_travel_compressed_and_arrive_whole(tmp_path):
    import json
    import subprocess

    big = tmp_path / "big.txt"
    text = "".join(f"line {i} \u00e9\t\"quoted\"\\ \x01\n" for i in range(20000))  # ~600 kB, escapes galore
    big.write_text(text)
    results = run_steps(LocalConnection(), [Step("r", "read_files", {"paths": [str(big)], "limit": 1 << 21}),
                                            Step("s", "read_files", {"paths": ["/etc/hostname"]})])
    assert results[0].data == {str(big): text} and results[1].data["/etc/hostname"]
    command, packed = _payload()
    job = json.dumps({"steps": [{"id": "r", "kind": "read_files", "args": {"paths": [str(big)],
                                                                            "limit": 1 << 21}}]})
    raw = subprocess.run(["sh", "-c", command], input=packed + job.encode() + b"\n", capture_output=True,
                         check=True).stdout
    events = [json.loads(line) for line in raw.splitlines()]
    result = next(e for e in events if e["ev"] == "result")
    assert "data_z" in result and "data" not in result and len(raw) < len(text) // 4


def test_run_spawns_programs_as_subprocess_would():
    """run() (spawn/collect: fork, exec, poll; no subprocess import) on the real system: exit codes, stdin
    bigger than a pipe buffer fed while output is read, a timeout that kills, a missing program, and a
    child that does not inherit Python's ignored SIGPIPE."""
    big = "x" * 300_000
    results = run_steps(LocalConnection(), [
        Step("cat", "exec", {"argv": ["sh", "-c", "cat; echo err >&2; exit 3"], "stdin": big}),
        Step("slow", "exec", {"argv": ["sleep", "30"], "timeout": 0.5}),
        Step("missing", "exec", {"argv": ["no-such-program-here"]}),
        Step("sig", "exec", {"argv": ["sh", "-c", "grep SigIgn /proc/self/status"]}),
    ])
    cat, slow, missing, sig = (r.data for r in results)
    assert cat == {"rc": 3, "stdout": big, "stderr": "err\n"}
    assert slow["rc"] is None and "timed out" in slow["stderr"]
    assert missing["rc"] == 127 and "not found" in missing["stderr"]
    assert not int(sig["stdout"].split()[1], 16) & (1 << 12)  # bit 12: SIGPIPE (13) not ignored
