"""Cost of ``reluscope.torch.DeadUnitMonitor`` in a PyTorch CPU training step, against the
plain loop and the plain forward-hook recipe, interleaved in one process.

    python bench/torch_monitor_overhead.py [threads] [rounds] [momentum]

Variants, each on its own copy of the same initial network:

- plain: forward, cross-entropy, zero_grad, backward, SGD step (momentum 0.9 unless told;
  with momentum 0 the monitor reads the update from the gradient instead of the buffer);
- hook recipe: plus a forward hook per ReLU doing ``counts += (out > 0).sum(0)``;
- monitor: ``DeadUnitMonitor(net)``: firing counts per unit in training forwards;
- monitor + optimizer, copy: ``DeadUnitMonitor(net, optimizer=opt, update_path="copy")``:
  also each unit's last-firing step and update, through the optimizer's step hooks, by
  copying each weight before the step (what any optimizer but SGD gets);
- monitor + optimizer: ``DeadUnitMonitor(net, optimizer=opt)``: the same records, read
  from SGD's momentum buffer with nothing copied (the path each layer took is printed).

Each round times a block of steps per variant, in a fresh random variant order; the
table gives the median per-step time over the rounds and the ratio to plain, both in
wall-clock time and in the process's CPU time (``time.process_time``: on a machine shared
with other work, the time this process ran, not the time it waited for a core). The
per-epoch scan (``end_epoch``) is not in the step and not timed.

The step hooks alone: ``optimizer.step()`` on fixed gradients, timed the same way with
no monitor, the copy path and the default; their differences are the hooks' price
(CPU time), apart from the counting and far less shaken by other work than a whole
step. ``hooks / plain step`` divides it by the plain variant's whole step. Before timing,
the monitor's counts are checked against the recipe's on the same steps, and the two
update paths' records against each other.
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
    def __init__(self, name: str, sizes: list[int], x, y, momentum: float = 0.9):
        self.name, self.x, self.y = name, x, y
        self.net = make_net(sizes)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=1e-3, momentum=momentum)
        self.recipe_counts = hook_recipe(self.net) if name == "hook recipe" else None
        self.monitor = None
        if name.startswith("monitor"):
            optimizer = self.optimizer if "optimizer" in name else None
            self.monitor = rt.DeadUnitMonitor(self.net, optimizer=optimizer,
                                              update_path="copy" if "copy" in name else "auto")

    def step(self) -> None:
        loss = functional.cross_entropy(self.net(self.x), self.y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def time_block(self, steps: int) -> tuple[float, float]:
        """(wall-clock, CPU) seconds per step."""
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.step()
        return ((time.perf_counter() - start) / steps,
                (time.process_time() - start_cpu) / steps)


def check_answers(sizes, x, y, momentum: float) -> list:
    """The monitor's per-epoch counts equal the recipe's on the same steps; its update
    records equal the copy path's within float32 rounding of the weights (a norm's error
    is at most 2^-24 ||w_j||; 1e-6 here covers it for weights of norm below 16). Returns
    the update source of each layer."""
    variant = Variant("hook recipe", sizes, x, y, momentum)
    monitor = rt.DeadUnitMonitor(variant.net, optimizer=variant.optimizer)
    copied = rt.DeadUnitMonitor(variant.net, optimizer=variant.optimizer, update_path="copy")
    for _ in range(3):
        variant.step()
    counted = monitor.epoch_firing_counts()
    monitor.close()
    copied.close()
    for counts, recipe in zip(counted, variant.recipe_counts):
        assert np.array_equal(counts, recipe.numpy()), "monitor and recipe counts differ"
    for read, copy in zip(monitor.last_firing_stats(), copied.last_firing_stats()):
        for field in read.last_firing.dtype.names:
            np.testing.assert_allclose(read.last_firing[field], copy.last_firing[field],
                                       rtol=1e-5, atol=1e-6, err_msg=field)
    return monitor.update_sources


def time_step_hooks(sizes, x, y, momentum: float, rounds: int, steps: int,
                    order: random.Random) -> dict[str, float]:
    """Median CPU seconds the step hooks add to one ``optimizer.step()``, per update path."""
    steppers = {}
    for path in ("none", "copy", "auto"):
        variant = Variant("plain", sizes, x, y, momentum)
        if path != "none":
            variant.monitor = rt.DeadUnitMonitor(variant.net, optimizer=variant.optimizer,
                                                 update_path=path)
        functional.cross_entropy(variant.net(x), y).backward()  # gradients kept fixed
        steppers[path] = variant.optimizer.step
    samples: dict[str, list[float]] = {path: [] for path in steppers}
    paths = list(steppers)
    for _ in range(rounds):
        order.shuffle(paths)
        for path in paths:
            start = time.process_time()
            for _ in range(steps):
                steppers[path]()
            samples[path].append((time.process_time() - start) / steps)
    alone = float(np.median(samples["none"]))
    return {path: float(np.median(samples[path])) - alone for path in ("copy", "auto")}


def cpu_model() -> str:
    fields = {}
    with open("/proc/cpuinfo") as info:
        for line in info:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return (f"{fields.get('model name', '?')} (vendor {fields.get('vendor_id', '?')}, "
            f"family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})")


def main(threads: int = 1, rounds: int = 15, momentum: float = 0.9) -> None:
    torch.set_num_threads(threads)
    print(f"CPU: {cpu_model()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {rounds} rounds, "
          f"SGD momentum {momentum}")
    print(f"{'net':>7} {'batch':>5}  {'variant':<26} {'ms/step':>9} {'vs plain':>9}"
          f" {'cpu ms/step':>12} {'vs plain':>9}")
    names = ["plain", "hook recipe", "monitor", "monitor + optimizer, copy",
             "monitor + optimizer"]
    order = random.Random(0)
    for net_name, batch, sizes, steps in CONFIGS:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(batch, sizes[0], generator=generator)
        y = torch.randint(0, sizes[-1], (batch,), generator=generator)
        sources = check_answers(sizes, x, y, momentum)
        variants = [Variant(name, sizes, x, y, momentum) for name in names]
        for variant in variants:
            variant.time_block(2)  # warm up
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for _ in range(rounds):
            order.shuffle(variants)
            for variant in variants:
                samples[variant.name].append(variant.time_block(steps))
        wall_plain, cpu_plain = np.median(samples["plain"], axis=0)
        for name in names:
            wall, cpu = np.median(samples[name], axis=0)
            print(f"{net_name:>7} {batch:>5}  {name:<26} {wall * 1e3:>9.3f} "
                  f"{100 * (wall / wall_plain - 1):>+8.1f}% {cpu * 1e3:>12.3f} "
                  f"{100 * (cpu / cpu_plain - 1):>+8.1f}%")
        print(f"{net_name:>7} update read from, per layer: {', '.join(sources)}")
        hooks = time_step_hooks(sizes, x, y, momentum, rounds, steps * 5, order)
        for name, cost in hooks.items():
            print(f"{net_name:>7} step hooks, {name:<6} {cost * 1e3:>7.3f} ms CPU per step, "
                  f"{100 * cost / cpu_plain:>4.1f}% of the plain step")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]), *(float(a) for a in sys.argv[3:4]))
