"""Time of one ``end_epoch()`` scan of ``reluscope.torch.DeadUnitMonitor``: the C++ scan of
the converted MLP against the hook scan of the PyTorch forward pass, interleaved in one
process.

    python bench/torch_monitor_scan.py [threads] [rounds]

One 784-512-512-10 ``nn.Sequential`` (ReLU), 10,000 scan rows; one monitor per path
(``scan_path="auto"`` takes the C++ path, ``"hooks"`` the hooks) on the same module. Each
round times one ``end_epoch()`` per path, in a fresh random order; the table gives the
medians. Before timing, the two paths' scans are checked to agree.
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np
import torch
from torch import nn
from torch_monitor_overhead import cpu_model

import reluscope as rs
import reluscope.torch as rt

SIZES = [784, 512, 512, 10]
ROWS = 10_000


def make_net() -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def check_answers(monitors: dict) -> None:
    """Same layers, same dead units; firing counts equal but for a pre-activation within
    float32 rounding of 0 (a count off by a sample or two)."""
    cpp, hooks = monitors["c++"].reports[-1], monitors["hooks"].reports[-1]
    for a, b in zip(cpp.layers, hooks.layers, strict=True):
        assert a.name == b.name
        assert np.array_equal(a.dead_units, b.dead_units), "the paths find other dead units"
        assert np.abs(a.firing_counts - b.firing_counts).max() <= 2, "firing counts differ"
        np.testing.assert_allclose(a.max_pre_activation, b.max_pre_activation, rtol=1e-4,
                                   atol=1e-5)


def main(threads: int = 1, rounds: int = 15) -> None:
    torch.set_num_threads(threads)
    rs.set_num_threads(threads)
    net = make_net()
    x = torch.randn(ROWS, SIZES[0], generator=torch.Generator().manual_seed(0))
    monitors = {"c++": rt.DeadUnitMonitor(net, x_scan=x),
                "hooks": rt.DeadUnitMonitor(net, x_scan=x, scan_path="hooks")}
    assert monitors["c++"].scan_paths == ["c++"] and monitors["hooks"].scan_paths == ["hooks"]
    check_answers(monitors)
    samples: dict[str, list[float]] = {name: [] for name in monitors}
    order = random.Random(0)
    names = list(monitors)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            monitors[name].end_epoch()
            samples[name].append(time.perf_counter() - start)
    assert all(path == "c++" for path in monitors["c++"].scan_paths)
    simd = rs.build_info()["selected_target"]
    print(f"CPU: {cpu_model()}")
    print(f"torch {torch.__version__}, reluscope {rs.__version__} (SIMD {simd}), "
          f"{threads} thread(s), {rounds} rounds")
    print(f"{'-'.join(map(str, SIZES))}, {ROWS} scan rows: one end_epoch() scan")
    hooks = float(np.median(samples["hooks"]))
    for name, times in samples.items():
        median = float(np.median(times))
        print(f"{name:>6}  {median * 1e3:8.1f} ms  (min {min(times) * 1e3:.1f})  "
              f"{hooks / median:4.2f}x the hooks' speed")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
