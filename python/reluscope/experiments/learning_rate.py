"""lr-sweep: the claim that large updates kill units, measured.

The same MLP, from the same init for each seed, trained with plain SGD over a
log grid of learning rates. For each run: the exact dead fraction per hidden
layer at init and after training (scans of the training set), the revivals,
the test accuracy, the death certificates; runs that diverge are marked and
kept. The figure and the summary show the relation as measured; nothing is
fitted to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import float32_hyperparameter, positive_int
from . import _arguments as check
from ._arguments import output_prefix
from ._common import result_header, write_outputs
from .sweep import sweep
from .training import train_trial

DEFAULT_LRS = tuple(float(v) for v in np.logspace(-3, 1, 13))  # 1e-3 .. 10, 3 per decade
DEFAULT_SEEDS = (0, 1, 2)


def lr_sweep(lrs=DEFAULT_LRS, seeds=DEFAULT_SEEDS, dataset: str = "auto",
             hidden=(128, 128, 128), epochs: int = 10, batch_size: int = 32,
             momentum: float = 0.0, max_train: int | None = 4000, n_jobs: int = -1) -> dict:
    """Train once per (learning rate, seed); returns the result dict (see ``summary``)."""
    lrs = check.learning_rates(lrs)
    seeds = check.seeds(seeds)
    hidden = check.positive_ints(hidden, "hidden")
    epochs = positive_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    momentum = float32_hyperparameter(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    max_train = check.optional_positive_int(max_train, "max_train")
    n_jobs = check.n_jobs(n_jobs)
    fixed = {"dataset": dataset, "hidden": tuple(hidden), "epochs": epochs,
             "batch_size": batch_size, "momentum": momentum, "max_train": max_train}
    grid = [{"lr": lr, "seed": seed, **fixed} for lr in lrs for seed in seeds]
    trials = sweep(train_trial, grid, n_jobs=n_jobs)
    parameters = {"lrs": lrs, "seeds": seeds, "optimizer": "sgd", "init": "he_normal",
                  **fixed, "hidden": list(hidden), "dataset_used": trials[0]["dataset"],
                  "layer_sizes": trials[0]["layer_sizes"]}
    result = result_header("lr-sweep", parameters)
    result["trials"] = trials
    result["by_lr"] = aggregate(trials, lrs)
    result["findings"] = findings(result["by_lr"])
    return result


def aggregate(trials: list, lrs: list) -> list:
    """Summarize the trials per learning rate.

    Mean, min and max over seeds of the whole-network and per-layer dead
    fractions, plus accuracy, revivals and diverged runs.
    """
    rows = []
    for lr in lrs:
        runs = [t for t in trials if t["lr"] == lr]
        final = np.array([t["dead_fraction_final"] for t in runs])
        init = np.array([t["dead_fraction_init"] for t in runs])
        accuracy = np.array([t["test_accuracy"] for t in runs], dtype=float)
        rows.append({
            "lr": lr,
            "dead_final_mean": final.mean(axis=0).tolist(),
            "dead_final_min": final.min(axis=0).tolist(),
            "dead_final_max": final.max(axis=0).tolist(),
            "dead_init_mean": init.mean(axis=0).tolist(),
            "dead_total_mean": float(final.mean()),
            "dead_init_total_mean": float(init.mean()),
            # NaN for runs whose final state overflows float32 (see train_trial).
            "accuracy_mean": (float(np.nanmean(accuracy)) if np.isfinite(accuracy).any()
                              else float("nan")),
            "revivals_mean": float(np.mean([t["revivals"] for t in runs])),
            "revivals_by_layer_mean": np.mean([t["revivals_by_layer"] for t in runs],
                                              axis=0).tolist(),
            "diverged": sum(t["diverged"] is not None for t in runs),
            "runs": len(runs),
        })
    return rows


def _regime(row: dict) -> str:
    extra = row["dead_total_mean"] - row["dead_init_total_mean"]
    if row["dead_total_mean"] >= 0.5:
        return "most of the network dies (>= 50% dead)"
    if extra > 0.02:
        return "units die during training (> 2 points above init)"
    return "the dead fraction stays within 2 points of init"


def findings(rows: list) -> list[str]:
    """Return what the sweep found, in words, read off the measured points (nothing fitted)."""
    lines = []
    init = np.mean([r["dead_init_total_mean"] for r in rows])
    lines.append(f"At init {100 * init:.1f}% of the hidden units are dead on the training set "
                 f"(the same init at every learning rate for a seed).")
    # The trend is read only off learning rates where some run finished: where every
    # run diverged, the statistics are of a last finite state, not of a trained
    # network, and a drop there is no finding about the learning rate.
    all_diverged = [r for r in rows if r["diverged"] == r["runs"]]
    finished = [r for r in rows if r["diverged"] < r["runs"]]
    total = np.array([r["dead_total_mean"] for r in finished])
    lrs = [r["lr"] for r in finished]
    # Consecutive learning rates in the same regime, described by what was measured.
    start = 0
    for i in range(1, len(finished) + 1):
        if i < len(finished) and _regime(finished[i]) == _regime(finished[start]):
            continue
        segment = finished[start:i]
        low, high = segment[0]["lr"], segment[-1]["lr"]
        span = f"lr {low:.3g}" if low == high else f"lr {low:.3g} to {high:.3g}"
        values = [100 * r["dead_total_mean"] for r in segment]
        worst = max(segment, key=lambda r: max(r["dead_final_mean"]))
        layer = int(np.argmax(worst["dead_final_mean"]))
        amount = (f"{values[0]:.1f}%" if len(values) == 1
                  else f"{min(values):.1f}% to {max(values):.1f}%")
        lines.append(f"{span}: {_regime(segment[0])}; {amount} "
                     f"of hidden units dead after training, the most in hidden layer {layer} "
                     f"({100 * worst['dead_final_mean'][layer]:.1f}% at lr {worst['lr']:.3g}).")
        start = i
    falls = np.flatnonzero(np.diff(total) < -0.02)
    if len(falls):
        lines.append("The relation is not monotonic: the dead fraction falls from lr "
                     + ", ".join(f"{lrs[i]:.3g} to {lrs[i + 1]:.3g}" for i in falls) + ".")
    if all_diverged:
        lines.append("Every run diverged at lr "
                     + ", ".join(f"{r['lr']:.3g}" for r in all_diverged)
                     + ": left out of the statements above (shaded in the figure).")
    revived = max(rows, key=lambda r: r["revivals_mean"])
    if revived["revivals_mean"] > 0:
        by_layer = ", ".join(f"layer {i}: {v:.1f}"
                             for i, v in enumerate(revived["revivals_by_layer_mean"]))
        lines.append(f"Dead units came back most at lr {revived['lr']:.3g}: "
                     f"{revived['revivals_mean']:.1f} revivals per run ({by_layer}).")
    diverged = [r for r in rows if r["diverged"]]
    if diverged:
        lines.append("Runs that diverged (kept, marked, statistics of their last finite "
                     "state): " + ", ".join(f"lr {r['lr']:.3g}: {r['diverged']}/{r['runs']}"
                                            for r in diverged) + ".")
    scored = [r for r in finished if np.isfinite(r["accuracy_mean"])]
    if scored:
        best = max(scored, key=lambda r: r["accuracy_mean"])
        lines.append(f"Best mean test accuracy {100 * best['accuracy_mean']:.1f}% at lr "
                     f"{best['lr']:.3g}.")
    return lines


def table(result: dict) -> str:
    """Format the lr sweep's result as a text table, one row per learning rate."""
    lines = [f"lr-sweep: {result['parameters']['dataset_used']}, SGD, "
             f"{len(result['parameters']['seeds'])} seeds, {result['parameters']['epochs']} epochs,"
             f" layers {result['parameters']['layer_sizes']}",
             f"{'lr':>8} {'dead@init':>9} {'dead after (per layer, mean of seeds)':>38} "
             f"{'revivals':>8} {'accuracy':>8} {'diverged':>8}"]
    for row in result["by_lr"]:
        per_layer = " ".join(f"{100 * v:5.1f}%" for v in row["dead_final_mean"])
        lines.append(f"{row['lr']:>8.3g} {100 * row['dead_init_total_mean']:>8.1f}% "
                     f"{per_layer:>38} {row['revivals_mean']:>8.1f} "
                     f"{100 * row['accuracy_mean']:>7.1f}% {row['diverged']:>5}/{row['runs']}")
    return "\n".join(lines + ["", *result["findings"]])


