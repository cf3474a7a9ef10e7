"""GEMM speed per CPU profile and per software-prefetch distance, interleaved.

Every setting is applied before each of its samples and the settings take
turns round by round, so drift of a shared, noisy machine (other jobs, clock
changes) falls on all of them alike; the medians of many rounds are reported,
with the spread. Each setting's product is checked against numpy first.

    python bench/cpu_profiles.py --size 1024 --threads 1 --rounds 31 \\
        --prefetch 0 4 8 16 32 --out bench/results/cpu_profiles.json

Settings: every profile this CPU can run, by name, then the detected profile's
blocking with each --prefetch distance, then its prefetch distance with each
--blocking given as MC_PANELS,NC,BLOCKS_PER_PASS (both set through
_core.set_gemm_tuning; KC stays the profile's, so every setting gives the same
bits, which the check below asserts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peak  # noqa: E402

import reluscope as rs  # noqa: E402
from reluscope import _core  # noqa: E402


def settings(prefetch_distances, blockings=()) -> dict:
    """Name -> a function that puts the kernels in that setting."""
    result = {}
    profiles = rs.cpu_profiles()
    for name, profile in profiles.items():
        if (profile["simd_target"] or _core.best_target()) in _core.supported_targets():
            result[f"profile {name}"] = lambda name=name: rs.set_cpu_profile(name)
    detected = rs.build_info()["detected_cpu_profile"]

    def with_tuning(**changes):
        """The detected profile, with some of its GEMM tuning's values changed (never KC)."""
        rs.set_cpu_profile(detected)
        tuning = {**rs.build_info()["gemm_tuning"], **changes}
        _core.set_gemm_tuning(tuning["kc"], tuning["mc_panels"], tuning["nc"],
                              tuning["prefetch_distance"], tuning["blocks_per_pass"])

    for distance in prefetch_distances:
        result[f"{detected} prefetch {distance}"] = (
            lambda d=distance: with_tuning(prefetch_distance=d))
    for blocking in blockings:
        mc_panels, nc, blocks_per_pass = (int(v) for v in blocking.split(","))
        result[f"{detected} mc {mc_panels} nc {nc} bpp {blocks_per_pass}"] = (
            lambda b=(mc_panels, nc, blocks_per_pass): with_tuning(
                mc_panels=b[0], nc=b[1], blocks_per_pass=b[2]))
    return result


def seconds_per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="m = n = k")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--calls", type=int, default=3, help="calls timed per sample")
    parser.add_argument("--prefetch", type=int, nargs="*", default=[0, 4, 8, 16, 32])
    parser.add_argument("--blocking", nargs="*", default=[], metavar="MC_PANELS,NC,BPP",
                        help="blockings to time with the detected profile's KC and prefetch")
    parser.add_argument("--shape", help="M,K,N instead of --size cubed")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()

    load_before = os.getloadavg()  # the machine may be shared: say how busy it was
    rs.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    m, k, n = ((int(v) for v in args.shape.split(",")) if args.shape
               else (args.size, args.size, args.size))
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    expected = a.astype(np.float64) @ b

    def product():
        _core.gemm(a, b, c, False, False)

    cases = settings(args.prefetch, args.blocking)
    detected = rs.build_info()["detected_cpu_profile"]
    detected_bits = None
    for name, apply in cases.items():
        apply()
        c.fill(np.nan)
        product()
        np.testing.assert_allclose(c, expected, rtol=2e-5, atol=2e-6 * k + 1e-6,
                                   err_msg=name)
        if name == f"profile {detected}":
            detected_bits = c.copy()
        elif name.startswith(f"{detected} "):  # the detected profile's KC: the same bits
            np.testing.assert_array_equal(c, detected_bits, err_msg=name)

    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            cases[name]()
            product()  # warm: packing buffers, caches
            samples[name].append(seconds_per_call(product, args.calls))
    rs.set_cpu_profile(rs.build_info()["detected_cpu_profile"])

    # Speed relative to the detected profile, paired within each round: the
    # samples of one round ran seconds apart, under much the same load.
    baseline = samples[f"profile {detected}"]
    flops = 2.0 * m * n * k
    results = {}
    for name, times in samples.items():
        gflops = [flops / t / 1e9 for t in times]
        paired = [base / t for base, t in zip(baseline, times)]
        results[name] = {"median_gflops": float(np.median(gflops)),
                         "p25_gflops": float(np.percentile(gflops, 25)),
                         "p75_gflops": float(np.percentile(gflops, 75)),
                         "best_gflops": float(max(gflops)),
                         "median_speed_vs_detected": float(np.median(paired)),
                         "samples": len(gflops)}
        r = results[name]
        print(f"{name:32s} median {r['median_gflops']:6.1f} GFLOP/s (p25 {r['p25_gflops']:.1f}, "
              f"p75 {r['p75_gflops']:.1f}, best {r['best_gflops']:.1f}), "
              f"x{r['median_speed_vs_detected']:.3f} of detected, {len(gflops)} samples")
    report = {
        "machine": {**peak.cpu_identity(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg(), "python": platform.python_version(),
                    "reluscope": rs.__version__, "build_info": rs.build_info()},
        "gemm": {"m": m, "n": n, "k": k, "threads": args.threads,
                 "rounds": args.rounds, "calls_per_sample": args.calls},
        "results": results,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
