#!/usr/bin/env python3
"""bench/fanout: `dccli run hostname` on 32 lab hosts against pdsh, clush and ansible, side by side.

Each round runs every tool once, in a rotating order, against the same lab hosts; we report the
median wall time of each tool and dccli's ratio to each. Goals (issue #2): dccli <= 0.8x pdsh and
<= 0.1x ansible. Also the median of `dccli --help` (goal < 0.35 s: lazy imports).

Usage: python bench/fanout.py [--hosts 32] [--rounds 7] [--inventory FILE] [--keep]
Needs root (the lab), pdsh, clush and ansible-core (`make setup` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def sh(argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=check)


def timed(argv: list[str], env: dict[str, str], expect_lines: int | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    if expect_lines is not None:
        got = len([line for line in proc.stdout.splitlines() if line.strip()])
        if got < expect_lines:
            raise SystemExit(f"{argv[0]}: expected {expect_lines} output lines, got {got}:\n{proc.stdout[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--inventory", type=Path, help="use an existing lab inventory instead of starting one")
    ap.add_argument("--keep", action="store_true", help="leave the bench lab up")
    args = ap.parse_args()

    dccli = str(BIN / "dccli")
    home = Path(tempfile.mkdtemp(prefix="dccli-bench-"))
    env = dict(os.environ, DCCLI_HOME=str(home), NO_COLOR="1")
    lab_name = "bench"
    started_lab = False
    try:
        if args.inventory is None:
            t0 = time.perf_counter()
            sh([dccli, "lab", "up", "--hosts", str(args.hosts), "--name", lab_name], env)
            print(f"lab up: {args.hosts} hosts in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            started_lab = True
            inventory = Path(sh([dccli, "lab", "inventory", "--name", lab_name], env).stdout.strip())
        else:
            inventory = args.inventory
        n = args.hosts
        names = sh([dccli, "inventory", "hosts", "-i", str(inventory)], env).stdout.split()[:n]
        nodeset = sh([dccli, "nodeset", "-f", *names], env).stdout.strip()

        # The same hosts, keys and known_hosts for every tool, through their usual configuration files.
        cfg = home / "ssh_config"
        cfg.write_text(sh([dccli, "inventory", "export", "--format", "ssh-config", "-i", str(inventory)], env).stdout)
        ans_inv = home / "ansible.yml"
        ans_inv.write_text(sh([dccli, "inventory", "export", "--format", "ansible", "-i", str(inventory)], env).stdout)
        tool_env = dict(env, PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS=f"-F {cfg} -o BatchMode=yes -x -l%u %h",
                        ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_PYTHON_INTERPRETER="auto_silent",
                        ANSIBLE_SSH_ARGS=f"-F {cfg} -C -o ControlMaster=auto -o ControlPersist=60s",
                        ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(home / "ansible-tmp"))
        commands = {
            "dccli": [dccli, "run", "-i", str(inventory), "-l", nodeset, "-f", str(n), "hostname"],
            "pdsh": ["pdsh", "-R", "ssh", "-f", str(n), "-w", nodeset, "hostname"],
            "clush": ["clush", "-f", str(n), "-w", nodeset, "-o", f"-F {cfg}", "hostname"],
        }
        if shutil.which("ansible", path=str(BIN)) or shutil.which("ansible"):
            ansible = shutil.which("ansible", path=str(BIN)) or shutil.which("ansible")
            commands["ansible"] = [ansible, "-i", str(ans_inv), ",".join(names), "-m", "command", "-a", "hostname",
                                   "-f", str(n)]
        missing = [t for t, argv in commands.items() if not shutil.which(argv[0])]
        if missing:
            raise SystemExit(f"missing tools: {', '.join(missing)} (run `make setup`)")

        for argv in commands.values():  # warm-up: page cache, ansible's ControlPersist sockets
            timed(argv, tool_env, expect_lines=n)
        times: dict[str, list[float]] = {t: [] for t in commands}
        tools = list(commands)
        for r in range(args.rounds):
            order = tools[r % len(tools):] + tools[: r % len(tools)]
            for tool in order:
                times[tool].append(timed(commands[tool], tool_env, expect_lines=n))

        help_times = [timed([dccli, "--help"], env) for _ in range(15)]
        med = {t: statistics.median(v) for t, v in times.items()}
        print(f"\nbench/fanout: `hostname` on {n} lab hosts, forks {n}, {args.rounds} alternated rounds")
        print(f"{'tool':<10}{'median s':>10}{'min s':>9}{'max s':>9}{'dccli ratio':>13}")
        for tool in tools:
            ratio = med["dccli"] / med[tool]
            print(f"{tool:<10}{med[tool]:>10.3f}{min(times[tool]):>9.3f}{max(times[tool]):>9.3f}{ratio:>12.2f}x")
        help_med = statistics.median(help_times)
        print(f"\ndccli --help median {help_med:.3f}s over {len(help_times)} runs (goal < 0.35s)")
        goals = {"dccli/pdsh <= 0.8": med["dccli"] / med["pdsh"] <= 0.8, "dccli --help < 0.35s": help_med < 0.35}
        if "ansible" in med:
            goals["dccli/ansible <= 0.1"] = med["dccli"] / med["ansible"] <= 0.1
        for goal, ok in goals.items():
            print(f"  {'met' if ok else 'MISSED'}: {goal}")
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "fanout.json").write_text(json.dumps(
            {"hosts": n, "rounds": args.rounds, "times": times, "median": med, "help_median": help_med,
             "goals": goals, "at": time.time()}, indent=2))
    finally:
        if started_lab and not args.keep:
            sh([dccli, "lab", "down", "--name", lab_name], env, check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
