"""Two DDP ranks on the loopback (gloo), each with its own shard, each watched by a
DeadUnitMonitor; run by tests/test_torch_ddp.py as ``python ddp_ranks.py PORT OUT_DIR``.

Unit 0 fires only on rank 1's shard (x[:, 0] > 0 there, < 0 on rank 0's), unit 1
fires everywhere, unit 2 nowhere. Each rank writes what its monitor booked.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

N_PER_RANK, BATCH = 200, 50


def shard(rank: int) -> torch.Tensor:
    x = np.random.default_rng(rank).standard_normal((N_PER_RANK, 2)).astype(np.float32)
    x[:, 0] = np.abs(x[:, 0]) * (1 if rank == 1 else -1)
    return torch.from_numpy(x)


def model() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 5.0, -1.0]))
    return net


def run_rank(rank: int, world_size: int, port: int, out_dir: str) -> None:
    from reluscope.torch import DeadUnitMonitor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        ddp = nn.parallel.DistributedDataParallel(model())
        # lr 0: the weights stay as set, so the parent can compute the expected scan.
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.0)
        x = shard(rank)
        monitor = DeadUnitMonitor(ddp, x, optimizer)
        for start in range(0, N_PER_RANK, BATCH):
            optimizer.zero_grad()
            ddp(x[start:start + BATCH]).pow(2).mean().backward()
            optimizer.step()
        monitor.end_epoch()
        monitor.close()
        result = {"layer_names": monitor.layer_names,
                  "reports": [report.to_dict() for report in monitor.history.reports],
                  "silent": [units.tolist() for units in monitor.silent[-1][1]]}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as out:
            json.dump(result, out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    torch.multiprocessing.spawn(run_rank, args=(2, port, out_dir), nprocs=2, join=True)
