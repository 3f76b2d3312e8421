#!/usr/bin/env python3
"""bench/keys: `dccli keys rotate` on 32 lab hosts, against the usual OpenSSH shell loop, side by side.

Each round: dccli rotates every host to a fresh key (the CLI, as a user runs it), then the baseline
rotates them again the way people script it with OpenSSH (per host, 64 at a time: `ssh -i OLD` appends
the new key, `ssh -i NEW true`, `ssh -i NEW sed -i` drops the old one: three logins, no atomic write,
no audit). Medians of each, dccli's ratio to the baseline, the per-host cost, and the projection to
1,000 hosts: linearly from the wall time per host (conservative: the lab's own sshds run on the same
CPUs), and from the control node's CPU time per host spread over its cores (what bounds a real cluster).
Goals (issue #7): 32 hosts < 5 s; 1,000 hosts projected < 60 s.

Usage: python bench/keys.py [--hosts 32] [--rounds 3] [--keep]      (root: it starts a lab)
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
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


def dccli_rotate(env: dict, inventory: Path, limit: str | None = None) -> tuple[float, float, dict]:
    argv = [str(BIN / "dccli"), "keys", "rotate", "-i", str(inventory), "--new-key", "--json"]
    if limit:
        argv += ["-l", limit]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(
            f"dccli keys rotate failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
        )
    return wall, cpu, json.loads(proc.stdout)["rotation"]


def ssh(key: Path, lab_dir: Path, address: str, command: str, stdin: bytes | None = None) -> None:
    argv = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={lab_dir / 'known_hosts'}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "LogLevel=ERROR",
        "-i",
        str(key),
        f"root@{address}",
        command,
    ]
    proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"baseline ssh to {address} failed: {proc.stderr.decode()[-500:]}")


def baseline_rotate(addresses: list[str], old: Path, lab_dir: Path, workdir: Path) -> float:
    new = workdir / f"baseline-{time.monotonic_ns()}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(new)], check=True)
    pub = new.with_name(new.name + ".pub").read_bytes()
    old_blob = old.with_name(old.name + ".pub").read_text().split()[1]

    def one(address: str) -> None:
        ssh(old, lab_dir, address, "cat >> ~/.ssh/authorized_keys", stdin=pub)
        ssh(new, lab_dir, address, "true")
        ssh(new, lab_dir, address, f"sed -i '\\#{old_blob}#d' ~/.ssh/authorized_keys")

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(64) as pool:
        list(pool.map(one, addresses))
    return time.perf_counter() - t0, new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    home = Path(tempfile.mkdtemp(prefix="dccli-bench-keys-"))
    os.environ["DCCLI_HOME"] = str(home)
    env = dict(os.environ, NO_COLOR="1")
    from dccli.lab.manager import lab_down, lab_up

    name = "benchkeys"
    info = lab_up(name, args.hosts)
    try:
        addresses = [h.address for h in info.hosts]
        dccli_walls, dccli_cpus, base_walls = [], [], []
        for _ in range(args.rounds):
            wall, cpu, doc = dccli_rotate(env, info.inventory_path)
            dccli_walls.append(wall)
            dccli_cpus.append(cpu)
            assert all(h["outcome"] == "rotated" for h in doc["hosts"])
            current = Path(doc["key"]["path"])
            b_wall, b_key = baseline_rotate(addresses, current, info.dir, home)
            base_walls.append(b_wall)
            # hand the hosts back to dccli: the baseline's key becomes what the inventory logs in with
            os.replace(b_key, info.key_path)
            os.replace(
                b_key.with_name(b_key.name + ".pub"), info.key_path.with_name(info.key_path.name + ".pub")
            )
            (home / "identities.json").unlink(missing_ok=True)
        n = args.hosts
        d, b, c = statistics.median(dccli_walls), statistics.median(base_walls), statistics.median(dccli_cpus)
        linear = d / n * 1000  # conservative: no more overlap at 1,000 hosts than at 32
        cpu_bound = c / n * 1000 / (os.cpu_count() or 1)  # the control node's own CPU, spread over its cores
        print(f"hosts: {n}, rounds: {args.rounds}, cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
        print(f"dccli keys rotate:           median {d:.2f}s  ({', '.join(f'{w:.2f}' for w in dccli_walls)})")
        print(f"openssh shell loop (3 ssh):  median {b:.2f}s  ({', '.join(f'{w:.2f}' for w in base_walls)})")
        print(f"ratio dccli/openssh-loop:    {d / b:.2f}x")
        print(
            f"per-host cost:               {d / n * 1000:.1f} ms wall, {c / n * 1000:.1f} ms control-node CPU"
        )
        print(f"goal 32 hosts < 5 s:         {'PASS' if d < 5 else 'FAIL'} ({d:.2f}s)")
        print(
            f"projected 1,000 hosts:       {linear:.1f}s linear in wall (the lab's sshds share these CPUs): "
            f"{'PASS' if linear < 60 else 'FAIL'}; {cpu_bound:.1f}s bound by the control node's CPU: "
            f"{'PASS' if cpu_bound < 60 else 'FAIL'}  (goal < 60 s)"
        )
        out = Path(__file__).resolve().parent / "results" / "keys.json"
        out.parent.mkdir(exist_ok=True)
        times = {"dccli": dccli_walls, "dccli_cpu": dccli_cpus, "openssh_loop": base_walls}
        doc = {"hosts": args.hosts, "rounds": args.rounds, "cpus": os.cpu_count(), "times": times}
        out.write_text(json.dumps(doc, indent=2) + "\n")
    finally:
        if not args.keep:
            lab_down(name)
            shutil.rmtree(home, ignore_errors=True)  # the bench's keys and state: nothing worth keeping


if __name__ == "__main__":
    main()
