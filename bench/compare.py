"""Side-by-side, interleaved timings of reluscope against numpy and PyTorch CPU.

Every case runs all its implementations in one process, alternating between them
round by round, after checking that they compute the same thing. Medians are
reported with ratios, for each thread count, and saved as JSON plus Markdown.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py \
        --threads 1 2 --out bench/results/performance

PyTorch is used when installed (pip install torch==2.13.0, a CPU build).
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

import numpy_baseline  # noqa: E402
import peak  # noqa: E402

import reluscope as rs  # noqa: E402
from reluscope import _core  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

STEP_CONFIGS = {
    "tiny": (32, [64, 64, 64, 10]),
    "medium": (256, [784, 1024, 1024, 1024, 10]),
    "deep-narrow": (256, [100] + [128] * 10 + [10]),
}
# (m, n, k, transpose_a, transpose_b): squares and the three products of a
# medium layer (forward x @ W, weight gradient x.T @ g, input gradient g @ W.T).
GEMMS = [(256, 256, 256, 0, 0), (512, 512, 512, 0, 0), (1024, 1024, 1024, 0, 0),
         (2048, 2048, 2048, 0, 0), (256, 1024, 784, 0, 0), (1024, 1024, 256, 1, 0),
         (256, 1024, 1024, 0, 1)]
SCAN_SAMPLES = 60_000


def timed(fn, min_seconds=2e-3):
    """Seconds per call of fn, from enough calls to last min_seconds."""
    repeat, start = 1, time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    if elapsed < min_seconds:
        repeat = max(1, int(min_seconds / max(elapsed, 1e-7)))
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        elapsed = time.perf_counter() - start
    return elapsed / repeat


# Idle time before each sample. Each runtime's worker threads spin for a while
# after their work (reluscope's 0.3 ms, PyTorch's libgomp a few ms, OpenBLAS up
# to 2^28 cycles, about 70 ms at 4 GHz, more at a lower clock) and would steal
# the cores of whichever implementation runs next:
# without this pause torch's medium step read 45 ms instead of 25.
SETTLE_SECONDS = 0.3


# Calls before each sample, for at least this long: after the settle pause the
# next calls run slow for a while whatever the library (the CPU's clock, caches,
# and in a virtual machine the idle vCPU's exit from the hypervisor on every
# thread wake-up: a 2-thread deep-narrow step of 4 ms took 10-15 ms for 50-100 ms
# after an idle spell). The samples are of steady training, which is what the
# step and product rows stand for; bench/neighbours.py covers the cold case.
WARM_SECONDS = 0.1


# Each sample is the mean of consecutive calls lasting at least this long. One
# call per sample, right after the warm-up, still read cold for calls of tens of
# milliseconds (Zen 3, 2 threads: reluscope's medium step 37.5 ms per sample,
# 29.7-31.1 ms over 20 steps in a row; numpy's 42 against 44-58).
SAMPLE_SECONDS = 0.2


def warm(fn):
    """Call fn until WARM_SECONDS have passed (at least once)."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < WARM_SECONDS:
        fn()


def interleave(impls: dict, rounds: int) -> dict:
    """Median seconds per call of each implementation, alternating round by round."""
    samples = {name: [] for name in impls}
    names = list(impls)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            time.sleep(SETTLE_SECONDS)
            warm(impls[name])  # caches, pools, lazily built state, the idle CPU's wake-up
            samples[name].append(timed(impls[name], SAMPLE_SECONDS))
    return {name: float(np.median(s)) for name, s in samples.items()}


# ---- training steps -------------------------------------------------------

def torch_step(weights, lr, momentum, monitor):
    layers = []
    for i, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    counts = []
    if monitor:  # the usual way: forward hooks counting firing units
        for module in model:
            if isinstance(module, torch.nn.ReLU):
                count = torch.zeros(0)
                counts.append(count)
                index = len(counts) - 1

                def hook(mod, inputs, output, index=index):
                    fired = (output > 0).sum(0)
                    counts[index] = fired if counts[index].numel() == 0 else counts[index] + fired
                module.register_forward_hook(hook)

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return model, step


