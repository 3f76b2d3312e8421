#!/usr/bin/env python3
"""bench/lab_gpus: what the GPU simulation costs.

Side by side, in one run, alternating:
  - `lab up --hosts N` with and without `--gpus 8` (the simulator, state and kernel log seeded per host);
  - inside one host (nsenter, no SSH): `nvidia-smi -q -x`, `--query-gpu=...` and `dmesg` of the simulator
    against `/bin/true` (process start floor) and the real `dmesg` of the kernel;
  - `lab reboot` of one host.
Prints medians. Usage: python bench/lab_gpus.py [--hosts 8] [--rounds 5]     (needs root: the lab)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DCCLI_HOME", tempfile.mkdtemp(prefix="dccli-bench-gpus-"))
    from dccli.lab.host import host_exec
    from dccli.lab.manager import lab_down, lab_up
    from dccli.lab.reboot import reboot

    ups: dict[str, list[float]] = {"plain": [], "gpus8": []}
    for _ in range(args.rounds):
        for kind, gpus in (("plain", 0), ("gpus8", 8)):
            name = f"bench-{kind}-{os.getpid()}"
            ups[kind].append(timed(lambda: lab_up(name, args.hosts, gpus=gpus)))  # noqa: B023
            lab_down(name)
    name = f"bench-cmd-{os.getpid()}"
    info = lab_up(name, 2, gpus=8)
    try:
        commands = {
            "true": ["/bin/true"],
            "real dmesg": ["/usr/bin/dmesg"],
            "sim dmesg": ["dmesg"],
            "nvidia-smi -L": ["nvidia-smi", "-L"],
            "nvidia-smi -q -x": ["nvidia-smi", "-q", "-x"],
            "nvidia-smi --query-gpu": [
                "nvidia-smi",
                "--query-gpu=index,uuid,temperature.gpu,ecc.errors.uncorrected.volatile.total",
                "--format=csv",
            ],
        }
        host_exec(info, "node01", ["nvidia-smi", "-L"])  # first run writes the bytecode cache
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.rounds * 4):
            for label, argv in commands.items():
                times[label].append(timed(lambda: host_exec(info, "node01", argv)))  # noqa: B023
        reboots = [timed(lambda: reboot(name, "node02")) for _ in range(args.rounds)]
    finally:
        lab_down(name)
    med = {k: statistics.median(v) for k, v in ups.items()}
    print(
        f"lab up {args.hosts} hosts: plain {med['plain']:.2f}s, --gpus 8 {med['gpus8']:.2f}s "
        f"(ratio {med['gpus8'] / med['plain']:.2f})"
    )
    base = statistics.median(times["true"])
    for label, values in times.items():
        m = statistics.median(values)
        print(f"in-host {label:<24} median {m * 1000:7.1f} ms  ({m / base:.1f}x nsenter+true)")
    print(f"lab reboot (1 host): median {statistics.median(reboots):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
