"""What every plot of reluscope shares.

matplotlib's ``Figure`` without pyplot, PNG encoding for a page, the colours of
units (dead units in a colour of their own) and the margin histogram with 0
marked.

matplotlib is optional: it is imported when a figure is asked for.
"""

from __future__ import annotations

import base64
import contextlib
import io
import struct

import numpy as np

PLOT_EXTRA_HINT = "plots need matplotlib: pip install 'reluscope[plot]'"

# Dead units have a colour of their own in every plot (matplotlib's C3 red); units that
# fire are C0 blue, and viridis, which has no red, colours firing rates.
ALIVE_COLOUR = "#1f77b4"
DEAD_COLOUR = "#d62728"
EARLIER_COLOUR = "#7f7f7f"  # the first scan, where a plot shows it beside the latest

# A page shows a report PNG at one image pixel per CSS pixel (96 per inch): text drawn
# at 10 pt is then 10 pt on the screen at 100% zoom, and nothing is drawn below 9 pt.
PAGE_DPI = 96
FONT_SIZES = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
              "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
              "figure.titlesize": 10}


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
    """Return the figure as a PNG, base64-encoded for a ``data:image/png;base64,`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@contextlib.contextmanager
def page_fonts():
    """Matplotlib's settings for a figure drawn for a page (``FONT_SIZES``).

    The user's settings are restored after.
    """
    import matplotlib

    with matplotlib.rc_context(FONT_SIZES):
        yield


def page_png(figure) -> tuple[str, int, int]:
    """(base64 PNG, width, height in pixels) of a figure drawn at ``PAGE_DPI``.

    Drawn at its own size: shown at that width, its text keeps the size it was
    drawn at.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PAGE_DPI)
    png = buffer.getvalue()
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk, first in every PNG
    return base64.b64encode(png).decode("ascii"), width, height


def margin_bins(margins, n_bins: int = 40) -> np.ndarray:
    """Bin edges that span the finite margins and 0."""
    values = np.asarray(margins, dtype=np.float64)
    values = values[np.isfinite(values)]
    low = min(0.0, float(values.min())) if values.size else -1.0
    high = max(0.0, float(values.max())) if values.size else 1.0
    if high - low == 0.0:
        low, high = low - 1.0, high + 1.0
    return np.linspace(low, high, n_bins + 1)


def margin_histogram(ax, margins, dead, bins) -> None:
    """Draw a histogram of the units by margin (largest pre-activation over the samples).

    Those that fire in blue and dead ones in red, stacked; a dashed line at 0,
    where a unit dies.
    """
    margins = np.asarray(margins, dtype=np.float64)
    finite = np.isfinite(margins)
    ax.hist([margins[finite & ~dead], margins[finite & dead]], bins=bins, stacked=True,
            color=[ALIVE_COLOUR, DEAD_COLOUR], label=["fires", "dead"])
    ax.axvline(0.0, color="k", linestyle="--", linewidth=1, label="0")
