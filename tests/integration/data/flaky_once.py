import os, sys
import torch.distributed as dist
restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
rank = int(os.environ["RANK"])
if restart == 0 and rank == 1:
    print(f"rank {rank} failing on purpose (restart {restart})", flush=True)
    sys.exit(3)
dist.init_process_group("gloo")
t = __import__("torch").ones(1)
dist.all_reduce(t)
print(f"rank {rank} ok restart={restart} sum={int(t.item())}", flush=True)
dist.destroy_process_group()
