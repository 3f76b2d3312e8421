#!/usr/bin/env python3
"""bench/provision: ../shared/bench/reference-10-tasks.yml with ansible-playbook (forks 16) and dccli provision.

Both tools run the very same playbook file against the same lab hosts (`hosts: gpu`): a first run on clean
hosts (/opt/dccli-bench removed, not timed) and a re-run, in alternating order each round. We print the
median wall time of each, dccli's ratio (goal: <= 1/20 of ansible-playbook on both), and check that both
tools report the same ok/changed counts per host and leave byte-identical files.

Usage: python bench/provision.py [--hosts 16] [--rounds 3] [--keep]
Needs root (the lab) and ansible-core (`make setup`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAYBOOK = ROOT.parent / "shared" / "bench" / "reference-10-tasks.yml"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def sh(argv: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=check)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, tuple[int, ...]]]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed, {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(proc.stdout)}


def tree(upper: Path) -> dict[str, str]:
    """Every file under /opt/dccli-bench of one host: mode, owner, link target or content hash."""
    out = {}
    base = upper / "opt" / "dccli-bench"
    for p in [*sorted(base.rglob("*")), base]:
        st = p.lstat()
        what = (
            os.readlink(p)
            if p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file()
            else "dir"
        )
        out[str(p.relative_to(base))] = f"{oct(st.st_mode)} {st.st_uid}:{st.st_gid} {what}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="leave the bench lab up")
    args = ap.parse_args()

    dccli = str(BIN / "dccli")
    ansible = shutil.which("ansible-playbook", path=str(BIN)) or shutil.which("ansible-playbook")
    if not ansible:
        raise SystemExit("ansible-playbook not found (run `make setup`)")
    home = Path(tempfile.mkdtemp(prefix="dccli-bench-prov-"))
    env = dict(os.environ, DCCLI_HOME=str(home), NO_COLOR="1")
    lab = "benchprov"
    try:
        sh([dccli, "lab", "up", "--hosts", str(args.hosts), "--name", lab], env)
        inventory = sh([dccli, "lab", "inventory", "--name", lab], env).stdout.strip()
        env["DCCLI_INVENTORY"] = inventory
        cfg = home / "ssh_config"
        cfg.write_text(sh([dccli, "inventory", "export", "--format", "ssh-config"], env).stdout)
        ans_inv = home / "ansible.yml"
        ans_inv.write_text(sh([dccli, "inventory", "export", "--format", "ansible"], env).stdout)
        tool_env = dict(
            env,
            ANSIBLE_HOST_KEY_CHECKING="True",
            ANSIBLE_PYTHON_INTERPRETER="auto_silent",
            ANSIBLE_SSH_ARGS=f"-F {cfg} -C -o ControlMaster=auto -o ControlPersist=60s",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCAL_TEMP=str(home / "ansible-tmp"),
            ANSIBLE_FORKS="16",
        )
        commands = {
            "ansible": [ansible, "-i", str(ans_inv), "-f", "16", str(PLAYBOOK)],
            "dccli": [dccli, "provision", "-f", "16", str(PLAYBOOK)],
        }
        clean = [dccli, "run", "-f", "16", "rm -rf /opt/dccli-bench"]
        times = {f"{t} {phase}": [] for t in commands for phase in ("first", "rerun")}
        recaps: dict[str, dict] = {}
        trees: dict[str, dict] = {}
        hosts_dir = home / "labs" / lab / "hosts"
        for r in range(args.rounds):
            order = list(commands) if r % 2 == 0 else list(reversed(commands))
            for tool in order:
                sh(clean, env)
                for phase in ("first", "rerun"):
                    elapsed, recap = timed(commands[tool], tool_env)
                    times[f"{tool} {phase}"].append(elapsed)
                    recaps[f"{tool} {phase}"] = recap
                trees[tool] = {h.name: tree(h / "upper") for h in sorted(hosts_dir.iterdir())}
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"\nbench/provision: reference-10-tasks.yml on {args.hosts} lab hosts, forks 16, "
            f"{args.rounds} alternated rounds"
        )
        print(f"{'run':<16}{'median s':>10}{'min s':>9}{'max s':>9}")
        for k in times:
            print(f"{k:<16}{med[k]:>10.3f}{min(times[k]):>9.3f}{max(times[k]):>9.3f}")
        goals = {}
        for phase in ("first", "rerun"):
            ratio = med[f"dccli {phase}"] / med[f"ansible {phase}"]
            print(f"dccli/ansible {phase}: {ratio:.4f} (1/{1 / ratio:.0f})")
            goals[f"{phase} <= 1/20"] = ratio <= 0.05
            goals[f"{phase}: same ok/changed per host"] = (
                recaps[f"dccli {phase}"] == recaps[f"ansible {phase}"]
            )
        goals["byte-identical files"] = trees["dccli"] == trees["ansible"]
        for goal, ok in goals.items():
            print(f"  {'met' if ok else 'MISSED'}: {goal}")
        for phase in ("first", "rerun"):
            print(
                f"  recap {phase}: ansible {sorted(set(recaps[f'ansible {phase}'].values()))} "
                f"dccli {sorted(set(recaps[f'dccli {phase}'].values()))} (ok, changed, unreachable, failed)"
            )
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "provision.json").write_text(
            json.dumps(
                {
                    "hosts": args.hosts,
                    "rounds": args.rounds,
                    "times": times,
                    "median": med,
                    "goals": goals,
                    "at": time.time(),
                },
                indent=2,
            )
        )
        if not all(goals.values()):
            sys.exit(1)
    finally:
        if not args.keep:
            sh([dccli, "lab", "down", "--name", lab], env, check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
