#!/usr/bin/env python3
"""bench/keys: `dccli keys rotate` on 32 lab hosts, against the usual OpenSSH shell loop, side by side.

Each round: dccli rotates every host to a fresh key (the CLI, as a user runs it), then the baseline
rotates them again the way people script it with OpenSSH (per host, 64 at a time: `ssh -i OLD` appends
the new key, `ssh -i NEW true`, `ssh -i NEW sed -i` drops the old one: three logins, no atomic write,
no audit). Medians of each, dccli's ratio to the baseline, the per-host cost, and the projection to
1,000 hosts from a second, smaller run (wall = fixed + per_host * N, fitted on 8 and 32 hosts).
Goals (issue #7): 32 hosts < 5 s; 1,000 hosts projected < 60 s.

Usage: python bench/keys.py [--hosts 32] [--rounds 3] [--keep]      (root: it starts a lab)
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def dccli_rotate(env: dict, inventory: Path, limit: str | None = None) -> tuple[float, dict]:
    argv = [str(BIN / "dccli"), "keys", "rotate", "-i", str(inventory), "--new-key", "--json"]
    if limit:
        argv += ["-l", limit]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"dccli keys rotate failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
        )
    return wall, json.loads(proc.stdout)["rotation"]


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
        small = "node[01-08]" if args.hosts >= 8 else None
        dccli_walls, base_walls, small_walls = [], [], []
        for _ in range(args.rounds):
            wall, doc = dccli_rotate(env, info.inventory_path)
            dccli_walls.append(wall)
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
            if small:
                s_wall, s_doc = dccli_rotate(env, info.inventory_path, small)
                small_walls.append(s_wall)
                (home / "identities.json").unlink(missing_ok=True)
                # node01-08 now hold only dccli's key: give them the inventory key back for the next round
                key = Path(s_doc["key"]["path"])
                pub = info.key_path.with_name(info.key_path.name + ".pub").read_bytes()
                for address in addresses[:8]:
                    ssh(key, info.dir, address, "cat >> ~/.ssh/authorized_keys", stdin=pub)
        d, b = statistics.median(dccli_walls), statistics.median(base_walls)
        print(f"hosts: {args.hosts}, rounds: {args.rounds}, cpus: {os.cpu_count()}")
        print(f"dccli keys rotate:           median {d:.2f}s  ({', '.join(f'{w:.2f}' for w in dccli_walls)})")
        print(f"openssh shell loop (3 ssh):  median {b:.2f}s  ({', '.join(f'{w:.2f}' for w in base_walls)})")
        print(f"ratio dccli/openssh-loop:    {d / b:.2f}x")
        print(f"per-host cost (wall/N):      {d / args.hosts * 1000:.1f} ms")
        print(f"goal 32 hosts < 5 s:         {'PASS' if d < 5 else 'FAIL'} ({d:.2f}s)")
        if small_walls:
            s = statistics.median(small_walls)
            per_host = max((d - s) / (args.hosts - 8), 0.0)
            fixed = d - per_host * args.hosts
            projected = fixed + per_host * 1000
            print(f"8 hosts median {s:.2f}s -> fixed {fixed:.2f}s + {per_host * 1000:.1f} ms/host marginal")
            print(
                f"projected 1,000 hosts:       {projected:.1f}s  (goal < 60 s: {'PASS' if projected < 60 else 'FAIL'})"
            )
        out = Path(__file__).resolve().parent / "results" / "keys.json"
        out.parent.mkdir(exist_ok=True)
        times = {"dccli": dccli_walls, "openssh_loop": base_walls, "dccli_8_hosts": small_walls}
        doc = {"hosts": args.hosts, "rounds": args.rounds, "cpus": os.cpu_count(), "times": times}
        out.write_text(json.dumps(doc, indent=2) + "\n")
    finally:
        if not args.keep:
            lab_down(name)


if __name__ == "__main__":
    main()
