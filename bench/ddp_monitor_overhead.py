"""What reluscope.torch.DeadUnitMonitor costs a DistributedDataParallel training loop.

Two gloo ranks on 127.0.0.1 (torch.multiprocessing.spawn), each on 1 thread,
train the same net on their halves of each global batch, for `--steps` steps per
epoch, with and without the monitor (optimizer hooks on), in alternating epochs.
Reported: the median time per step on rank 0 of each kind of epoch, and the time
of one ``end_epoch()`` (the reductions over the ranks and the scan of x_scan).

    python bench/ddp_monitor_overhead.py --epochs 8 --steps 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peak  # noqa: E402

import reluscope.torch as rt  # noqa: E402

SIZES = [784, 512, 512, 10]
GLOBAL_BATCH = 256
SCAN_ROWS = 2048


def rank_main(rank: int, world: int, port: int, epochs: int, steps: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        torch.manual_seed(0)
        layers = []
        for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(SIZES) - 2 else [])
        model = nn.parallel.DistributedDataParallel(nn.Sequential(*layers))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        generator = torch.Generator().manual_seed(rank)
        half = GLOBAL_BATCH // world
        x = torch.randn(steps * half, SIZES[0], generator=generator)
        y = torch.randint(0, SIZES[-1], (steps * half,), generator=generator)
        shard = torch.randn(SCAN_ROWS // world, SIZES[0], generator=generator)
        monitor = rt.DeadUnitMonitor(model, x_scan=shard, optimizer=optimizer)
        monitor.close()  # hooks off: the epochs "without" run bare
        step_times = {"without": [], "with": []}
        end_epoch_times = []
        for epoch in range(epochs):
            watched = epoch % 2 == 1
            if watched:
                monitor = rt.DeadUnitMonitor(model, x_scan=shard, optimizer=optimizer)
            for s in range(steps):
                dist.barrier()
                start = time.perf_counter()
                loss = functional.cross_entropy(model(x[s * half:(s + 1) * half]),
                                                y[s * half:(s + 1) * half])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step_times["with" if watched else "without"].append(time.perf_counter() - start)
            if watched:
                dist.barrier()
                start = time.perf_counter()
                monitor.end_epoch()
                end_epoch_times.append(time.perf_counter() - start)
                monitor.close()
        if rank == 0:
            result = {name: statistics.median(times) for name, times in step_times.items()}
            result["end_epoch"] = statistics.median(end_epoch_times)
            with open(out, "w") as file:
                json.dump(result, file)
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        torch.multiprocessing.spawn(rank_main, args=(2, port, args.epochs, args.steps, out),
                                    nprocs=2, join=True)
        with open(out) as file:
            result = json.load(file)
    without, with_monitor = result["without"], result["with"]
    print(f"CPU: {peak.cpu_identity()}; torch {torch.__version__}; 2 gloo ranks x 1 thread; "
          f"net {'-'.join(map(str, SIZES))}, global batch {GLOBAL_BATCH}")
    print(f"step without the monitor: {1e3 * without:.2f} ms; with it (optimizer hooks on): "
          f"{1e3 * with_monitor:.2f} ms ({100 * (with_monitor / without - 1):+.1f}%)")
    print(f"end_epoch (reductions and the scan of {SCAN_ROWS} rows): "
          f"{1e3 * result['end_epoch']:.1f} ms")


if __name__ == "__main__":
    main()
