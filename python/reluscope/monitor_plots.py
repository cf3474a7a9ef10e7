"""The plots of the monitor report.

One row per kind of plot, one figure per run in the row, every figure of a row
drawn on the same axes (epochs, units, value ranges and counts) so that runs
side by side compare at a glance.

Dead units are red in every plot that shows units (``plotting.DEAD_COLOUR``); units
that fire rarely keep the low end of viridis, which has no red.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plotting import (
    ALIVE_COLOUR,
    DEAD_COLOUR,
    EARLIER_COLOUR,
    figure_class,
    margin_histogram,
    page_fonts,
    page_png,
)

# Inches: 576 pixels at plotting.PAGE_DPI, one column of the page per run.
FIGURE_WIDTH = 6.0
LAYER_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]


@dataclass(frozen=True)
class PlotRow:
    """One kind of plot: its caption and, per run, (base64 PNG, width, height)."""

    caption: str
    images: list


def plot_rows(monitors) -> list[PlotRow]:
    """Return the report's plots of ``monitors`` (each with at least one scan), a row per kind."""
    figure_cls = figure_class()
    shared = SharedAxes(monitors)
    if not shared.widths:
        return []  # no hidden layer in any run: nothing to draw per layer
    with page_fonts():
        return [
            PlotRow("Dead units per hidden layer, by epoch (red: dead; the same axes in "
                    "every column)", _draw(monitors, shared, figure_cls, _dead_by_epoch, 2.6)),
            PlotRow("Firing rate of every unit, by epoch: viridis from rarely (dark) to "
                    "always (yellow) firing; red: dead (fires on no sample). Units sorted "
                    "by their latest firing rate",
                    _draw(monitors, shared, figure_cls, _firing_rates, 3.1)),
            PlotRow("Pre-activations (before the ReLU) of the first 512 samples, at the first "
                    "scan (grey outline) and the latest (blue); 0 dashed: a value below it "
                    "does not fire. The few values beyond the axis are counted in its end bins",
                    _draw(monitors, shared, figure_cls, _pre_activations, 2.6)),
            PlotRow("Margin of each unit at the latest scan: its largest pre-activation over "
                    "the scanned samples; a unit is dead (red) when its margin is \u2264 0 "
                    "(dashed). The few margins beyond the axis are counted in its end bins",
                    _draw(monitors, shared, figure_cls, _margins, 2.6)),
        ]


def _draw(monitors, shared, figure_cls, draw, height: float) -> list:
    """Call ``draw(monitor, figure, shared)`` for each monitor.

    Each figure is ``height`` inches tall; ``shared`` holds the limits of all.
    """
    images = []
    for monitor in monitors:
        figure = figure_cls(figsize=(FIGURE_WIDTH, height), layout="constrained")
        draw(monitor, figure, shared)
        images.append(page_png(figure))
    return images


class SharedAxes:
    """The limits every run's figure of one kind is drawn on, from all runs together.

    Attributes
    ----------
    epochs : (int, int)
        The first and the latest scan's epoch over all runs.
    widths : list of int
        Per hidden layer position, the widest layer there.
    pre_bins, margin_bins : list of ndarray
        Per hidden layer position, the histogram bin edges of the pre-activation
        samples (first and latest scan) and of the latest margins; both span 0.
    pre_counts, margin_counts : list of int
        Per hidden layer position, the tallest bin of any run: the top of the y-axis.
    """

    def __init__(self, monitors):
        self.epochs = (min(m.epochs[0] for m in monitors), max(m.epochs[-1] for m in monitors))
        n_layers = max(len(m.reports[-1].layers) for m in monitors)
        self.widths = [max(_width(m, i) for m in monitors) for i in range(n_layers)]
        self.pre_bins = [_value_bins([s[i] for m in monitors for s in _pre_samples(m)
                                      if i < len(s)]) for i in range(n_layers)]
        self.margin_bins = [_value_bins([m.reports[-1].layers[i].max_pre_activation
                                         for m in monitors if i < len(m.reports[-1].layers)],
                                        tail=0.01) for i in range(n_layers)]
        self.pre_counts = [max((_max_count(s[i], self.pre_bins[i]) for m in monitors
                                for s in _pre_samples(m) if i < len(s)), default=1)
                           for i in range(n_layers)]
        self.margin_counts = [max((_max_count(m.reports[-1].layers[i].max_pre_activation,
                                              self.margin_bins[i]) for m in monitors
                                   if i < len(m.reports[-1].layers)), default=1)
                              for i in range(n_layers)]

    def epoch_limits(self) -> tuple[float, float]:
        """Return the epoch axis's limits, half an epoch beyond the first and the last."""
        low, high = self.epochs
        return low - 0.5, high + 0.5


def _width(monitor, layer: int) -> int:
    layers = monitor.reports[-1].layers
    return layers[layer].n_units if layer < len(layers) else 0


def _pre_samples(monitor) -> list:
    """Return the first and the latest scan's pre-activation samples, those the monitor has."""
    samples = monitor.activation_samples
    return [samples[key] for key in ("first", "latest") if key in samples]


def _value_bins(samples, n_bins: int = 40, tail: float = 0.001) -> np.ndarray:
    """Bin edges from the ``tail`` to the 1 - ``tail`` quantile of the pooled values, and 0.

    Not the full range: a few outliers (a run that blew up) would squeeze every
    other value into a bin or two. The values outside are counted in the end
    bins (``_clipped``).
    """
    values = np.concatenate([np.ravel(s) for s in samples]) if samples else np.zeros(0)
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:
        return np.linspace(-1.0, 1.0, n_bins + 1)
    low, high = np.quantile(values, [tail, 1.0 - tail])
    low, high = min(0.0, float(low)), max(0.0, float(high))
    if high - low == 0.0:
        low, high = low - 1.0, high + 1.0
    return np.linspace(low, high, n_bins + 1)


