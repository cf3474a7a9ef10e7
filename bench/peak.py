"""Measure the CPU's peak FP32 FMA rate (the denominator of every efficiency
figure) by compiling and running bench/peak_flops.cpp once per vector width.

    python bench/peak.py 1 2       # {"avx512": {"1": GFLOP/s, "2": ...}, "avx2": {...}}
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FLAGS = {"avx512": ["-mavx512f", "-mfma"], "avx2": ["-mavx2", "-mfma"]}
CPU_FLAG = {"avx512": "avx512f", "avx2": "avx2"}


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_identity() -> dict:
    """Vendor, family, model and name of the CPU, from /proc/cpuinfo (empty elsewhere)."""
    keys = {"vendor_id": "vendor", "cpu family": "family", "model": "model",
            "model name": "name"}
    found = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in keys and keys[key.strip()] not in found:
                    found[keys[key.strip()]] = value.strip()
                if not line.strip() and found:
                    break
    except OSError:
        pass
    return found


def measure(thread_counts=(1, 2)) -> dict:
    """GFLOP/s per vector width the CPU supports and per thread count."""
    flags = cpu_flags()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for width, compile_flags in FLAGS.items():
            if CPU_FLAG[width] not in flags:
                continue
            binary = os.path.join(tmp, f"peak_{width}")
            subprocess.run(["g++", "-O2", "-ffp-contract=fast", "-fopenmp", *compile_flags,
                            os.path.join(HERE, "peak_flops.cpp"), "-o", binary], check=True)
            result[width] = {
                str(t): float(subprocess.run([binary, str(t)], check=True, capture_output=True,
                                             text=True).stdout)
                for t in thread_counts
            }
    return result


if __name__ == "__main__":
    counts = [int(a) for a in sys.argv[1:]] or [1, 2]
    print(json.dumps(measure(counts), indent=2))
