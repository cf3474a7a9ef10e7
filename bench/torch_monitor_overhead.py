"""Cost of ``reluscope.torch.DeadUnitMonitor`` in a PyTorch CPU training step, against the
plain loop and the plain forward-hook recipe, interleaved in one process.

    python bench/torch_monitor_overhead.py [threads] [rounds]

Variants, each on its own copy of the same initial network:

- plain: forward, cross-entropy, zero_grad, backward, SGD step (momentum 0.9);
- hook recipe: plus a forward hook per ReLU doing ``counts += (out > 0).sum(0)``;
- monitor: ``DeadUnitMonitor(net)``: firing counts per unit in training forwards;
- monitor + optimizer: ``DeadUnitMonitor(net, optimizer=opt)``: also each unit's
  last-firing step and update, through the optimizer's step hooks.

Each round times a block of steps per variant, in a fresh random variant order; the
table gives the median per-step time over the rounds and the ratio to plain. The
per-epoch scan (``end_epoch``) is not in the step and not timed. Before timing,
the monitor's counts are checked against the recipe's on the same steps.
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional

import reluscope.torch as rt

CONFIGS = [("medium", 256, [784, 1024, 1024, 1024, 10], 4),
           ("tiny", 32, [20, 32, 32, 3], 200)]  # name, batch, sizes, steps per timed block


def make_net(sizes: list[int]) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def hook_recipe(net: nn.Sequential) -> list[torch.Tensor]:
    """The plain recipe: a forward hook per ReLU counting ``(out > 0)`` per unit."""
    counts = []
    for module in net:
        if isinstance(module, nn.ReLU):
            count = torch.zeros(0, dtype=torch.long)
            counts.append(count)

            def hook(module, args, output, count=count):
                fired = (output > 0).sum(0)
                if count.numel() == 0:
                    count.resize_(fired.shape).zero_()
                count += fired

            module.register_forward_hook(hook)
    return counts


class Variant:
    def __init__(self, name: str, sizes: list[int], x, y):
        self.name, self.x, self.y = name, x, y
        self.net = make_net(sizes)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=1e-3, momentum=0.9)
        self.recipe_counts = hook_recipe(self.net) if name == "hook recipe" else None
        self.monitor = None
        if name.startswith("monitor"):
            optimizer = self.optimizer if name == "monitor + optimizer" else None
            self.monitor = rt.DeadUnitMonitor(self.net, optimizer=optimizer)

    def step(self) -> None:
        loss = functional.cross_entropy(self.net(self.x), self.y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def time_block(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - start) / steps


def check_answers(sizes, x, y) -> None:
    """The monitor's per-epoch counts equal the recipe's on the same steps."""
    variant = Variant("hook recipe", sizes, x, y)
    monitor = rt.DeadUnitMonitor(variant.net, optimizer=variant.optimizer)
    for _ in range(3):
        variant.step()
    counted = monitor.epoch_firing_counts()
    monitor.close()
    for counts, recipe in zip(counted, variant.recipe_counts):
        assert np.array_equal(counts, recipe.numpy()), "monitor and recipe counts differ"


def cpu_model() -> str:
    fields = {}
    with open("/proc/cpuinfo") as info:
        for line in info:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return (f"{fields.get('model name', '?')} (vendor {fields.get('vendor_id', '?')}, "
            f"family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})")


def main(threads: int = 1, rounds: int = 15) -> None:
    torch.set_num_threads(threads)
    print(f"CPU: {cpu_model()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {rounds} rounds")
    print(f"{'net':>7} {'batch':>5}  {'variant':<20} {'ms/step':>9} {'vs plain':>9}")
    names = ["plain", "hook recipe", "monitor", "monitor + optimizer"]
    order = random.Random(0)
    for net_name, batch, sizes, steps in CONFIGS:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(batch, sizes[0], generator=generator)
        y = torch.randint(0, sizes[-1], (batch,), generator=generator)
        check_answers(sizes, x, y)
        variants = [Variant(name, sizes, x, y) for name in names]
        for variant in variants:
            variant.time_block(2)  # warm up
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            order.shuffle(variants)
            for variant in variants:
                samples[variant.name].append(variant.time_block(steps))
        plain = float(np.median(samples["plain"]))
        for name in names:
            median = float(np.median(samples[name]))
            print(f"{net_name:>7} {batch:>5}  {name:<20} {median * 1e3:>9.3f} "
                  f"{100 * (median / plain - 1):>+8.1f}%")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
