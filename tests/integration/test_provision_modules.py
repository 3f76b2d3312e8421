"""Every playbook module against real lab hosts: run 1 changes, run 2 changes nothing, --check changes no file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dccli.playbook import loader
from dccli.playbook.names import walk

pytestmark = pytest.mark.lab

DATA = Path(__file__).parent / "data" / "provision"
PLAYBOOK = DATA / "modules.yml"


def provision(lab, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", DCCLI_INVENTORY=str(lab.inventory_path))
    return subprocess.run(
        [sys.executable, "-m", "dccli", "provision", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def events(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def disk(upper: Path) -> dict[str, str]:
    """A host's disk (its overlay upper dir), logs left out: every file's mode, owner and content hash."""
    out = {}
    for p in sorted(upper.rglob("*")):
        rel = str(p.relative_to(upper))
        if rel.startswith(("var/log", "root/.cache")):
            continue
        st = p.lstat()
        what = (
            os.readlink(p)
            if p.is_symlink()
            else (hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir")
        )
        out[rel] = f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {what}"
    return out


def recap(proc: subprocess.CompletedProcess) -> dict[str, dict]:
    return next(e for e in events(proc) if e.get("event") == "recap")["hosts"]


def test_every_module_converges_and_check_mode_changes_nothing(make_lab):
    from dccli.lab.host import host_exec

    lab = make_lab(hosts=2)
    inventory = lab.inventory_path.read_text()
    if "nvidia_apt_repo" not in inventory:
        pytest.skip("this lab has no local apt repository")
    must_change = {t.name for t in walk(loader.load(PLAYBOOK).plays[0].tasks) if "changes" in t.tags}
    upper = lab.host("node01").upper_dir

    first = provision(lab, str(PLAYBOOK), "--json")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    by_task: dict[str, set[str]] = {}
    for e in events(first):
        if e.get("event") == "task" and e["host"] == "node01" and not e.get("loop_summary"):
            by_task.setdefault(e["task"], set()).add(e["status"])
    unchanged = sorted(n for n in must_change if "changed" not in by_task.get(n, set()))
    assert not unchanged, f"tasks that did not change on the first run: {unchanged}"
    assert "changed" in by_task["restart demo"]  # the handler ran, notified by the template
    assert all(h["failed"] == 0 and h["changed"] >= len(must_change) for h in recap(first).values())

    second = provision(lab, str(PLAYBOOK), "--json")
    assert second.returncode == 0, second.stdout[-3000:]
    changed = [e for e in events(second) if e.get("event") == "task" and e["status"] == "changed"]
    assert changed == [], changed
    assert all(h["changed"] == 0 and h["ok"] >= 25 for h in recap(second).values())

    # Drift on node01, then --check: it reports the drift and leaves every file as it is.
    drift = (
        "rm /opt/dccli-modules/content.txt; echo junk >> /opt/dccli-modules/app.conf; "
        "apt-mark unhold cuda-toolkit-12-4 >/dev/null; rm -rf /opt/dccli-modules/sub/tool"
    )
    assert host_exec(lab, "node01", ["sh", "-c", drift]).returncode == 0
    before = disk(upper)
    checked = provision(lab, str(PLAYBOOK), "--check", "--diff", "--json")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert disk(upper) == before, "--check changed files on the host"
    predicted = {
        e["task"]
        for e in events(checked)
        if e.get("event") == "task" and e["host"] == "node01" and e["status"] == "changed"
    }
    assert {"copy content", "template", "dpkg hold", "unarchive"} <= predicted, predicted
    diffs = [e for e in events(checked) if e.get("task") == "template" and e.get("diff")]
    assert diffs and "-junk" in diffs[0]["diff"]
    assert recap(checked)["node02"]["changed"] == 0

    third = provision(lab, str(PLAYBOOK), "--json")
    assert third.returncode == 0
    assert recap(third)["node01"]["changed"] >= 4 and recap(third)["node02"]["changed"] == 0
    assert recap(provision(lab, str(PLAYBOOK), "--json"))["node01"]["changed"] == 0