def step_cases(name, rng):
    batch, sizes = STEP_CONFIGS[name]
    x = rng.random((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)
    weights = rs.MLP(sizes, init="he_normal", seed=0).get_weights()
    lr, momentum = 1e-3, 0.9
    impls, models = {}, {}
    for monitor in (True, False):
        model = rs.MLP.from_weights(weights)
        trainer = rs.Trainer(model, optimizer=rs.SGD(lr=lr, momentum=momentum),
                             batch_size=batch, track_firing=monitor)
        key = f"reluscope{'' if monitor else ' (no monitor)'}"
        impls[key] = lambda t=trainer: t.step(x, y)
        models[key] = model
    reference = numpy_baseline.MLPStep(weights, lr=lr, momentum=momentum)
    impls["numpy"] = lambda: reference(x, y)
    if torch is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        for monitor in (True, False):
            _, step = torch_step(weights, lr, momentum, monitor)
            impls[f"torch{' + hooks' if monitor else ''}"] = lambda s=step: s(xt, yt)
    # Check: one step of ours and of numpy from the same weights agree.
    check_model = rs.MLP.from_weights(weights)
    rs.Trainer(check_model, optimizer=rs.SGD(lr=lr, momentum=momentum)).step(x, y)
    check_ref = numpy_baseline.MLPStep(weights, lr=lr, momentum=momentum)
    check_ref(x, y)
    for a, b in zip(check_model.parameters(), check_ref.params):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    flops = 6.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return impls, flops


# ---- GEMM -----------------------------------------------------------------

def gemm_cases(shape, rng):
    m, n, k, ta, tb = shape
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    op_a, op_b = (a.T if ta else a), (b.T if tb else b)
    out = {name: np.empty((m, n), np.float32) for name in ("reluscope", "numpy", "torch")}
    impls = {"reluscope": lambda: _core.gemm(a, b, out["reluscope"], bool(ta), bool(tb)),
             "numpy": lambda: np.matmul(op_a, op_b, out=out["numpy"])}
    if torch is not None:
        ta_, tb_, tc = torch.from_numpy(op_a), torch.from_numpy(op_b), torch.from_numpy(
            out["torch"])
        impls["torch"] = lambda: torch.mm(ta_, tb_, out=tc)
    for fn in impls.values():
        fn()
    expected = op_a.astype(np.float64) @ op_b
    for name in impls:
        np.testing.assert_allclose(out[name], expected, rtol=1e-3, atol=1e-3 * np.sqrt(k))
    return impls, 2.0 * m * n * k


# ---- dataset scan ---------------------------------------------------------

def scan_cases(rng):
    sizes = STEP_CONFIGS["medium"][1]
    x = rng.random((SCAN_SAMPLES, sizes[0]), dtype=np.float32)
    model = rs.MLP(sizes, init="he_normal", seed=0)
    hidden = [(layer.weight, layer.bias) for layer in model.hidden_layers]
    chunk = 8192

    def numpy_scan():
        counts = [np.zeros(w.shape[1], np.int64) for w, _ in hidden]
        for start in range(0, SCAN_SAMPLES, chunk):
            h = x[start:start + chunk]
            for i, (w, b) in enumerate(hidden):
                pre = h @ w + b
                counts[i] += np.count_nonzero(pre > 0, axis=0)
                h = np.maximum(pre, 0)
        return counts

    # dormancy=False: the same work as the baselines (firing counts only).
    impls = {"reluscope": lambda: rs.scan(model, x, chunk_size=chunk, dormancy=False),
             "numpy": numpy_scan}
    if torch is not None:
        xt = torch.from_numpy(x)
        hidden_t = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in hidden]

        def torch_scan():
            counts = [torch.zeros(w.shape[1], dtype=torch.int64) for w, _ in hidden_t]
            with torch.no_grad():
                for start in range(0, SCAN_SAMPLES, chunk):
                    h = xt[start:start + chunk]
                    for i, (w, b) in enumerate(hidden_t):
                        pre = torch.addmm(b, h, w)
                        counts[i] += (pre > 0).sum(0)
                        h = torch.relu(pre)
            return counts
        impls["torch"] = torch_scan
    ours = rs.scan(model, x[:5000])
    x_small = x[:5000]
    h = x_small.astype(np.float64)
    for layer, (w, b) in zip(ours.layers, hidden):
        pre = h @ w + b
        # Counts may differ only on pre-activations within rounding of zero.
        assert np.abs(layer.firing_counts - (pre > 0).sum(0)).max() <= 2
        h = np.maximum(pre, 0)
    return impls, float(SCAN_SAMPLES)


