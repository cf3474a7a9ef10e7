"""Throughput of rs.scan on a dask array (LocalCluster of worker processes) against the
local scan of the same rows on 1 and 2 threads, and the cost of each extra chunk.

    python bench/dask_scan.py [n_workers] [rounds]

The data is made and kept on the workers (``persist``): the timed scans move
only the partial statistics, as on a cluster whose workers read their own
files. Every dask scan is checked against the local one (counts and margins
bit for bit, |activation| sums to 1e-12) before its time is reported. The
overhead per chunk is the slope between the same rows in few and in many chunks.
"""

import os
import platform
import sys
import time

import numpy as np

import reluscope as rs

N_SAMPLES, SIZES = 200_000, [64, 256, 256, 10]
FEW_ROWS, MANY_ROWS = 50_000, 1_000  # rows per chunk: 4 and 200 chunks


def cpu() -> str:
    """Vendor, family, model and name of the first processor in /proc/cpuinfo."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or "unknown CPU"
    return (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')} ({fields.get('model name', '?')})")


def interleaved_times(runs: dict, rounds: int) -> tuple[dict, dict]:
    """Per run (name: (kernel threads, function)): its fastest time, and its last result.

    Each round times every run once, so a burst of load from elsewhere falls on
    all of them alike; the fastest of the rounds is the least disturbed.
    """
    times = {name: [] for name in runs}
    results = {}
    for _ in range(rounds):
        for name, (threads, run) in runs.items():
            rs.set_num_threads(threads)
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}, results


def check(local, remote) -> None:
    for a, b in zip(local.layers, remote.layers):
        np.testing.assert_array_equal(a.firing_counts, b.firing_counts)
        np.testing.assert_array_equal(a.max_pre_activation, b.max_pre_activation)
        np.testing.assert_allclose(a.mean_abs_activation, b.mean_abs_activation, rtol=1e-12)


def main(n_workers: int = 2, rounds: int = 5) -> None:
    import dask
    import dask.array as da
    import distributed

    model = rs.MLP(SIZES, seed=0)
    generator = da.random.default_rng(0)
    # Closing the cluster can log a closed heartbeat stream; that is not the benchmark.
    dask.config.set({"logging.distributed": "critical"})
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) \
            as cluster, distributed.Client(cluster):
        few = generator.standard_normal((N_SAMPLES, SIZES[0]), dtype=np.float32,
                                        chunks=(FEW_ROWS, -1)).persist()
        many = few.rechunk((MANY_ROWS, -1)).persist()
        distributed.wait([few, many])
        x = few.compute()  # the reference only: the timed dask scans never gather x
        runs = {  # the client's threads matter only to the local scans
            "local, 1 thread": (1, lambda: rs.scan(model, x)),
            f"local, {n_workers} threads": (n_workers, lambda: rs.scan(model, x)),
            # The kernel alone on blocks as small as the many chunks, on one thread
            # as in a worker: what of the cost of many chunks is smaller GEMMs.
            f"local, 1 thread, chunk_size={MANY_ROWS:,}":
                (1, lambda: rs.scan(model, x, chunk_size=MANY_ROWS)),
            f"dask, {N_SAMPLES // FEW_ROWS} chunks of {FEW_ROWS:,}":
                (1, lambda: rs.scan(model, few)),
            f"dask, {N_SAMPLES // MANY_ROWS} chunks of {MANY_ROWS:,}":
                (1, lambda: rs.scan(model, many)),
        }
        seconds, reports = interleaved_times(runs, rounds)
        for report in reports.values():
            check(reports["local, 1 thread"], report)
        versions = f"dask {dask.__version__}, distributed {distributed.__version__}"
    n_few, n_many = N_SAMPLES // FEW_ROWS, N_SAMPLES // MANY_ROWS
    extra_chunks = n_many - n_few
    # Worker-seconds per extra chunk (the workers run side by side), less the
    # kernel's own extra cost for blocks of MANY_ROWS rows.
    one_thread_s, threads_s, small_s, few_s, many_s = seconds.values()
    per_chunk_ms = 1e3 * n_workers * (many_s - few_s) / extra_chunks
    kernel_ms = 1e3 * (small_s - one_thread_s) / extra_chunks
    best_local_s = min(one_thread_s, threads_s)
    print(f"CPU: {cpu()}")
    print(f"reluscope {rs.__version__}, SIMD {rs.build_info()['selected_target']}, "
          f"numpy {np.__version__}, {versions}, Python {platform.python_version()}")
    print(f"{N_SAMPLES:,} x {SIZES[0]} float32 through {'-'.join(map(str, SIZES))}, "
          f"fastest of {rounds} interleaved rounds; dask: {n_workers} worker processes x 1 thread")
    # Timings on a shared machine mean little without the load they ran under.
    print(f"{os.cpu_count()} logical CPUs, load average over the last minute after the run: "
          f"{os.getloadavg()[0]:.1f}")
    for name, time_s in seconds.items():
        print(f"  {name:<36} {time_s:7.3f} s  {N_SAMPLES / time_s / 1e3:8.1f} k samples/s  "
              f"x{best_local_s / time_s:.2f} of the faster local")
    print(f"  per extra chunk: {per_chunk_ms:.2f} ms of worker time, of which smaller GEMMs "
          f"{kernel_ms:.2f} ms: task overhead {per_chunk_ms - kernel_ms:.2f} ms")

if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
