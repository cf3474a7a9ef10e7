"""reluscope beside numpy (and PyTorch) in one process: does either slow the other down?

Each configuration runs in a fresh process, with 2 threads on each side; the
configurations differ in how long reluscope's idle workers watch for work before
they sleep (``RELUSCOPE_IDLE_SPIN_US``). It times, as medians over rounds:

- solo: a reluscope forward pass (256 x 256-256-256, the small-call latency
  case) and a numpy 256^3 product, each called back to back on its own;
- pair: one of each, alternating, per pair;
- with PyTorch installed, the same pair with a torch 256^3 product instead.

The ratio pair / (solo reluscope + solo numpy) is 1 for perfect neighbours.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/neighbours.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "reluscope's default (300 us)": {},
    "RELUSCOPE_IDLE_SPIN_US=0": {"RELUSCOPE_IDLE_SPIN_US": "0"},
    "RELUSCOPE_IDLE_SPIN_US=100": {"RELUSCOPE_IDLE_SPIN_US": "100"},
    "RELUSCOPE_IDLE_SPIN_US=1000": {"RELUSCOPE_IDLE_SPIN_US": "1000"},
    "RELUSCOPE_IDLE_SPIN_US=10000": {"RELUSCOPE_IDLE_SPIN_US": "10000"},
    # PyTorch's libgomp workers spin for milliseconds after each operation unless told.
    "default, GOMP_SPINCOUNT=10000 for PyTorch": {"GOMP_SPINCOUNT": "10000"},
    "default, OMP_WAIT_POLICY=passive for PyTorch": {"OMP_WAIT_POLICY": "passive"},
}


def _median_seconds(fn, rounds: int, calls: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    samples.sort()
    return samples[len(samples) // 2]


def measure(rounds: int, calls: int) -> dict:
    """Run inside the child process: the timings of one configuration."""
    import numpy as np

    import reluscope as rs

    rs.set_num_threads(2)
    rng = np.random.default_rng(0)
    model = rs.MLP([256, 256, 256, 256], seed=0)
    x = rng.standard_normal((256, 256)).astype(np.float32)
    a, b = (rng.standard_normal((256, 256)).astype(np.float32) for _ in range(2))

    def ours():
        model.forward(x)

    def numpys():
        a @ b

    def pair():
        ours()
        numpys()

    for fn in (ours, numpys, pair):  # warm up: threads started, buffers allocated
        fn()
    result = {
        "reluscope_solo_ms": 1e3 * _median_seconds(ours, rounds, calls),
        "numpy_solo_ms": 1e3 * _median_seconds(numpys, rounds, calls),
        "pair_ms": 1e3 * _median_seconds(pair, rounds, calls),
        "reluscope_solo_again_ms": 1e3 * _median_seconds(ours, rounds, calls),
    }
    result["pair_ratio"] = result["pair_ms"] / (result["reluscope_solo_ms"]
                                                + result["numpy_solo_ms"])
    try:
        import torch
    except ImportError:
        return result
    torch.set_num_threads(2)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)

    def torchs():
        ta @ tb

    def torch_pair():
        ours()
        torchs()

    torchs()
    torch_pair()
    result["torch_solo_ms"] = 1e3 * _median_seconds(torchs, rounds, calls)
    result["torch_pair_ms"] = 1e3 * _median_seconds(torch_pair, rounds, calls)
    result["torch_pair_ratio"] = result["torch_pair_ms"] / (result["reluscope_solo_ms"]
                                                            + result["torch_solo_ms"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds, args.calls)))
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import peak

    cpu = peak.cpu_identity()
    print(f"CPU: {cpu}; FMA peak GFLOP/s by vector width and threads: {peak.measure((1, 2))}")
    results = {"cpu": cpu}
    for name, env in CONFIGS.items():
        child_env = {**os.environ, **env}
        out = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds),
                              "--calls", str(args.calls)], env=child_env, check=True,
                             capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
        r = results[name]
        line = (f"{name:<46} reluscope {r['reluscope_solo_ms']:.3f} ms (again "
                f"{r['reluscope_solo_again_ms']:.3f})  numpy {r['numpy_solo_ms']:.3f} ms  "
                f"pair {r['pair_ms']:.3f} ms = {r['pair_ratio']:.2f}x the sum")
        if "torch_pair_ms" in r:
            line += (f"  | torch {r['torch_solo_ms']:.3f} ms, pair {r['torch_pair_ms']:.3f} ms "
                     f"= {r['torch_pair_ratio']:.2f}x")
        print(line, flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
