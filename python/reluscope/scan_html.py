"""A ScanReport as a self-contained HTML page.

The summary, the table, and per hidden layer the dead units and the
distribution of margins, with 0 marked.

Rendering lives here, apart from ``scan.py``'s data. The plots are drawn with
matplotlib when it is installed (imported here, when a page is asked for) and
embedded as PNG data URIs; without it the page has everything but the plots, and
says which extra to install.
"""

from __future__ import annotations

import html

import numpy as np

from ._files import write_text
from .plotting import (
    ALIVE_COLOUR,
    DEAD_COLOUR,
    PLOT_EXTRA_HINT,
    figure_class,
    margin_bins,
    margin_histogram,
    png_base64,
)


def scan_page(report, title: str) -> str:
    """Return the page of one scan: a title, the summary, the table, then a section per layer."""
    try:
        figure_cls = figure_class()
    except ImportError:
        figure_cls = None
    plots_note = "" if figure_cls is not None else (
        f'<p class="note">No plots on this page: {html.escape(PLOT_EXTRA_HINT)}.</p>')
    rows = "".join(
        f"<tr><td>{html.escape(layer.label)}</td><td>{layer.n_units}</td>"
        f"<td>{layer.n_dead}</td><td>{100 * layer.dead_fraction:.1f}%</td>"
        f"<td class=\"units\">{_unit_list(layer.dead_units)}</td></tr>"
        for layer in report.layers)
    sections = "\n".join(_layer_section(layer, figure_cls) for layer in report.layers)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reluscope scan: {html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
pre {{ background: #f5f5f5; padding: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
td.units {{ text-align: left; }}
th {{ background: #eee; }}
figure {{ margin: 1em 0; }}
.dead {{ color: {DEAD_COLOUR}; }}
.note {{ background: #fff3cd; padding: 0.5em; }}
</style></head><body>
<h1>reluscope scan: {html.escape(title)}</h1>
<p><strong>{report.n_dead} of {report.n_units} hidden units dead
({100 * report.dead_fraction:.1f}%)</strong> over {report.n_samples} samples. A unit is dead
when its pre-activation is &le; 0 on every sample: when its margin, its largest
pre-activation over the samples, is &le; 0.</p>
{plots_note}
<pre>{html.escape(str(report))}</pre>
<h2>Dead units per layer</h2>
<table><thead><tr><th>layer</th><th>units</th><th>dead</th><th>dead %</th>
<th>dead units (indices)</th></tr></thead>
<tbody>{rows}</tbody></table>
{sections}
</body></html>
"""


def write_scan_page(report, path, *, title: str) -> str:
    """Write ``scan_page(report, title)`` to ``path`` atomically; return the path."""
    return write_text(path, scan_page(report, title))


def _layer_section(layer, figure_cls) -> str:
    margins = np.asarray(layer.max_pre_activation, dtype=np.float64)
    finite = margins[np.isfinite(margins)]
    summary = ("" if finite.size == 0 else
               f" Margins from {finite.min():.4g} to {finite.max():.4g}, "
               f"median {np.median(finite):.4g}.")
    figure = ""
    if figure_cls is not None:
        caption = (f"Hidden layer {layer.label}: margin (largest pre-activation) of each unit; "
                   "dead units (margin \u2264 0) in red")
        figure = (f'<figure><img src="data:image/png;base64,'
                  f'{png_base64(_margin_figure(layer, figure_cls))}" '
                  f'alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
                  f"</figcaption></figure>")
    return f"""<section>
<h2>Hidden layer {html.escape(layer.label)}</h2>
<p><span class="dead"><strong>{layer.n_dead} of {layer.n_units} units dead</strong></span>:
{_unit_list(layer.dead_units)}.{summary}</p>
{figure}
</section>"""


def _margin_figure(layer, figure_cls):
    """Two panels: the margins' histogram, and each unit's margin sorted; 0 marked."""
    margins = np.asarray(layer.max_pre_activation, dtype=np.float64)
    finite = np.isfinite(margins)
    dead = layer.firing_counts == 0
    fig = figure_cls(figsize=(10, 3.4))
    histogram, per_unit = fig.subplots(1, 2)
    margin_histogram(histogram, margins, dead, margin_bins(margins[finite]))
    histogram.set_xlabel("margin (largest pre-activation over the samples)")
    histogram.set_ylabel("units")
    histogram.set_title("Distribution of margins")
    histogram.legend(fontsize=9)

    order = np.argsort(margins, kind="stable")
    rank = np.arange(len(order))
    sorted_dead = dead[order]
    per_unit.scatter(rank[~sorted_dead], margins[order][~sorted_dead], s=12,
                     color=ALIVE_COLOUR, label="fires")
    per_unit.scatter(rank[sorted_dead], margins[order][sorted_dead], s=12,
                     color=DEAD_COLOUR, label="dead")
    per_unit.axhline(0.0, color="k", linestyle="--", linewidth=1)
    per_unit.set_xlabel("unit (sorted by margin)")
    per_unit.set_ylabel("margin")
    per_unit.set_title("Margin of each unit")
    per_unit.legend(fontsize=9)
    fig.tight_layout()
    return fig


def _unit_list(units) -> str:
    return ", ".join(str(int(unit)) for unit in units) if len(units) else "none"
