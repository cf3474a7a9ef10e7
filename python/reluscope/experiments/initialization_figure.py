"""The init-study figure: std per layer, then one row of violins per init.

Apart from the experiment so that rendering lives apart from the data. The
rows share one value axis, so that a row can be compared with the next by eye:
the outputs span 0.001 to over 100 across inits, so the axis is asinh, linear
within LINEAR_WIDTH of 0 and logarithmic beyond (a linear axis flattened every
row but the exploding one; a log axis cannot show the linear layer's negatives).
"""

from __future__ import annotations

import numpy as np

FONT = 10  # points; at the saved 110 dpi, 15 pixels: legible at 1x zoom
# 0.01: the shrinking inits' last layers (std about 0.06) still get room; wider
# crowded the ticks at 0 and +-0.1 onto one another.
LINEAR_WIDTH = 0.01
# Labelled ticks two decades apart (one apart were 12 pixels, unreadable at 9 pt);
# the decades between get unlabelled ticks.
TICK_VALUES = (-1000, -10, -0.1, 0, 0.1, 10, 1000)
MINOR_TICK_VALUES = (-100, -1, 1, 100)


def asinh_scaled(values):
    """Return output ``values`` as placed on the violins' shared (asinh) axis."""
    return np.arcsinh(np.asarray(values, dtype=np.float64) / LINEAR_WIDTH)


def _std_panel(ax, rows: list) -> None:
    for i, row in enumerate(rows):
        stds = [layer["std"] for layer in row["layers"]]
        ax.semilogy(range(len(stds)), stds, marker="o", color=f"C{i}", label=row["label"])
    ax.set_xlabel("layer (0 = linear)", fontsize=FONT)
    ax.set_ylabel("std of the outputs", fontsize=FONT)
    ax.set_title("Signal through the layers after one forward pass: shrinking, holding, "
                 "exploding", fontsize=FONT + 1)
    ax.tick_params(labelsize=FONT)
    ax.set_xticks(range(len(rows[0]["layers"])))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=FONT - 1, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="init", title_fontsize=FONT - 1)


def _violin_row(ax, row: dict, picked: list, color: str) -> None:
    """One init: the non-zero outputs of each layer; above each, the zero share and dead units."""
    nonzero = [asinh_scaled(values[values != 0.0]) for values in picked]
    filled = [j for j, values in enumerate(nonzero) if values.size]
    if filled:
        parts = ax.violinplot([nonzero[j] for j in filled], positions=filled,
                              showextrema=False, widths=0.8)
        for body in parts["bodies"]:
            body.set_facecolor(color)  # the init's colour in the std panel
            body.set_alpha(0.5)
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    for j, layer in enumerate(row["layers"]):
        text = f"{100 * layer['zero_fraction']:.0f}% zero"
        if layer["dead_units"]:
            text += f", {layer['dead_units']} dead"
        ax.text(j, 1.0, text, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=FONT - 1)
    ax.set_ylabel(row["label"], fontsize=FONT, rotation=0, ha="right", va="center")
    ax.tick_params(labelsize=FONT - 1)
    ax.grid(axis="y", alpha=0.3)


def figure(result: dict, samples: dict):
    """Draw the init study: the std per layer, then the violins of the outputs.

    Top: std per layer (log scale), one line per init. Below: violins, one row
    per init, every row on the same value axis and the same layer axis.
    """
    from matplotlib.ticker import FixedFormatter, FixedLocator

    from ..html_report import figure_class

    Figure = figure_class()
    rows = result["inits"]
    fig = Figure(figsize=(11, 3.6 + 1.4 * len(rows)), layout="constrained")
    grid = fig.add_gridspec(len(rows) + 1, 1, height_ratios=[3.2] + [1.4] * len(rows))
    _std_panel(fig.add_subplot(grid[0]), rows)
    first = None
    for i, row in enumerate(rows):
        ax = fig.add_subplot(grid[i + 1], sharex=first, sharey=first)
        first = first or ax
        _violin_row(ax, row, samples[row["label"]], f"C{i}")
        if i < len(rows) - 1:
            ax.tick_params(labelbottom=False)
    n_layers = len(rows[0]["layers"])
    assert first is not None  # rows is not empty (rows[0] above)
    first.set_xticks(range(n_layers))
    first.set_xticklabels(["linear"] + [f"ReLU {j}" for j in range(1, n_layers)])
    first.set_xlim(-0.5, n_layers - 0.5)
    # Shared axis: ticks at round output values, placed where asinh puts them.
    first.yaxis.set_major_locator(FixedLocator(asinh_scaled(TICK_VALUES)))
    first.yaxis.set_major_formatter(FixedFormatter([f"{v:g}" for v in TICK_VALUES]))
    first.yaxis.set_minor_locator(FixedLocator(asinh_scaled(MINOR_TICK_VALUES)))
    first.set_title("Outputs that are not exactly 0, per layer (one shared asinh scale: linear "
                    f"within {LINEAR_WIDTH:g} of 0, logarithmic beyond)\nabove each violin: the "
                    "share of outputs exactly 0 and the dead units (fire on no sample)",
                    fontsize=FONT, pad=FONT + 8)
    return fig
