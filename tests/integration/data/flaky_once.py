"""A worker that fails on purpose in a run's first attempts, then joins a collective: for --max-restarts
tests. Default: rank 1 fails in attempt 0 only; `--fail-attempts 1000`: it fails every time.

Every rank prints which attempt it is in (DCCLI_RESTART_COUNT) and what torchrun's own variable says,
so the tests can check that the whole world restarted together and agrees on the count.
"""

import argparse
import os
import sys

import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--fail-attempts", type=int, default=1, help="fail while DCCLI_RESTART_COUNT < this")
parser.add_argument("--rank", type=int, default=1, help="the global rank that fails")
args = parser.parse_args()

restart = int(os.environ["DCCLI_RESTART_COUNT"])
rank = int(os.environ["RANK"])
print(
    f"rank {rank} attempt {restart} torchelastic {os.environ.get('TORCHELASTIC_RESTART_COUNT')}", flush=True
)
if rank == args.rank and restart < args.fail_attempts:
    print(f"rank {rank} failing on purpose (restart {restart})", flush=True)
    sys.exit(3)
dist.init_process_group("gloo")
t = torch.ones(1)
dist.all_reduce(t)
print(f"rank {rank} ok restart={restart} sum={int(t.item())}", flush=True)
dist.destroy_process_group()
