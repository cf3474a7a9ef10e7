"""The self-contained HTML report of a DeadUnitMonitor: plots as inline PNG,
tables as HTML, no file beside it and nothing fetched when it is opened."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from ._files import write_text

PLOT_EXTRA_HINT = "plots need matplotlib: pip install 'reluscope[plot]'"


def figure_class():
    """``matplotlib.figure.Figure``, or an ImportError naming the extra to install.

    Every plot of reluscope is a ``Figure`` built and saved through matplotlib's
    object API: pyplot is never imported and the backend never chosen, so a
    notebook's backend and its list of open figures stay as they were. Such a
    figure is not registered anywhere: it is freed like any other object.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(PLOT_EXTRA_HINT) from None
    return Figure


def png_base64(figure) -> str:
    """The figure as a PNG, base64-encoded for a ``data:image/png;base64,`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(monitor, figure_cls) -> list[tuple[str, str]]:
    """(caption, base64 PNG) pairs."""
    n_layers = len(monitor.reports[0].layers)
    labels = [layer.label for layer in monitor.reports[-1].layers]  # index, or module path
    figures = []

    fig = figure_cls(figsize=(7, 3.5))
    ax = fig.subplots()
    for layer in range(n_layers):
        fractions = [r.layers[layer].dead_fraction for r in monitor.reports]
        ax.plot(monitor.steps, fractions, marker="o", label=f"layer {labels[layer]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("dead fraction (exact scan)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    figures.append(("Dead fraction per hidden layer at each scan", png_base64(fig)))

    fig = figure_cls(figsize=(3.4 * n_layers, 3.5))
    axes = fig.subplots(1, n_layers, squeeze=False)
    for layer, ax in enumerate(axes[0]):
        rates = np.array([r.layers[layer].firing_rate for r in monitor.reports]).T
        order = np.argsort(-rates[:, 0], kind="stable")
        image = ax.imshow(rates[order], aspect="auto", vmin=0, vmax=1, cmap="viridis",
                          interpolation="nearest")
        ax.set_title(f"layer {labels[layer]}")
        ax.set_xlabel("scan")
    axes[0][0].set_ylabel("unit (sorted by initial firing rate)")
    fig.colorbar(image, ax=axes[0].tolist(), label="firing rate")
    figures.append(("Per-unit firing rate over the scans", png_base64(fig)))

    first, latest = monitor.activation_samples["first"], monitor.activation_samples["latest"]
    fig = figure_cls(figsize=(3.2 * n_layers, 3.2))
    axes = fig.subplots(1, n_layers, squeeze=False)
    for layer, ax in enumerate(axes[0]):
        top = max(float(first[layer].max(initial=0)), float(latest[layer].max(initial=0)), 1e-6)
        bins = np.linspace(min(0.0, float(first[layer].min(initial=0)),
                               float(latest[layer].min(initial=0))), top, 40)
        ax.hist(first[layer], bins=bins, alpha=0.6, label=f"epoch {monitor.epochs[0]}")
        ax.hist(latest[layer], bins=bins, alpha=0.6, label=f"epoch {monitor.epochs[-1]}")
        ax.set_yscale("log")
        ax.set_title(f"layer {labels[layer]}")
        ax.set_xlabel("activation")
    axes[0][0].legend()
    figures.append(("Distribution of activations at the first and latest scan", png_base64(fig)))
    return figures


_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var ascending = th.dataset.order !== 'asc';
    th.dataset.order = ascending ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent, y = b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""

CERTIFICATE_COLUMNS = [
    ("cause", "cause"), ("layer", "layer"), ("unit", "unit"),
    ("confirmed_by_scan_after_epoch", "scan (epoch)"), ("last_fired_step", "last fired (step)"),
    ("lr", "lr"), ("update_norm", "||dw||"), ("layer_median_update_norm", "median ||dw||"),
    ("bias_update", "db"), ("layer_median_bias_update", "median |db|"),
    ("relative_update", "||dw||/||w||"), ("layer_median_relative_update", "median rel."),
]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def certificate_table(certificates) -> str:
    """The certificates as a sortable HTML table, sorted by cause."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in CERTIFICATE_COLUMNS)
    rows = []
    for c in sorted(certificates, key=lambda c: (c.cause, c.layer, c.unit)):
        rows.append("<tr>" + "".join(f"<td>{_cell(getattr(c, key))}</td>"
                                     for key, _ in CERTIFICATE_COLUMNS) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _section(title: str, monitor, figure_cls) -> str:
    if not monitor.reports:
        raise ValueError("the monitor has no scans yet; train with it first")
    images = "".join(
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, data in _figures(monitor, figure_cls))
    return f"""<section>
<h2>{html.escape(title)}</h2>
<p>Dead: the unit's pre-activation is &le; 0 on every one of the {monitor.history.n_samples} scanned
samples (exact scan between epochs). Dormant: ReDo score &le; 0.025. Silent: no firing on the
epoch's training batches.</p>
<pre>{html.escape(monitor.layer_table())}</pre>
{images}
<h3>Death certificates ({len(monitor.certificates)})</h3>
<p>Click a column to sort. The killing update is the one made right after the unit last fired
on its training batch.</p>
{certificate_table(monitor.certificates)}
</section>"""


def write_report(sections, path) -> str:
    """Write one page with a section per (title, DeadUnitMonitor) pair; return the path."""
    figure_cls = figure_class()
    body = "\n".join(_section(title, monitor, figure_cls) for title, monitor in sections)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reluscope report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
pre {{ background: #f5f5f5; padding: 1em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
th {{ cursor: pointer; background: #eee; }}
figure {{ display: inline-block; margin: 1em; }}
</style></head><body>
<h1>reluscope: dead ReLU units</h1>
{body}
<script>{_SORT_SCRIPT}</script>
</body></html>
"""
    return write_text(path, page)


def write_monitor_report(monitor, path) -> str:
    return write_report([("Training run", monitor)], path)