def figure(result: dict) -> Any:
    """Draw the lr sweep's result: dead units at init and after training, per lr."""
    from ..html_report import figure_class

    Figure = figure_class()
    rows = result["by_lr"]
    lrs = np.array([r["lr"] for r in rows])
    fig = Figure(figsize=(8, 7))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for i in range(len(rows[0]["dead_final_mean"])):
        mean = np.array([r["dead_final_mean"][i] for r in rows])
        low = np.array([r["dead_final_min"][i] for r in rows])
        high = np.array([r["dead_final_max"][i] for r in rows])
        top.plot(lrs, 100 * mean, marker="o", color=f"C{i}", label=f"hidden layer {i}")
        top.fill_between(lrs, 100 * low, 100 * high, color=f"C{i}", alpha=0.2, linewidth=0)
        top.plot(lrs, [100 * r["dead_init_mean"][i] for r in rows], color=f"C{i}",
                 linestyle=":", linewidth=1)
    for trial in result["trials"]:
        if trial["diverged"] is not None:
            top.plot(trial["lr"], 100 * np.mean(trial["dead_fraction_final"]), "kx",
                     markersize=8)
    # Where every run diverged, shade the learning rate's share of the log axis (half
    # way, in log, to each neighbour): nothing there is a trained network.
    half_step = np.sqrt(lrs[1] / lrs[0]) if len(lrs) > 1 else 2.0
    edges = np.concatenate([[lrs[0] / half_step], np.sqrt(lrs[1:] * lrs[:-1]),
                            [lrs[-1] * half_step]])
    shaded = [i for i, r in enumerate(rows) if r["diverged"] == r["runs"]]
    for axis in (top, bottom):
        for i in shaded:
            axis.axvspan(edges[i], edges[i + 1], color="0.85", zorder=0, linewidth=0)
    if shaded:
        top.fill_between([], [], color="0.85", label="every run diverged")
    top.plot([], [], "kx", label="diverged run (kept)")
    top.plot([], [], color="gray", linestyle=":", label="at init")
    top.set_ylabel("dead units after training (%)")
    top.set_title("Dead fraction against the learning rate (band: min-max over seeds)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(lrs, [100 * r["accuracy_mean"] for r in rows], marker="o", color="k",
                label="test accuracy")
    bottom.set_ylabel("test accuracy (%)")
    twin = bottom.twinx()
    twin.bar(lrs, [r["revivals_mean"] for r in rows], width=lrs * 0.25, alpha=0.3,
             color="C3", label="revivals per run")
    twin.set_ylabel("revivals per run")
    bottom.set_xscale("log")
    bottom.set_xlabel("learning rate (SGD)")
    bottom.grid(alpha=0.3)
    lines, labels = bottom.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    bottom.legend(lines + more, labels + more_labels, fontsize=8, loc="center left")
    return fig


def run(out_prefix: str, **kwargs) -> dict:
    """Run with ``kwargs``, write ``out_prefix``.json and .png, return the result."""
    out_prefix = output_prefix(out_prefix)
    result = lr_sweep(**kwargs)
    return write_outputs(result, figure(result), out_prefix)
