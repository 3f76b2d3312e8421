#!/usr/bin/env python3
"""bench/health: `dccli health` and `dccli status` on 32 lab hosts (8 simulated GPUs each) against
`dccli run true`, side by side.

Each round runs the three commands once, in a rotating order, on the same hosts; we print the median wall
time of each and the ratios health/run and status/run (goal <= 1.5x). health: every probe of a host rides in
ONE session (dccli/health/probe.sh); status: one plain exec session per host (nvidia-smi --query-gpu + /proc/loadavg) plus the
stored health verdicts. Also printed: the CPU each command cost the lab's hosts (every process in their PID
namespaces: sshd, the probe, the simulated tools) and dccli itself. The hosts share this machine's cores, so
wall time here follows total CPU; on a real cluster each host pays only its own share. Thresholds are relaxed in a copy of the inventory only for the
shared kernel's load and memory, so exit codes stay 0 and any failure is a real one.

Usage: python bench/health.py [--hosts 32] [--rounds 7] [--gpus 8] [--keep]   (root: the lab)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
QUIET = "health: {load_per_cpu_warn: 100000, mem_available_warn_pct: 0, mem_available_crit_pct: 0}\n"


def sh(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=True)


def lab_cpu(tag: str) -> float:
    """CPU seconds used so far by every process of the lab's hosts (their PID namespaces), reaped children
    included: sshd's sessions, the helper, the simulated tools."""
    from dccli.lab.procs import namespace_members, tagged_pids

    ours = os.readlink("/proc/self/ns/pid")
    seen, ticks = set(), 0
    for init in tagged_pids(tag):
        try:
            ns = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            continue
        if ns == ours or ns in seen:  # a tagged process outside the hosts (the lab's launcher): not theirs
            continue
        seen.add(ns)
        for pid in namespace_members(init):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


CPU: dict[str, list[tuple[float, float]]] = {}


def timed(argv: list[str], env: dict[str, str], tag: str = "", name: str = "") -> float:
    before = lab_cpu(tag) if tag else 0.0
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if tag:
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        time.sleep(0.2)  # let sshd reap its sessions, so their CPU is counted
        own = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        CPU.setdefault(name, []).append((lab_cpu(tag) - before, own))
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}"
            f"\n{proc.stdout[-2000:]}"
        )
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="leave the bench lab up")
    args = ap.parse_args()

    dccli = str(BIN / "dccli")
    home = Path(tempfile.mkdtemp(prefix="dccli-bench-health-"))
    env = dict(os.environ, DCCLI_HOME=str(home), NO_COLOR="1")
    lab = "benchhealth"
    try:
        t0 = time.perf_counter()
        up = sh(
            [
                dccli,
                "lab",
                "up",
                "--hosts",
                str(args.hosts),
                "--gpus",
                str(args.gpus),
                "--gpu-model",
                "H100-SXM5-80GB",
                "--name",
                lab,
            ],
            env,
        )
        print(
            f"lab up: {args.hosts} hosts x {args.gpus} GPUs in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        tag = json.loads((home / "labs" / lab / "lab.json").read_text())["tag"]
        inventory = home / "inventory.yml"
        inventory.write_text(QUIET + Path(up.stdout.strip()).read_text())
        inv = ["-i", str(inventory)]
        commands = {
            "run true": [dccli, "run", *inv, "true"],
            "health": [dccli, "health", *inv, "--format", "nagios"],
            "status": [dccli, "status", *inv, "--json"],
        }
        for argv in commands.values():  # warm-up: page cache, host keys, the state DB's migrations
            timed(argv, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        names = list(commands)
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]  # alternate who goes first
            for name in order:
                times[name].append(timed(commands[name], env, tag, name))
        med = {k: statistics.median(v) for k, v in times.items()}
        result = {
            "hosts": args.hosts,
            "gpus_per_host": args.gpus,
            "rounds": args.rounds,
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "ratio_health_vs_run": round(med["health"] / med["run true"], 2),
            "ratio_status_vs_run": round(med["status"] / med["run true"], 2),
            "goal": "<= 1.5",
        }
        cpu = {
            k: (statistics.median(h for h, _ in v), statistics.median(c for _, c in v)) for k, v in CPU.items()
        }
        result["median_cpu_s"] = {k: {"lab_hosts": round(h, 3), "dccli": round(c, 3)} for k, (h, c) in cpu.items()}
        for k, v in med.items():
            h, c = cpu[k]
            print(
                f"{k:>9}: median {v:.3f}s  (all: {', '.join(f'{x:.2f}' for x in times[k])})   CPU: lab hosts "
                f"{h:.2f}s ({h / args.hosts * 1000:.0f} ms/host), dccli {c:.2f}s"
            )
        print(
            f"health / run true = {result['ratio_health_vs_run']:.2f}x   status / run true = "
            f"{result['ratio_status_vs_run']:.2f}x   (goal <= 1.5x)"
        )
        print(json.dumps(result))
    finally:
        if not args.keep:
            subprocess.run([dccli, "lab", "down", "--name", lab], env=env, capture_output=True)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
