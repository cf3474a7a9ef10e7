"""The self-contained HTML report of one or more DeadUnitMonitors.

Plots as inline PNG, tables as HTML, no file beside it and nothing fetched
when it is opened.

The page opens with the verdict on each run, then puts the runs side by side, a column
each, every row of plots on shared axes (``monitor_plots``); the death certificates
are folded away under each column.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from ._files import write_text
from .monitor_plots import FIGURE_WIDTH, plot_rows
from .plotting import DEAD_COLOUR, PAGE_DPI, PLOT_EXTRA_HINT, figure_class, png_base64
from .verdict import verdict_of

if TYPE_CHECKING:
    from ._typing import PathLike

# The experiments' figures import figure_class (and the hint) from here.
__all__ = ["PLOT_EXTRA_HINT", "certificate_table", "figure_class", "png_base64", "report_page",
           "write_monitor_report", "write_report"]

VERDICT_BACKGROUND = "#fff8e1"  # a pale amber no plot uses: the verdict stands out

# A column per run: the figure's width and a margin, in CSS pixels.
COLUMN_WIDTH = round(FIGURE_WIDTH * PAGE_DPI) + 24

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
    """Return the certificates as a sortable HTML table, sorted by cause."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in CERTIFICATE_COLUMNS)
    rows = []
    for c in sorted(certificates, key=lambda c: (c.cause, c.layer, c.unit)):
        rows.append("<tr>" + "".join(f"<td>{_cell(getattr(c, key))}</td>"
                                     for key, _ in CERTIFICATE_COLUMNS) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _code(text: str) -> str:
    """``text`` escaped, its `backquoted` parts as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _verdict_block(verdict) -> str:
    counts = ", ".join(
        f'<span class="{"dead" if layer.dead else "none"}">layer {html.escape(layer.label)}: '
        f"<strong>{layer.dead}/{layer.width}</strong></span>" for layer in verdict.dead_now)
    word = "Inactive (leaky ReLU: they still get gradient)" if verdict.leaky else "Dead"
    return f"""<div class="verdict-run">
<h3>{html.escape(verdict.title)}</h3>
<p class="dead-now">{word} now, after epoch {verdict.epoch}: {counts}</p>
<p class="cause">{_code(verdict.cause_text())}</p>
<p class="remedy">{_remedy(verdict)}</p>
</div>"""


def _remedy(verdict) -> str:
    remedy = verdict.remedy
    if remedy is None:
        return _code(verdict.remedy_text())
    return (f"<strong>Remedy for {html.escape(verdict.remedy_cause)}:</strong> "
            f"{_code(remedy.advice)}<br><em>Evidence:</em> {_code(remedy.evidence)}.")


def _image(data: tuple[str, int, int], caption: str) -> str:
    png, width, height = data
    return (f'<figure><img src="data:image/png;base64,{png}" width="{width}" '
            f'height="{height}" alt="{html.escape(caption)}"></figure>')


def _certificates(monitor) -> str:
    n = len(monitor.certificates)
    return f"""<details class="certificates">
<summary>Death certificates: {n} certificate{"" if n == 1 else "s"}</summary>
<p>Click a column to sort. The killing update is the one made right after the unit last
fired on its training batch.</p>
<div class="scroll">{certificate_table(monitor.certificates)}</div>
</details>"""


def report_page(sections) -> str:
    """Return the page of the (title, monitor) pairs ``sections``.

    The verdicts first, then the runs side by side.
    """
    sections = list(sections)
    if not sections:
        raise ValueError("no runs to report: give at least one (title, monitor) pair")
    for _, monitor in sections:
        if not monitor.reports:
            raise ValueError("the monitor has no scans yet; train with it first")
    monitors = [monitor for _, monitor in sections]
    verdicts = "".join(_verdict_block(verdict_of(title, monitor))
                       for title, monitor in sections)
    cells = [f'<h2 class="run-title">{html.escape(title)}</h2>' for title, _ in sections]
    for row in plot_rows(monitors):
        cells.append(f'<p class="row-caption">{html.escape(row.caption)}</p>')
        cells += [_image(image, f"{title}: {row.caption}")
                  for (title, _), image in zip(sections, row.images)]
    cells.append('<p class="row-caption">Hidden layers at the latest scan</p>')
    cells += [f"<pre>{html.escape(monitor.layer_table())}</pre>" for monitor in monitors]
    cells += [_certificates(monitor) for monitor in monitors]
    n_samples = max(monitor.history.n_samples for monitor in monitors)
    definitions = (
        '<p class="definitions">Dead: the unit\'s pre-activation is &le; 0 on every one of the '
        f"{n_samples} scanned samples\n"
        "(exact scan between epochs). Dormant: ReDo score &le; 0.025. Silent: no firing on the\n"
        "epoch's training batches. Each column is one run; every row of plots shares its axes.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reluscope report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.runs {{ display: grid; grid-template-columns: repeat({len(sections)}, {COLUMN_WIDTH}px);
        column-gap: 16px; align-items: start; }}
.runs > .row-caption {{ grid-column: 1 / -1; margin: 1.2em 0 0.3em; font-size: 0.95em; }}
.verdict {{ border: 2px solid #333; background: {VERDICT_BACKGROUND}; padding: 0 1em 0.5em;
           margin-bottom: 1.5em; width: fit-content; }}
.verdict-run p {{ margin: 0.4em 0; }}
.dead {{ color: {DEAD_COLOUR}; }}
.definitions {{ max-width: {COLUMN_WIDTH * 2}px; }}
figure {{ margin: 0; }}
img {{ max-width: none; }}
pre {{ background: #f5f5f5; padding: 0.6em; font-size: 12px; white-space: pre-wrap;
       margin: 0; }}
.scroll {{ overflow-x: auto; max-width: {COLUMN_WIDTH}px; }}
details {{ margin-top: 1em; }}
summary {{ cursor: pointer; font-weight: bold; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.4em; text-align: right; }}
th {{ cursor: pointer; background: #eee; }}
</style></head><body>
<h1>reluscope: dead ReLU units</h1>
<section class="verdict"><h2>Verdict</h2>
<div class="runs">{verdicts}</div>
</section>
{definitions}
<div class="runs">
{chr(10).join(cells)}
</div>
<script>{_SORT_SCRIPT}</script>
</body></html>
"""


def write_report(sections, path) -> str:
    """Write one page for the (title, DeadUnitMonitor) pairs ``sections``.

    A column per run; returns the path.
    """
    return write_text(path, report_page(sections))


def write_monitor_report(monitor: Any, path: PathLike) -> str:
    """Write the HTML report of one monitor's run to ``path``; return the path."""
    return write_report([("Training run", monitor)], path)