# ---- driver ---------------------------------------------------------------

def set_threads(n):
    rs.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(n)
    except ImportError:
        return None


def machine_info(peaks):
    info = {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
            "reluscope": rs.build_info(), "numpy": np.__version__,
            "torch": torch.__version__ if torch is not None else None, "peak_gflops": peaks,
            "date": time.strftime("%Y-%m-%d"), "cpu_identity": peak.cpu_identity()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture")}
                        for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    info["env"] = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                  "OMP_NUM_THREADS", "OMP_PROC_BIND",
                                                  "OMP_PLACES")}
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", nargs="*", default=None,
                        help="case groups to run: step gemm scan gemm-avx2")
    parser.add_argument("--out", default=None, help="path prefix for .json and .md")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if len(args.threads) > 1 and args.child is None:
        # One fresh process per thread count: after a 1-thread phase, GEMMs on
        # 2 threads in the same process took a steady ~4 ms extra (a scheduler
        # tick) whatever the pause, which a fresh process never shows.
        return run_children(args)
    groups = args.only or ["step", "gemm", "scan", "gemm-avx2"]
    rng = np.random.default_rng(0)
    # The parent of per-thread-count children measures the peak once, alone.
    peaks = {} if args.child else peak.measure(args.threads)
    results = []
    best_target = _core.selected_target()
    for threads in args.threads:
        limits = set_threads(threads)
        cases = []
        if "step" in groups:
            cases += [(f"step {name}", *step_cases(name, rng), "flop") for name in STEP_CONFIGS]
        if "gemm" in groups:
            cases += [(f"gemm {m}x{n}x{k}{' A^T' if ta else ''}{' B^T' if tb else ''}",
                       *gemm_cases((m, n, k, ta, tb), rng), "flop")
                      for m, n, k, ta, tb in GEMMS]
        if "scan" in groups:
            cases.append(("scan 60000 x 784, medium net", *scan_cases(rng), "samples"))
        for label, impls, work, unit in cases:
            rounds = 5 if label.startswith("scan") else args.rounds
            medians = interleave(impls, rounds)
            results.append({"case": label, "threads": threads, "work": work, "unit": unit,
                            "target": best_target, "median_seconds": medians})
            print(f"[{threads} thread(s)] {label}: " + ", ".join(
                f"{k} {v * 1e3:.3f} ms" for k, v in medians.items()), flush=True)
        if "gemm-avx2" in groups and "avx2" in _core.supported_targets():
            rs.set_simd_target("avx2")
            impls, work = gemm_cases((1024, 1024, 1024, 0, 0), rng)
            medians = interleave({"reluscope": impls["reluscope"]}, args.rounds)
            results.append({"case": "gemm 1024x1024x1024", "threads": threads, "work": work,
                            "unit": "flop", "target": "avx2", "median_seconds": medians})
            rs.set_simd_target(best_target)
        if limits is not None:
            limits.restore_original_limits()
    report = {"machine": machine_info(peaks), "results": results}
    if args.child:
        with open(args.child, "w") as f:
            json.dump(report, f)
        return
    write_report(report, args.out)


