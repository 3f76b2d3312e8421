"""Fails once on rank 1 (torchrun's first attempt), then joins a collective: for --max-restarts tests."""

import os
import sys

import torch
import torch.distributed as dist

restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
rank = int(os.environ["RANK"])
if restart == 0 and rank == 1:
    print(f"rank {rank} failing on purpose (restart {restart})", flush=True)
    sys.exit(3)
dist.init_process_group("gloo")
t = torch.ones(1)
dist.all_reduce(t)
print(f"rank {rank} ok restart={restart} sum={int(t.item())}", flush=True)
dist.destroy_process_group()
