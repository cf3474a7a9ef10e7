"""The monitor report's layout without a browser: the axes the runs share, figures shown
at the size they were drawn at (so their 9-10 pt text stays that size), the verdict
and the folded certificates in the page."""

import base64
import re
import struct

import numpy as np
import pytest

import reluscope as rs

pytest.importorskip("matplotlib", reason="the plot extra (installed by the test extra)")

from reluscope.html_report import report_page
from reluscope.monitor_plots import SharedAxes
from reluscope.plotting import FONT_SIZES


def run(widths, epochs, lr=0.5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((120, 6)).astype(np.float32)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(rs.MLP([6, *widths, 3], seed=seed), optimizer=rs.SGD(lr=lr), seed=0)
    trainer.fit(x, rng.integers(0, 3, 120), epochs=epochs, callbacks=[monitor], verbose=False)
    return monitor


def test_runs_share_epochs_units_and_value_ranges():
    short, long = run([32, 16], epochs=2), run([24], epochs=5, lr=0.05, seed=1)
    shared = SharedAxes([short, long])
    assert shared.epochs == (0, 5)
    assert shared.widths == [32, 16]  # per layer position, the widest of the runs
    for layer, bins in enumerate(shared.margin_bins):
        assert bins[0] <= 0 <= bins[-1]
        for monitor in (short, long):
            if layer < len(monitor.reports[-1].layers):
                margins = monitor.reports[-1].layers[layer].max_pre_activation
                # The bins span the middle 98% of the runs' margins pooled: at most
                # the extreme unit at each end is beyond them (drawn in the end bins).
                inside = (margins >= bins[0]) & (margins <= bins[-1])
                assert inside.sum() >= inside.size - 2
    for bins in shared.pre_bins:
        assert bins[0] <= 0 <= bins[-1]


def png_size(data: str) -> tuple[int, int]:
    header = base64.b64decode(data[:64])
    return struct.unpack(">II", header[16:24])


def test_figures_are_shown_at_the_size_they_were_drawn_at():
    assert min(FONT_SIZES.values()) >= 9  # points, drawn at 96 dpi: 12 CSS pixels or more
    page = report_page([("a", run([8, 8], epochs=2)), ("b", run([8, 8], epochs=3))])
    images = re.findall(r'src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"',
                        page)
    assert len(images) == 8
    for data, width, height in images:
        assert png_size(data) == (int(width), int(height))
    assert "img { max-width: none; }" in page  # never shrunk to fit


def test_the_page_opens_with_the_verdict_and_folds_the_certificates():
    monitor = run([8, 8], epochs=3)
    page = report_page([("only run", monitor)])
    assert page.index('<section class="verdict">') < page.index("<img")
    assert "Dead now, after epoch 3:" in page
    assert "red: dead" in page  # the captions name the dead units' colour
    assert "by epoch" in page
    n = len(monitor.certificates)
    assert f"<details class=\"certificates\">\n<summary>Death certificates: {n} " in page
    assert "<details open" not in page


def test_a_report_needs_a_run_with_a_scan():
    with pytest.raises(ValueError, match="at least one"):
        report_page([])
    with pytest.raises(ValueError, match="no scans yet"):
        report_page([("empty", rs.DeadUnitMonitor(np.ones((3, 2))))])


def test_one_scan_without_pre_activation_samples_still_draws(recwarn):
    """A history restored from a checkpoint that kept no samples, scanned once."""
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, rs.MLP([4, 5, 2], seed=0))
    monitor.history.activation_samples = {}
    page = report_page([("one scan", monitor)])
    assert page.count("data:image/png;base64,") == 4
    assert not [w for w in recwarn if "matplotlib" in str(w.filename)]


def test_a_model_without_hidden_layers_gets_a_report_without_layer_plots(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, rs.MLP([3, 2], seed=0))
    path = monitor.to_html(tmp_path / "report.html")
    with open(path, encoding="utf-8") as stream:
        page = stream.read()
    assert "Verdict" in page and "Hidden layers at the latest scan" in page
    assert "<img" not in page
