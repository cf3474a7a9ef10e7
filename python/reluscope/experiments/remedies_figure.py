"""The compare-remedies figure: bars after training, loss and dead units by epoch.

Apart from the experiment so that rendering lives apart from the data. Two
things the figure must never blur: a remedy whose runs diverged (its numbers are
of a last finite state) is hatched and labelled "diverged", and a leaky unit
whose pre-activation is <= 0 everywhere is "inactive", not "dead".
"""

from __future__ import annotations

import numpy as np

from .remedies import unit_state

FONT = 10  # points; at the saved 110 dpi, 15 pixels: legible at 1x zoom
DIVERGED_HATCH = "//"
COLORS = {"dead": "C3", "inactive": "C1", "accuracy": "C0"}


def _notes(row: dict) -> str:
    """Return what a reader must know before comparing ``row`` with the others, or ""."""
    notes = []
    if unit_state(row) == "inactive":
        notes.append("inactive, not dead")
    if row["diverged"]:
        notes.append(f"diverged {row['diverged']}/{row['runs']}")
    return f"({'; '.join(notes)})" if notes else ""


def _bars(ax, rows: list, handles: list) -> None:
    """Per remedy: dead (or inactive) units after training and test accuracy, in %."""
    from matplotlib.patches import Patch

    y = np.arange(len(rows))
    for i, row in enumerate(rows):
        hatch = DIVERGED_HATCH if row["diverged"] else None
        state = unit_state(row)
        ax.barh(i - 0.2, 100 * row["dead_fraction_final"], height=0.4, color=COLORS[state],
                hatch=hatch, edgecolor="black" if hatch else COLORS[state])
        accuracy = row["test_accuracy"]
        if np.isfinite(accuracy):
            ax.barh(i + 0.2, 100 * accuracy, height=0.4, color=COLORS["accuracy"],
                    hatch=hatch, edgecolor="black" if hatch else COLORS["accuracy"])
        else:
            ax.text(1, i + 0.2, "no test accuracy: every run's last state overflows", va="center",
                    fontsize=FONT - 1)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{row['remedy']}\n{_notes(row)}".strip() for row in rows])
    for label, row in zip(ax.get_yticklabels(), rows):
        if row["diverged"]:
            label.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of hidden units (dead or inactive) or of test samples (accuracy)")
    states = {unit_state(row) for row in rows}
    if "dead" in states:
        handles.append(Patch(color=COLORS["dead"], label="dead after training (ReLU)"))
    if "inactive" in states:
        handles.append(Patch(color=COLORS["inactive"], label="inactive after training "
                             "(leaky: not dead, still gets gradient)"))
    handles.append(Patch(color=COLORS["accuracy"], label="test accuracy"))
    if any(row["diverged"] for row in rows):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=DIVERGED_HATCH,
                             label="hatched: runs diverged; numbers of their last finite "
                                   "state, not ranked"))


def _curves(loss, dead, rows: list) -> None:
    """Training loss and dead (or inactive) units by epoch, one colour per remedy."""
    from matplotlib.ticker import MaxNLocator

    for i, row in enumerate(rows):
        state = unit_state(row)
        label = f"{row['remedy']} {_notes(row)}".strip()
        every_run_diverged = row["diverged"] == row["runs"]
        style = {"color": f"C{i}", "label": label,
                 "linestyle": ":" if every_run_diverged else
                 ("--" if state == "inactive" else "-")}
        curve = row["train_loss_mean"]
        loss.plot(range(1, len(curve) + 1), curve, **style)
        fractions = 100 * np.asarray(row["dead_by_epoch_mean"])
        dead.plot(range(len(fractions)), fractions, marker=".", **style)
        if every_run_diverged:
            # The curve stops where the runs diverged. A partly diverged remedy's
            # curve is the mean of the runs that finished: its label says so.
            dead.plot(len(fractions) - 1, fractions[-1], "x", color="black", markersize=10,
                      markeredgewidth=2)
    loss.set_yscale("log")
    loss.set_xlabel("epoch")
    loss.set_ylabel("training loss (log scale)")
    dead.set_xlabel("epoch (0 = init)")
    dead.set_ylabel("hidden units (%)")
    dead.set_ylim(-2, 102)
    for ax in (loss, dead):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if any(row["diverged"] == row["runs"] for row in rows):
        dead.plot([], [], "x", color="black", markersize=10, markeredgewidth=2,
                  label="x: every run of the remedy had diverged by then")


def figure(result: dict):
    """Three panels with titles above a row of legends, so that no legend covers data."""
    from ..html_report import figure_class

    Figure = figure_class()
    rows = result["remedies"]
    p = result["parameters"]
    fig = Figure(figsize=(16, 7), layout="constrained")
    # The legends get a row of their own, so that none can cover a bar or a curve.
    grid = fig.add_gridspec(2, 3, width_ratios=[1.15, 1, 1], height_ratios=[5, 1.3])
    bars, loss, dead = (fig.add_subplot(grid[0, i]) for i in range(3))
    bars_key, curves_key = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1:])
    handles: list = []
    _bars(bars, rows, handles)
    _curves(loss, dead, rows)
    words = "dead or inactive" if {unit_state(r) for r in rows} == {"dead", "inactive"} \
        else unit_state(rows[0])
    bars.set_title(f"After training: {words} units and test accuracy", fontsize=FONT + 1)
    loss.set_title("Training loss (mean of the runs that finished)", fontsize=FONT + 1)
    dead.set_title(f"{words.capitalize()} hidden units by epoch", fontsize=FONT + 1)
    fig.suptitle(f"compare-remedies: {p['dataset_used']}, SGD lr={p['lr']}, {p['epochs']} "
                 f"epochs, mean of {len(p['seeds'])} seed(s) per remedy", fontsize=FONT + 2)
    for ax in (bars, loss, dead):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=FONT)
        ax.xaxis.label.set_fontsize(FONT)
        ax.yaxis.label.set_fontsize(FONT)
    bars_key.legend(handles=handles, loc="upper center", fontsize=FONT - 1, frameon=False)
    # One legend of remedies for both curve panels.
    curves_key.legend(*dead.get_legend_handles_labels(), loc="upper center", ncol=2,
                      fontsize=FONT - 1, frameon=False, title_fontsize=FONT - 1,
                      title="dead: pre-activation <= 0 on every training sample, so a ReLU "
                            "unit gets no gradient")
    for key in (bars_key, curves_key):
        key.axis("off")
    return fig
