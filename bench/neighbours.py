"""reluscope beside numpy (and PyTorch) in one process: does either slow the other down?

Each configuration runs in a fresh process, with 2 threads on each side; the
configurations differ in how long reluscope's idle workers watch for work before
they sleep (``RELUSCOPE_IDLE_SPIN_US``). It times, as medians over rounds:

- solo: a reluscope forward pass (256 x 256-256-256, the small-call latency
  case) and a numpy 256^3 product, each called back to back on its own;
- alternating: one of each in turn, each side timed on its own;
- with PyTorch installed, the same with a torch 256^3 product instead.

Perfect neighbours take as long alternating as alone: the pair's ratio to the
sum of the solo times is 1, and so is each side's ratio to its own solo time.
A side slowed while alternating is slowed by the other's idle threads: numpy's
by reluscope's workers, reluscope's by OpenBLAS's or PyTorch's.

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
    # OpenBLAS's idle threads spin without yielding for 2^28 cycles (tens of ms) unless told.
    "default, OPENBLAS_THREAD_TIMEOUT=4 for numpy": {"OPENBLAS_THREAD_TIMEOUT": "4"},
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


def _median_pair_seconds(first, second, rounds: int, calls: int) -> tuple[float, float]:
    """Medians over rounds of the mean time of each side, called alternately."""
    firsts, seconds = [], []
    for _ in range(rounds):
        spent = [0.0, 0.0]
        for _ in range(calls):
            start = time.perf_counter()
            first()
            middle = time.perf_counter()
            second()
            spent[0] += middle - start
            spent[1] += time.perf_counter() - middle
        firsts.append(spent[0] / calls)
        seconds.append(spent[1] / calls)
    firsts.sort()
    seconds.sort()
    return firsts[len(firsts) // 2], seconds[len(seconds) // 2]


def _pair_result(name: str, ours, theirs, rounds: int, calls: int, solo: dict) -> dict:
    """Each side's time within the pair, and as a multiple of its time alone."""
    ours_ms, theirs_ms = (1e3 * t for t in _median_pair_seconds(ours, theirs, rounds, calls))
    return {f"{name}_pair_reluscope_ms": ours_ms, f"{name}_pair_{name}_ms": theirs_ms,
            f"{name}_pair_ratio": (ours_ms + theirs_ms) / (solo["reluscope"] + solo[name]),
            f"{name}_slowed_by_reluscope": theirs_ms / solo[name],
            f"reluscope_slowed_by_{name}": ours_ms / solo["reluscope"]}


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

    for fn in (ours, numpys):  # warm up: threads started, buffers allocated
        fn()
    solo = {"reluscope": 1e3 * _median_seconds(ours, rounds, calls),
            "numpy": 1e3 * _median_seconds(numpys, rounds, calls)}
    result = {"reluscope_solo_ms": solo["reluscope"], "numpy_solo_ms": solo["numpy"]}
    result.update(_pair_result("numpy", ours, numpys, rounds, calls, solo))
    try:
        import torch
    except ImportError:
        return result
    torch.set_num_threads(2)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)

    def torchs():
        ta @ tb

    torchs()
    solo["torch"] = result["torch_solo_ms"] = 1e3 * _median_seconds(torchs, rounds, calls)
    result.update(_pair_result("torch", ours, torchs, rounds, calls, solo))
    return result


def _describe(r: dict) -> str:
    text = f"reluscope alone {r['reluscope_solo_ms']:.3f} ms"
    for other in ("numpy", "torch"):
        if f"{other}_pair_ratio" not in r:
            continue
        text += (f"\n    {other} alone {r[f'{other}_solo_ms']:.3f} ms; alternating: reluscope "
                 f"{r[f'{other}_pair_reluscope_ms']:.3f} ms "
                 f"({r[f'reluscope_slowed_by_{other}']:.2f}x alone), {other} "
                 f"{r[f'{other}_pair_{other}_ms']:.3f} ms "
                 f"({r[f'{other}_slowed_by_reluscope']:.2f}x alone); the pair "
                 f"{r[f'{other}_pair_ratio']:.2f}x the sum")
    return text


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
        print(f"{name}: {_describe(results[name])}", flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
