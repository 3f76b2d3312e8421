"""../shared/bench/reference-10-tasks.yml, unchanged: dccli reports what ansible-playbook reports, host by host,
and leaves byte-identical files; --check changes nothing; --limit @failed retries exactly the failed hosts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "bench" / "reference-10-tasks.yml"
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M
)


def run(argv: list[str], lab, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, NO_COLOR="1", DCCLI_INVENTORY=str(lab.inventory_path), **env)
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=300)


def dccli(lab, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dccli", *args], lab)


def counts(stdout: str) -> dict[str, tuple[int, ...]]:
    return {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(stdout)}


def bench_tree(lab, host: str) -> dict[str, str]:
    base = lab.host(host).upper_dir / "opt" / "dccli-bench"
    out = {}
    for p in sorted([base, *base.rglob("*")]):
        st = p.lstat()
        what = (
            os.readlink(p)
            if p.is_symlink()
            else (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
        )
        out[str(p.relative_to(base))] = f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {what}"
    return out


def test_reference_playbook_matches_ansible(make_lab, tmp_path):
    lab = make_lab(hosts=3)
    ansible = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
    first = dccli(lab, "provision", "-l", "node[01-02]", str(REFERENCE))
    assert first.returncode == 0, first.stderr
    assert counts(first.stdout) == {h: (10, 9, 0, 0, 0) for h in ("node01", "node02")}

    before = {h: bench_tree(lab, h) for h in ("node01", "node02")}
    check = dccli(lab, "provision", "-l", "node[01-02]", "--check", "--diff", str(REFERENCE))
    assert check.returncode == 0, check.stderr
    assert {h: bench_tree(lab, h) for h in ("node01", "node02")} == before  # --check changed nothing
    assert "+gamma=3" not in check.stderr and "-gamma=3" in check.stderr  # the copy would drop gamma=3

    rerun = dccli(lab, "provision", "-l", "node[01-02]", str(REFERENCE))
    assert counts(rerun.stdout) == {h: (10, 2, 0, 0, 0) for h in ("node01", "node02")}  # by design (README)

    if ansible is None:
        pytest.skip("ansible-playbook not installed")
    inv = tmp_path / "ansible.yml"
    inv.write_text(dccli(lab, "inventory", "export", "--format", "ansible").stdout)
    env = {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "atmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    a_first = run([ansible, "-i", str(inv), "-l", "node03", str(REFERENCE)], lab, **env)
    assert a_first.returncode == 0, a_first.stdout[-2000:]
    a_rerun = run([ansible, "-i", str(inv), "-l", "node03", str(REFERENCE)], lab, **env)
    assert counts(a_first.stdout)["node03"] == counts(first.stdout)["node01"]
    assert counts(a_rerun.stdout)["node03"] == counts(rerun.stdout)["node01"]
    assert bench_tree(lab, "node03") == bench_tree(lab, "node01") == bench_tree(lab, "node02")


def test_json_stream_and_failed_retry(make_lab, tmp_path):
    from dccli.lab.host import host_exec

    lab = make_lab(hosts=2)
    pb = tmp_path / "pb.yml"
    pb.write_text(
        "- hosts: gpu\n  gather_facts: false\n  tasks:\n"
        "    - command: test ! -e /etc/dccli-broken\n      changed_when: false\n"
        "    - copy: {dest: /etc/dccli-ok, content: ok}\n"
    )
    assert host_exec(lab, "node02", ["touch", "/etc/dccli-broken"]).returncode == 0
    proc = dccli(lab, "provision", "--json", str(pb))
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(e["schema_version"] == 1 for e in lines)
    final = lines[-1]
    assert final["event"] == "recap" and final["exit_code"] == 1
    assert final["hosts"]["node02"]["failed"] == 1 and final["hosts"]["node02"]["fate"] == "failed"
    assert final["hosts"]["node01"] == {
        "ok": 2,
        "changed": 1,
        "unreachable": 0,
        "failed": 0,
        "skipped": 0,
        "rescued": 0,
        "ignored": 0,
        "fate": "ok",
    }
    failed = [e for e in lines if e.get("status") == "failed"]
    assert failed[0]["host"] == "node02" and failed[0]["where"].endswith("pb.yml:4:7")

    assert host_exec(lab, "node02", ["rm", "/etc/dccli-broken"]).returncode == 0
    retry = dccli(lab, "provision", "--limit", "@failed", str(pb))
    assert retry.returncode == 0, retry.stderr
    assert list(counts(retry.stdout)) == ["node02"]  # exactly the failed host
    assert "no failed hosts" in dccli(lab, "provision", "--limit", "@failed", str(pb)).stderr