def _clipped(values, bins) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.clip(values[np.isfinite(values)], bins[0], bins[-1])


def _max_count(values, bins) -> int:
    counts, _ = np.histogram(_clipped(values, bins), bins=bins)
    return int(counts.max(initial=1))


def _layer_axes(monitor, figure, shared):
    """One panel per hidden layer position of all runs; a layer this run lacks is blank."""
    axes = figure.subplots(1, len(shared.widths), squeeze=False)[0]
    layers = monitor.reports[-1].layers
    for ax in axes[len(layers):]:
        ax.set_axis_off()
    return list(zip(axes, layers))


def _dead_by_epoch(monitor, figure, shared) -> None:
    from matplotlib.ticker import MaxNLocator

    ax = figure.subplots()
    for i, layer in enumerate(monitor.reports[-1].layers):
        line, marker = LAYER_STYLES[i % len(LAYER_STYLES)]
        fractions = [report.layers[i].dead_fraction for report in monitor.reports]
        ax.plot(monitor.epochs, fractions, color=DEAD_COLOUR, linestyle=line, marker=marker,
                markersize=4, label=f"layer {layer.label}")
    ax.set_xlim(*shared.epoch_limits())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch (0: before training)")
    ax.set_ylabel("dead units (share of layer)")
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower right", ncols=4)



def _firing_rates(monitor, figure, shared) -> None:
    import matplotlib
    from matplotlib.patches import Patch

    colours = matplotlib.colormaps["viridis"].with_extremes(bad=DEAD_COLOUR)
    epochs = np.asarray(monitor.epochs, dtype=np.float64)
    # Cell edges halfway between scans, so that uneven scan epochs keep their places.
    middles = (epochs[1:] + epochs[:-1]) / 2
    edges = np.concatenate([[epochs[0] - 0.5], middles, [epochs[-1] + 0.5]])
    image = None
    for column, (ax, layer) in enumerate(_layer_axes(monitor, figure, shared)):
        rates = np.array([r.layers[layer.index].firing_rate for r in monitor.reports]).T
        order = np.lexsort((-rates.mean(axis=1), -rates[:, -1]))  # dead ones at the bottom
        rates = rates[order]
        image = ax.pcolormesh(edges, np.arange(rates.shape[0] + 1),
                              np.ma.masked_where(rates == 0, rates), cmap=colours,
                              vmin=0.0, vmax=1.0)
        ax.set_xlim(*shared.epoch_limits())
        ax.set_ylim(shared.widths[column], 0)
        ax.set_title(f"layer {layer.label}")
        ax.set_xlabel("epoch")
    figure.axes[0].set_ylabel("unit")
    if image is not None:
        figure.colorbar(image, ax=figure.axes, label="firing rate", fraction=0.05, pad=0.02)
    figure.legend(handles=[Patch(color=DEAD_COLOUR, label="dead: fires on no sample")],
                  loc="outside lower right")



def _pre_activations(monitor, figure, shared) -> None:
    from matplotlib.ticker import MaxNLocator

    samples = _pre_samples(monitor)
    for column, (ax, layer) in enumerate(_layer_axes(monitor, figure, shared)):
        bins = shared.pre_bins[column]
        # A history restored without samples draws empty panels, not an error.
        none = np.zeros(0, dtype=np.float32)
        first = samples[0][layer.index] if samples else none
        latest = samples[-1][layer.index] if samples else none
        # The latest filled, the first as an outline drawn over it.
        ax.hist(_clipped(latest, bins), bins=bins, color=ALIVE_COLOUR, alpha=0.7,
                label=f"epoch {monitor.epochs[-1]}", zorder=1)
        ax.hist(_clipped(first, bins), bins=bins, histtype="step", color=EARLIER_COLOUR,
                linewidth=1.5, label=f"epoch {monitor.epochs[0]}", zorder=2)
        ax.axvline(0.0, color="k", linestyle="--", linewidth=1)
        if np.size(first) or np.size(latest):
            ax.set_yscale("log")
            ax.set_ylim(0.8, shared.pre_counts[column] * 1.5)
        below = 100 * float(np.mean(np.asarray(latest) <= 0)) if np.size(latest) else 0.0
        ax.set_title(f"layer {layer.label}: {below:.0f}% \u2264 0")
        ax.set_xlabel("pre-activation")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    figure.axes[0].set_ylabel("values")
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles[::-1], labels[::-1], loc="outside lower right", ncols=2)



def _margins(monitor, figure, shared) -> None:
    from matplotlib.ticker import MaxNLocator

    for column, (ax, layer) in enumerate(_layer_axes(monitor, figure, shared)):
        margins = np.asarray(layer.max_pre_activation, dtype=np.float64)
        bins = shared.margin_bins[column]
        margin_histogram(ax, np.clip(margins, bins[0], bins[-1]), layer.firing_counts == 0, bins)
        ax.set_ylim(0, shared.margin_counts[column] * 1.08)
        ax.set_title(f"layer {layer.label}: {layer.n_dead} dead")
        ax.set_xlabel("margin")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    figure.axes[0].set_ylabel("units")
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside lower right",
                  ncols=3)

