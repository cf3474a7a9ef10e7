"""Cost of dead-unit monitoring in the training step: all on (firing counts and
death tracking, the defaults), counts only, and all off, interleaved in one process.

    OMP_PROC_BIND=spread OMP_PLACES=cores python bench/monitoring_overhead.py 2
"""

import sys
import time

import numpy as np

import reluscope as rs

CONFIGS = [("tiny", 32, [64, 64, 64, 10], 3000), ("medium", 256, [784, 1024, 1024, 1024, 10], 10),
           ("deep-narrow", 256, [100] + [128] * 10 + [10], 300)]
MODES = {"all on": dict(track_firing=True, track_deaths=True),
         "counts only": dict(track_firing=True, track_deaths=False),
         "off": dict(track_firing=False, track_deaths=False)}


def median_step(step, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(threads: int, rounds: int = 9) -> None:
    rs.set_num_threads(threads)
    rng = np.random.default_rng(0)
    for name, batch, sizes, calls in CONFIGS:
        x = rng.random((batch, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], batch)
        weights = rs.MLP(sizes, seed=0).get_weights()
        trainers = {mode: rs.Trainer(rs.MLP.from_weights(weights),
                                     optimizer=rs.SGD(lr=1e-3, momentum=0.9), **options)
                    for mode, options in MODES.items()}
        samples = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode, trainer in trainers.items():
                samples[mode].append(median_step(lambda t=trainer, x=x, y=y: t.step(x, y), calls))
        med = {mode: float(np.median(s)) for mode, s in samples.items()}
        print(f"{threads} thread(s) {name}: " + ", ".join(f"{m} {v * 1e3:.4f} ms"
                                                          for m, v in med.items())
              + f" | counts/off {med['counts only'] / med['off']:.3f}"
              + f", all/off {med['all on'] / med['off']:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else rs.get_num_threads())
