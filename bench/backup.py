#!/usr/bin/env python3
"""bench/backup: `dccli backup run` against the same restic command run directly on the host.

A 3-host lab: node01 is backed up to an sftp repository on node03. Each round writes fresh random data
on node01 (so neither side gets a free ride from deduplication), then times, in alternating order:
  - dccli:  `dccli backup run --profile bench -l node01 --json` (process start, inventory, state DB,
            SSH connections, the storage host's preparation, the helper session, restic, the results in
            the state DB, exit: the whole command as an operator or cron runs it);
  - restic: the same `restic backup --json ... -- /data/bench` with the same sftp.command, password file
            and tags, into the same repository, run on node01 directly (nsenter into the host: no SSH).
Prints the medians, dccli's overhead (goal: at most 10%), and where dccli's time goes: per phase, from the
wall-clock marks and per-host timings of its --json document (`timings`), next to restic's own process.

Usage: python bench/backup.py [--mib 200] [--rounds 5] [--keep]       (needs root: the lab)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

PROFILE = """
backup:
  repositories:
    bench: {url: "sftp:node03:/srv/restic/bench"}
  profiles:
    bench: {hosts: node01, repository: bench, paths: [/data/bench]}
"""
FILL = (
    "import os, sys\nos.makedirs('/data/bench', exist_ok=True)\n"
    "for i in range(int(sys.argv[1]) // 10):\n"
    "    with open('/data/bench/f%02d.bin' % i, 'wb') as f:\n"
    "        [f.write(os.urandom(1 << 20)) for _ in range(10)]\n"
)


PHASES = (  # (label, how to get it from one dccli run): see phases()
    ("python start, imports, CLI parsing", "startup"),
    ("backup command imports", "imports"),
    ("inventory load", "inventory"),
    ("run lock + state DB (start)", "state"),
    ("connection pool (paramiko import)", "pool"),
    ("connect to node01 (SSH handshake, auth)", "connect"),
    ("helper session outside restic", "session"),
    ("  of which: waiting for repository access", "access_wait"),
    ("restic process on node01", "restic"),
    ("fan-out bookkeeping", "fanout"),
    ("state DB (results) + output", "record"),
    ("process exit", "exit"),
)


def phases(doc: dict, started: float, ended: float) -> dict[str, float]:
    """Seconds per phase of one `dccli backup run --json`, from its wall-clock marks and the host's timings.

    started/ended: this process's time.time() around the subprocess, so the interpreter's start-up before
    the command's first line and the exit after its last one are counted too.
    """
    t = doc["timings"]
    host = doc["results"][0]["timings"]
    hosts_s = t["hosts_done_at"] - t["pool_at"]
    return {
        "startup": t["command_started_at"] - started,
        "imports": t["imported_at"] - t["command_started_at"],
        "inventory": t["inventory_at"] - t["imported_at"],
        "state": t["state_at"] - t["inventory_at"],
        "pool": t["pool_at"] - t["state_at"],
        "connect": host["connect_s"],
        "session": host["session_s"] - host["restic_s"],
        "access_wait": host["access_wait_s"],
        "restic": host["restic_s"],
        "fanout": hosts_s - host["connect_s"] - host["session_s"],
        "record": t["finished_at"] - t["hosts_done_at"],
        "exit": ended - t["finished_at"],
    }


def _restic_seconds(tool: str, stdout: str) -> float:
    """restic's total_duration: from dccli's --json result, or restic's own --json summary line."""
    if tool == "dccli":
        return float(json.loads(stdout)["results"][0]["restic_duration_s"])
    for line in stdout.splitlines():
        if '"message_type":"summary"' in line:
            return float(json.loads(line)["total_duration"])
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=200, help="fresh data per measured run (MiB)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="leave the bench lab up")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="dccli-bench-backup-"))
    os.environ["DCCLI_HOME"] = str(home)
    env = dict(os.environ, NO_COLOR="1")
    from dccli.lab.host import host_exec
    from dccli.lab.manager import lab_down, lab_up

    name = "benchbk"
    lab = lab_up(name, 3)
    try:
        inv = home / "bench.yml"
        inv.write_text(lab.inventory_path.read_text() + PROFILE)
        dccli = [
            str(BIN / "dccli"),
            "backup",
            "run",
            "-i",
            str(inv),
            "--profile",
            "bench",
            "-l",
            "node01",
            "--json",
        ]

        def fill() -> None:
            proc = host_exec(lab, "node01", ["python3", "-c", FILL, str(args.mib)], timeout=300)
            assert proc.returncode == 0, proc.stderr

        fill()
        warm = subprocess.run(dccli, env=env, capture_output=True, text=True)  # creates key, password, repo
        if warm.returncode != 0:
            raise SystemExit(f"dccli backup run failed:\n{warm.stdout}{warm.stderr}")
        # The direct run gets exactly what dccli's host step gets: key, known_hosts, password in a 0600 file.
        node03 = lab.host("node03")
        secrets = {
            "/tmp/bench.key": (home / "backup" / "bench.key").read_text(),
            "/tmp/bench.pw": (home / "backup" / "bench.password").read_text(),
            "/tmp/bench.kh": next(
                line
                for line in lab.known_hosts_path.read_text().splitlines()
                if line.startswith(node03.address + " ")
            )
            + "\n",
        }
        for path, text in secrets.items():
            host_exec(lab, "node01", ["sh", "-c", f"umask 077; cat > {path}"], input=text)
        ssh = (
            "ssh -F /dev/null -i /tmp/bench.key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes"
            f" -o UserKnownHostsFile=/tmp/bench.kh -o GlobalKnownHostsFile=/dev/null -p 22 root@{node03.address} -s sftp"
        )
        direct = [
            "restic",
            "-r",
            "sftp:node03:/srv/restic/bench",
            "--password-file",
            "/tmp/bench.pw",
            "-o",
            f"sftp.command={ssh}",
            "backup",
            "--json",
            "--host",
            "node01",
            "--tag",
            "dccli",
            "--tag",
            "host:node01",
            "--tag",
            "profile:bench",
            "--tag",
            "run:direct",
            "--",
            "/data/bench",
        ]

        times: dict[str, list[float]] = {"dccli": [], "restic": []}
        inner: dict[str, list[float]] = {"dccli": [], "restic": []}  # restic's own total_duration
        breakdown: dict[str, list[float]] = {key: [] for _, key in PHASES}
        for i in range(args.rounds):
            order = ["dccli", "restic"] if i % 2 == 0 else ["restic", "dccli"]
            for tool in order:
                fill()
                wall0 = time.time()
                t0 = time.perf_counter()
                if tool == "dccli":
                    proc = subprocess.run(dccli, env=env, capture_output=True, text=True)
                else:
                    proc = host_exec(lab, "node01", direct, timeout=600)
                elapsed = time.perf_counter() - t0
                wall1 = time.time()
                if proc.returncode != 0:
                    raise SystemExit(f"{tool} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
                if tool == "dccli":
                    for key, value in phases(json.loads(proc.stdout), wall0, wall1).items():
                        breakdown[key].append(value)
                times[tool].append(elapsed)
                inner[tool].append(_restic_seconds(tool, proc.stdout))
                print(f"round {i + 1} {tool:6s} {elapsed:6.2f}s", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in times.items()}
        overhead = med["dccli"] / med["restic"] - 1
        # Each round measures both tools back to back: the median of per-round ratios resists load drift.
        paired = statistics.median(d / r for d, r in zip(times["dccli"], times["restic"], strict=True)) - 1
        print(
            f"backup of {args.mib} MiB fresh random data, node01 -> sftp repository on node03, "
            f"{args.rounds} rounds"
        )
        print(f"restic direct on host : median {med['restic']:.2f}s")
        print(f"dccli backup run      : median {med['dccli']:.2f}s")
        print(
            f"dccli overhead        : {overhead * 100:+.1f}% of medians, {paired * 100:+.1f}% median per round "
            f"(+{med['dccli'] - med['restic']:.2f}s; goal <= 10%)"
        )
        inner_med = {k: statistics.median(v) for k, v in inner.items()}
        print(
            f"restic's own duration : direct {inner_med['restic']:.2f}s, under dccli {inner_med['dccli']:.2f}s "
            "(the same restic work; the difference is the machine, not dccli)"
        )
        per_phase = {key: statistics.median(v) for key, v in breakdown.items()}
        print("where dccli's time goes (medians over the rounds, milliseconds):")
        for label, key in PHASES:
            print(f"  {label:<44s} {per_phase[key] * 1000:8.1f}")
        outside = sum(v for k, v in per_phase.items() if k not in ("restic", "access_wait"))
        print(
            f"  {'= dccli outside restic (sum of medians)':<44s} {outside * 1000:8.1f}   "
            f"= {outside / med['restic'] * 100:.1f}% of restic run directly ({med['restic'] * 1000:.1f})"
        )
        print(
            "  (the medians' ratio above also carries restic's own run-to-run variation on a shared machine;"
            " this line is dccli's own time)"
        )
        load = os.getloadavg()
        print(
            f"load average during the bench: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)"
        )
        out = ROOT / "bench" / "results" / "backup.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "mib": args.mib,
                    "rounds": args.rounds,
                    "times": times,
                    "median": med,
                    "overhead": overhead,
                    "paired_overhead": paired,
                    "restic_own_duration_median": inner_med,
                    "phases_median_s": per_phase,
                    "outside_restic_s": outside,
                    "outside_restic_ratio": outside / med["restic"],
                    "loadavg_after": list(load),
                    "cpus": os.cpu_count(),
                },
                indent=2,
            )
            + "\n"
        )
    finally:
        if not args.keep:
            lab_down(name)
            import shutil

            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
