#!/usr/bin/env python3
"""bench/train: `dccli train` on 4 lab hosts x 2 processes, next to what users do without it
(OpenSSH `ssh` to every node running torchrun in the foreground, as pdsh would), in the same session.

Measures (median of --rounds):
- launch -> every rank's first line (seconds), dccli vs ssh+torchrun;
- stop -> last process of the run gone (dccli: `train stop` returns only once /proc is verified clean;
  ssh: `pkill` over ssh, then polling /proc until no process of the job is left);
- log throughput: examples/ddp_tiny.py --lines 50000 on every rank; every line must arrive (counted per
  rank, numbered, none missing); lines per second from launch to the last line.

Usage: python bench/train.py [--hosts 4] [--nproc 2] [--lines 50000] [--rounds 1]
Needs root (the lab) and torch (`pip install -e '.[train]'`).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "ddp_tiny.py")
FIRST = re.compile(r"^node\d+/(\d+): ")


def node_python() -> tuple[str, dict[str, str]]:
    real = os.path.realpath(sys.executable)
    if not real.startswith("/root/"):
        return sys.executable, {}
    return "/usr/bin/python3", {"PYTHONPATH": sysconfig.get_paths()["purelib"]}


def dccli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dccli", *args]


def stream_until(
    proc: subprocess.Popen, world: int, want_lines: int | None
) -> tuple[float | None, dict, float]:
    """Read a launch's stdout: time of every rank's first line, per-rank numbered-line counts, last line time."""
    t0 = time.perf_counter()
    seen: set[int] = set()
    t_first = None
    counts: dict[int, int] = {}
    t_last = t0
    assert proc.stdout is not None
    for line in proc.stdout:
        m = FIRST.match(line) or re.match(r"^\[(\d+)\]:", line)
        if not m:
            continue
        rank = int(m.group(1))
        if rank not in seen:
            seen.add(rank)
            if len(seen) == world and t_first is None:
                t_first = time.perf_counter() - t0
                if want_lines is None:
                    return t_first, counts, t_last - t0
        if " line " in line:
            counts[rank] = counts.get(rank, 0) + 1
            t_last = time.perf_counter()
    return t_first, counts, t_last - t0


def dccli_round(inv: str, nodes: str, world: int, nproc: int, lines: int) -> dict[str, float]:
    py, extra = node_python()
    base = ["train", "launch", "-i", inv, "--nodes", nodes, "--nproc-per-node", str(nproc), "--python", py]
    for k, v in extra.items():
        base += ["--env", f"{k}={v}"]
    env = dict(os.environ, NO_COLOR="1")
    # 1. launch -> every rank's first line; then stop -> nothing left
    proc = subprocess.Popen(
        dccli(*base, EXAMPLE, "--steps", "1000000", "--sleep", "0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    t_first, _, _ = stream_until(proc, world, None)
    run_id = (
        subprocess.run(dccli("train", "ls", "-i", inv, "-n", "1"), capture_output=True, text=True, env=env)
        .stdout.splitlines()[1]
        .split()[0]
    )
    t0 = time.perf_counter()
    stop = subprocess.run(
        dccli("train", "stop", run_id, "--grace", "5"), capture_output=True, text=True, env=env
    )
    t_stop = time.perf_counter() - t0
    if stop.returncode != 0:
        raise SystemExit(f"stop failed: {stop.stderr}")
    proc.wait(timeout=60)
    # 2. throughput
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        dccli(*base, EXAMPLE, "--steps", "1", "--lines", str(lines)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _, counts, _ = stream_until(proc, world, lines)
    proc.wait(timeout=600)
    elapsed = time.perf_counter() - t0
    missing = {r: lines - counts.get(r, 0) for r in range(world) if counts.get(r, 0) != lines}
    return {
        "first_line_s": t_first or float("nan"),
        "stop_s": t_stop,
        "lines_per_s": sum(counts.values()) / elapsed,
        "missing": float(sum(missing.values())),
    }


def ssh_round(lab, hosts: list[str], world: int, nproc: int, lines: int) -> dict[str, float]:
    """What users do by hand: ssh to each node, torchrun in the foreground, outputs merged by the shell."""
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from conftest import ssh_argv  # the lab's OpenSSH options (key, known_hosts, strict checking)

    py, extra = node_python()
    first = lab.host(hosts[0]).address

    def cmd(i: int, h: str, port: int, rid: str, script_args: list[str]) -> list[str]:
        envs = " ".join(
            f"{k}={shlex.quote(v)}"
            for k, v in {
                **extra,
                "GLOO_SOCKET_IFNAME": "lo",
                "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE": "[${rank}]:",
                "PYTHONUNBUFFERED": "1",
                "BENCHJOB": rid,
            }.items()
        )
        tr = (
            f"{envs} {py} -m torch.distributed.run --nnodes={len(hosts)} --nproc-per-node={nproc} "
            f"--rdzv-backend=c10d --rdzv-endpoint={first}:{port} --rdzv-id={rid} "
            f"--rdzv-conf=is_host={'true' if i == 0 else 'false'} --local-addr={lab.host(h).address} --tee=3 "
            f"{EXAMPLE} {' '.join(script_args)}"
        )
        return ["ssh", *ssh_argv(lab, h), f"root@{lab.host(h).address}", tr]

    def launch(port: int, rid: str, script_args: list[str]) -> list[subprocess.Popen]:
        return [
            subprocess.Popen(
                cmd(i, h, port, rid, script_args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for i, h in enumerate(hosts)
        ]

    def merged(procs: list[subprocess.Popen]) -> subprocess.Popen:
        # one reader over all ssh outputs (like pdsh): a tiny tee through `cat` of a fifo per node
        fd_r, fd_w = os.pipe()
        import threading

        def pump(p):
            for line in p.stdout:
                os.write(fd_w, line.encode())

        threads = [threading.Thread(target=pump, args=(p,), daemon=True) for p in procs]
        for t in threads:
            t.start()

        def closer():
            for t in threads:
                t.join()
            os.close(fd_w)

        threading.Thread(target=closer, daemon=True).start()
        return subprocess.Popen(["cat"], stdin=fd_r, stdout=subprocess.PIPE, text=True)

    port = 29400 + os.getpid() % 90
    rid = f"bench{os.getpid()}"
    procs = launch(port, rid, ["--steps", "1000000", "--sleep", "0.05"])
    t_first, _, _ = stream_until(merged(procs), world, None)
    t0 = time.perf_counter()
    kill = (
        "pkill -TERM -f '[t]orch.distributed.run'; sleep 0.2; "
        "while pgrep -f '[t]orch.distributed.run|[d]dp_tiny' >/dev/null; do sleep 0.05; done"
    )
    for h in hosts:
        subprocess.run(
            ["ssh", *ssh_argv(lab, h), f"root@{lab.host(h).address}", kill], capture_output=True, timeout=120
        )
    t_stop = time.perf_counter() - t0
    for p in procs:
        p.kill()
    t0 = time.perf_counter()
    procs = launch(port + 1, rid + "t", ["--steps", "1", "--lines", str(lines)])
    _, counts, _ = stream_until(merged(procs), world, lines)
    elapsed = time.perf_counter() - t0
    return {
        "first_line_s": t_first or float("nan"),
        "stop_s": t_stop,
        "lines_per_s": sum(counts.values()) / elapsed,
        "missing": float(world * lines - sum(counts.values())),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--lines", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="dccli-bench-train-")
    os.environ["DCCLI_HOME"] = home
    from dccli.lab.manager import lab_down, lab_up

    name = f"btrain{os.getpid()}"
    lab = lab_up(name, args.hosts)
    try:
        hosts = [h.name for h in lab.hosts]
        nodes = f"node[01-{args.hosts:02d}]"
        world = args.hosts * args.nproc
        results: dict[str, list[dict[str, float]]] = {"dccli": [], "ssh+torchrun": []}
        for _ in range(args.rounds):
            results["dccli"].append(
                dccli_round(str(lab.inventory_path), nodes, world, args.nproc, args.lines)
            )
            results["ssh+torchrun"].append(ssh_round(lab, hosts, world, args.nproc, args.lines))
        print(
            f"bench/train: {args.hosts} hosts x {args.nproc} processes, {args.lines} lines per rank, "
            f"{args.rounds} round(s), medians"
        )
        med = {tool: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for tool, rs in results.items()}
        for tool, m in med.items():
            print(
                f"  {tool:13s} launch->all first lines {m['first_line_s']:6.2f}s   stop->nothing left "
                f"{m['stop_s']:6.2f}s   {m['lines_per_s']:9.0f} lines/s   missing lines {int(m['missing'])}"
            )
        d, s = med["dccli"], med["ssh+torchrun"]
        print(
            f"  ratios dccli/ssh: first lines {d['first_line_s'] / s['first_line_s']:.2f}x, "
            f"stop {d['stop_s'] / s['stop_s']:.2f}x, throughput {d['lines_per_s'] / s['lines_per_s']:.2f}x"
        )
    finally:
        lab_down(name)
        import shutil

        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
