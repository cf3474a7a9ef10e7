"""A ScanReport as a self-contained HTML page: the text table and the dead units per layer.

Rendering lives here, apart from ``scan.py``'s data; no plot, so no matplotlib.
"""

from __future__ import annotations

import html

from ._files import write_text


def scan_page(report, title: str) -> str:
    """The page of one scan: a title, the summary, the table, the dead units of each layer."""
    rows = "".join(
        f"<tr><td>{html.escape(layer.label)}</td><td>{layer.n_units}</td>"
        f"<td>{layer.n_dead}</td><td>{100 * layer.dead_fraction:.1f}%</td>"
        f"<td class=\"units\">{_unit_list(layer.dead_units)}</td></tr>"
        for layer in report.layers)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reluscope scan: {html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
pre {{ background: #f5f5f5; padding: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
td.units {{ text-align: left; }}
th {{ background: #eee; }}
</style></head><body>
<h1>reluscope scan: {html.escape(title)}</h1>
<p><strong>{report.n_dead} of {report.n_units} hidden units dead
({100 * report.dead_fraction:.1f}%)</strong> over {report.n_samples} samples. A unit is dead
when its pre-activation is &le; 0 on every sample.</p>
<pre>{html.escape(str(report))}</pre>
<h2>Dead units per layer</h2>
<table><thead><tr><th>layer</th><th>units</th><th>dead</th><th>dead %</th>
<th>dead units (indices)</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"""


def write_scan_page(report, path, *, title: str) -> str:
    """Write ``scan_page(report, title)`` to ``path`` atomically; return the path."""
    return write_text(path, scan_page(report, title))


def _unit_list(units) -> str:
    return ", ".join(str(int(unit)) for unit in units) if len(units) else "none"
