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
