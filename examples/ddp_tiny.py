"""A tiny DDP job for `dccli train`: a linear model on synthetic data, gloo backend, CPU only.

Each rank trains on its own shard of y = X @ w_true + noise; DDP averages gradients, so every rank ends
with bit-identical parameters. Each rank prints its loss now and then and, at the end, one line
`rank R done first_loss A last_loss B checksum C` that tests (and people) compare across ranks.

    dccli train launch examples/ddp_tiny.py --nodes 'node[01-02]' --nproc-per-node 2 -- --steps 300

Extra knobs for tests and benchmarks: --sleep S (seconds per step: a long-running job to stop or
freeze), --lines N (print N numbered lines per rank: log throughput), --fail-rank R (that rank raises).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

# The CPU wheel warns on import when numpy is absent; nothing here needs numpy.
warnings.filterwarnings("ignore", message=".*NumPy.*")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--lines", type=int, default=0)
    p.add_argument("--fail-rank", type=int, default=-1)
    args = p.parse_args()

    torch.set_num_threads(1)  # 8 processes on a 2-core machine: no thread oversubscription
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    host = os.uname().nodename
    restarts = os.environ.get("DCCLI_RESTART_COUNT", "0")
    print(
        f"rank {rank} of {world} on {host} (node rank {os.environ.get('DCCLI_NODE_RANK')}, "
        f"local rank {os.environ.get('LOCAL_RANK')}, restart {restarts})",
        flush=True,
    )

    for i in range(args.lines):  # throughput: numbered lines, so a reader can prove none is lost
        print(f"rank {rank} line {i}")
    if args.lines:
        sys.stdout.flush()

    torch.manual_seed(0)  # the same true weights and initial model everywhere
    w_true = torch.randn(args.features, 1)
    model = DDP(torch.nn.Linear(args.features, 1))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(1000 + rank)  # each rank its own data shard
    first = last = None
    for step in range(args.steps):
        x = torch.randn(args.batch, args.features, generator=gen)
        y = x @ w_true + 0.01 * torch.randn(args.batch, 1, generator=gen)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        first = value if first is None else first
        last = value
        if step % args.log_every == 0 or step == args.steps - 1:
            print(f"rank {rank} step {step} loss {value:.6f}", flush=True)
        if rank == args.fail_rank and step == args.steps // 2:
            raise RuntimeError(f"rank {rank}: failing on purpose at step {step}")
        if args.sleep:
            time.sleep(args.sleep)
    checksum = sum(float(t.detach().double().sum()) for t in model.module.parameters())
    print(
        f"rank {rank} done first_loss {first:.6f} last_loss {last:.6f} checksum {checksum:.12f}", flush=True
    )
    dist.barrier()  # nobody tears the group down while a peer still uses it
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