def run_children(args):
    import subprocess
    import tempfile

    # Bind PyTorch's OpenMP threads to distinct cores (reluscope's own workers and
    # OpenBLAS's are not bound) unless the caller chose otherwise. Unbound, a new
    # or idle libgomp worker can wait on the core where the master spins at the
    # barrier: 2-thread GEMMs of 0.1 ms took 8 ms for the first calls.
    env = dict(os.environ)
    if not any(k in env for k in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY")):
        env.update(OMP_PROC_BIND="spread", OMP_PLACES="cores")
    peaks = peak.measure(args.threads)
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            path = os.path.join(tmp, f"{threads}.json")
            command = [sys.executable, os.path.abspath(__file__), "--threads", str(threads),
                       "--rounds", str(args.rounds), "--child", path]
            if args.only:
                command += ["--only", *args.only]
            subprocess.run(command, check=True, env=env)
            with open(path) as f:
                reports.append(json.load(f))
    machine = reports[-1]["machine"]
    machine["peak_gflops"] = peaks
    write_report({"machine": machine,
                  "results": [r for report in reports for r in report["results"]]}, args.out)


def write_report(report, out):
    markdown = to_markdown(report)
    print(markdown)
    if out:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out + ".json", "w") as f:
            json.dump(report, f, indent=1)
        with open(out + ".md", "w") as f:
            f.write(markdown + "\n")


def to_markdown(report):
    m = report["machine"]
    peaks = m["peak_gflops"]
    ident = m.get("cpu_identity", {})
    lines = [f"Machine: {m['cpu']} ({ident.get('vendor', '?')}, family {ident.get('family', '?')}"
             f", model {ident.get('model', '?')}); reluscope {m['reluscope']['version']} "
             f"(SIMD {m['reluscope']['selected_target']}, idle spin "
             f"{m['reluscope'].get('idle_spin_us', '?')} us); "
             f"numpy {m['numpy']} ({m['blas']}); torch {m['torch']}; Python {m['python']}; "
             f"{m['date']}; environment {m['env']}.",
             f"Measured FMA peak (bench/peak.py), GFLOP/s: {peaks}.", "",
             "| case | threads | SIMD | reluscope | numpy | torch | ours/numpy | ours/torch "
             "| ours, % of peak | extra |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["results"]:
        t = r["median_seconds"]
        ours, numpy_t, torch_t = t.get("reluscope"), t.get("numpy"), t.get("torch")
        width = "avx512" if r["target"] == "avx512" else "avx2"
        peak_g = peaks.get(width, {}).get(str(r["threads"]))
        pct = (f"{100 * r['work'] / ours / 1e9 / peak_g:.0f}%"
               if r["unit"] == "flop" and peak_g and ours else "")
        if r["unit"] == "samples":
            pct = f"{r['work'] / ours:,.0f} samples/s"
        extra = []
        if "reluscope (no monitor)" in t:
            extra.append(f"monitor on/off {ours / t['reluscope (no monitor)']:.3f}")
        if "torch + hooks" in t:
            extra.append(f"torch+hooks/torch {t['torch + hooks'] / t['torch']:.2f}, "
                         f"ours/torch+hooks {ours / t['torch + hooks']:.2f}")

        def ms(v):
            return f"{v * 1e3:.3f} ms" if v else "-"

        def ratio(a, b):
            return f"{a / b:.2f}" if a and b else "-"
        lines.append(f"| {r['case']} | {r['threads']} | {r['target']} | {ms(ours)} | "
                     f"{ms(numpy_t)} | {ms(torch_t)} | {ratio(ours, numpy_t)} | "
                     f"{ratio(ours, torch_t)} | {pct} | {'; '.join(extra)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
