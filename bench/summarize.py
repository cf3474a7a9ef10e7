"""Turn a pytest-benchmark JSON file into a Markdown table of reluscope against numpy.

    python bench/summarize.py bench/results/foundation.json > bench/results/foundation.md
"""

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        impl = bench["params"].get("impl", bench["name"])
        groups[bench["group"]][impl] = bench["stats"]["median"]
    machine = data["machine_info"]
    info = machine.get("reluscope", {})
    print(f"Machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor'))}, "
          f"SIMD target {info.get('selected_target')}, {info.get('num_threads')} threads, "
          f"reluscope {info.get('version')}, numpy {machine.get('numpy')}, "
          f"BLAS {machine.get('blas')}, Python {machine.get('python_version')}, "
          f"{data.get('datetime', '')[:10]}")
    print()
    print("| work | reluscope (median) | numpy (median) | reluscope / numpy |")
    print("|---|---:|---:|---:|")
    for group in sorted(groups):
        times = groups[group]
        ours, theirs = times.get("reluscope"), times.get("numpy")
        if ours is None or theirs is None:
            continue
        print(f"| {group} | {ours * 1e3:.3f} ms | {theirs * 1e3:.3f} ms | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
