"""compare-remedies: one setup that kills many units, run plain and with each remedy.

The setup is plain SGD at a learning rate where the lr-sweep finds a large
share of units dying (0.5 by default). Each remedy changes one thing:

- leaky ReLU (slope 0.01): a unit whose pre-activation is <= 0 on every sample
  still gets slope x gradient, so none is dead in the chain-rule sense; such
  units are counted, and called "inactive", never "dead";
- RAI init (Lu et al. 2020);
- ReDo recycling of dormant units (Sokar et al. 2023);
- gradient-norm clipping;
- linear learning-rate warmup.

A remedy with a run that diverged is reported as diverged: its statistics are
those of a last finite state, not of a trained network, so it is not ranked.
"""

from __future__ import annotations

import numpy as np

from .._validation import positive_int
from . import _arguments as check
from ._arguments import output_prefix
from ._common import result_header, write_outputs
from .sweep import sweep
from .training import train_trial

# name -> the train_trial arguments that differ from the plain run.
DEFAULT_REMEDIES = {
    "plain": {},
    "leaky ReLU": {"activation": "leaky_relu"},
    "RAI init": {"init": "rai"},
    "ReDo (every 100 steps)": {"redo_every": 100},
    "clip grad norm 1.0": {"clip_norm": 1.0},
    "warmup 100 steps": {"warmup_steps": 100},
}


def compare_remedies(lr: float = 0.5, seeds=(0, 1, 2), remedies=None, dataset: str = "auto",
                     hidden=(128, 128, 128), epochs: int = 10, batch_size: int = 32,
                     max_train: int | None = 4000, n_jobs: int = -1) -> dict:
    """Train every (remedy, seed) pair; returns per-remedy means and every trial."""
    remedies = dict(DEFAULT_REMEDIES if remedies is None else remedies)
    if not remedies:
        raise ValueError("remedies must name at least one remedy: {name: train_trial changes}")
    seeds = check.seeds(seeds)
    lr = check.learning_rate(lr)
    hidden = check.positive_ints(hidden, "hidden")
    epochs = positive_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    max_train = check.optional_positive_int(max_train, "max_train")
    n_jobs = check.n_jobs(n_jobs)
    fixed = {"lr": lr, "dataset": dataset, "hidden": tuple(hidden), "epochs": epochs,
             "batch_size": batch_size, "max_train": max_train}
    names = list(remedies)
    grid = [{**fixed, "seed": seed, **remedies[name]} for name in names for seed in seeds]
    trials = sweep(train_trial, grid, n_jobs=n_jobs)
    rows = []
    for i, name in enumerate(names):
        runs = trials[i * len(seeds):(i + 1) * len(seeds)]
        for trial in runs:
            trial["remedy"] = name
        # Curves: mean over the runs that finished every epoch (diverged ones are counted).
        finished = [t for t in runs if t["diverged"] is None] or runs
        # Accuracy over the runs that have one: a run whose last state overflows
        # float32 has none (NaN), and one such run made the whole mean NaN.
        accuracy = np.array([t["test_accuracy"] for t in runs], dtype=float)
        accuracy = accuracy[np.isfinite(accuracy)]
        epochs_run = min(len(t["train_loss"]) for t in finished)
        rows.append({
            "remedy": name, "changes": remedies[name],
            "activation": remedies[name].get("activation", "relu"),
            "runs": len(runs),
            "dead_fraction_final": float(np.mean([np.mean(t["dead_fraction_final"])
                                                  for t in runs])),
            "dead_fraction_final_by_layer": np.mean([t["dead_fraction_final"] for t in runs],
                                                    axis=0).tolist(),
            "test_accuracy": float(accuracy.mean()) if accuracy.size else float("nan"),
            "test_accuracy_min": float(accuracy.min()) if accuracy.size else float("nan"),
            "diverged": sum(t["diverged"] is not None for t in runs),
            "revivals": float(np.mean([t["revivals"] for t in runs])),
            "silent_units_get_gradient": any(t["silent_units_get_gradient"] for t in runs),
            "curves_from_runs": len(finished),
            "train_loss_mean": np.mean([t["train_loss"][:epochs_run] for t in finished],
                                       axis=0).tolist() if epochs_run else [],
            "dead_by_epoch_mean": np.mean([np.mean(t["dead_fraction_by_epoch"], axis=1)
                                           [:epochs_run + 1] for t in finished],
                                          axis=0).tolist(),
            "redo_recycled": (None if runs[0]["redo"] is None else
                              float(np.mean([t["redo"]["recycled"] for t in runs]))),
            "redo_stayed_alive": (None if runs[0]["redo"] is None else
                                  float(np.mean([t["redo"]["stayed_alive"] for t in runs]))),
        })
    parameters = {**fixed, "hidden": list(hidden), "seeds": seeds, "optimizer": "sgd",
                  "remedies": remedies, "dataset_used": trials[0]["dataset"],
                  "layer_sizes": trials[0]["layer_sizes"]}
    result = result_header("compare-remedies", parameters)
    result.update({"remedies": rows, "trials": trials, "findings": findings(rows)})
    return result


def unit_state(row: dict) -> str:
    """Return what a unit whose pre-activation is <= 0 on every sample is called in ``row``'s runs.

    "dead" only for ReLU, where such a unit gets exactly zero gradient; a leaky
    unit still gets slope x gradient and can recover, so it is "inactive".
    """
    return "dead" if row["activation"] == "relu" else "inactive"


def findings(rows: list) -> list[str]:
    """Return what the comparison found, in words; remedies with a diverged run are not ranked."""
    lines = []
    diverged = [r for r in rows if r["diverged"]]
    finished = [r for r in rows if not r["diverged"]]
    plain = next((r for r in rows if r["remedy"] == "plain"), None)
    baseline = ""
    if plain is not None and not plain["diverged"]:
        baseline = f" (plain: {100 * plain['dead_fraction_final']:.1f}% dead)"
    # Dead and inactive fractions measure different things (no gradient against
    # a reduced one), so only ReLU runs are ranked against each other.
    ranked = sorted((r for r in finished if r is not plain and unit_state(r) == "dead"),
                    key=lambda r: r["dead_fraction_final"])
    if ranked:
        lines.append("Fewest dead units after training, runs that all finished" + baseline
                     + ": " + "; ".join(f"{r['remedy']} {100 * r['dead_fraction_final']:.1f}% "
                                        f"(accuracy {100 * r['test_accuracy']:.1f}%)"
                                        for r in ranked) + ".")
    for row in finished:
        if unit_state(row) == "inactive":
            lines.append(f"{row['remedy']}: {100 * row['dead_fraction_final']:.1f}% of units "
                         "inactive after training (pre-activation <= 0 on every sample); "
                         "not dead: a leaky unit still gets slope x gradient.")
    for row in diverged:
        lines.append(f"{row['remedy']}: {row['diverged']}/{row['runs']} runs diverged; "
                     "reported as diverged, not ranked (a diverged run's numbers are of its "
                     "last finite state, not of a trained network).")
    if plain is not None and plain["diverged"]:
        lines.append("The plain run diverged: no remedy is measured against it.")
    return lines


def table(result: dict) -> str:
    """Format the remedies comparison as a text table, one row per remedy."""
    p = result["parameters"]
    lines = [(f"compare-remedies: {p['dataset_used']}, SGD lr={p['lr']}, {p['epochs']} "
              f"epochs, {len(p['seeds'])} seeds, layers {p['layer_sizes']} (means over seeds)"),
             (f"{'remedy':<24} {'dead after':>10} {'accuracy':>9} {'final loss':>10} "
              f"{'diverged':>8} {'revivals':>8}  note")]
    for row in result["remedies"]:
        note = ""
        if unit_state(row) == "inactive":
            note = "inactive, not dead" + (": they still got gradient (measured)"
                                           if row["silent_units_get_gradient"] else "")
        if row["redo_recycled"] is not None:
            note = (f"recycled {row['redo_recycled']:.0f}, "
                    f"{row['redo_stayed_alive']:.0f} stayed alive")
        # "-" where no run finished an epoch (a loss) or gives an accuracy.
        loss = f"{row['train_loss_mean'][-1]:>10.4g}" if row["train_loss_mean"] else f"{'-':>10}"
        if row["diverged"]:
            note = "; ".join(filter(None, ["DIVERGED, not ranked", note,
                                           "loss: mean of the runs that finished"]))
        accuracy = (f"{100 * row['test_accuracy']:>8.1f}%" if np.isfinite(row["test_accuracy"])
                    else f"{'-':>9}")
        lines.append(f"{row['remedy']:<24} {100 * row['dead_fraction_final']:>9.1f}% "
                     f"{accuracy} {loss} "
                     f"{row['diverged']:>5}/{len(p['seeds'])} {row['revivals']:>8.1f}  {note}")
    lines.append("dead: pre-activation <= 0 on every training sample (exact scan after the "
                 "last epoch). For ReLU such a unit gets exactly zero gradient; a leaky unit "
                 "still gets slope x gradient and can recover, so it is called inactive. "
                 "accuracy: mean of the runs whose last state gives one ('-': none).")
    return "\n".join(lines + ["", *result["findings"]])


def figure(result: dict):
    """Return the result as a matplotlib ``Figure`` (drawn in ``remedies_figure``)."""
    from .remedies_figure import figure as draw

    return draw(result)


def run(out_prefix: str, **kwargs) -> dict:
    """Run with ``kwargs``, write ``out_prefix``.json and .png, return the result."""
    out_prefix = output_prefix(out_prefix)
    result = compare_remedies(**kwargs)
    return write_outputs(result, figure(result), out_prefix)
