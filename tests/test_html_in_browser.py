"""The HTML report rendered by a real browser: headless Chromium (Debian's
`chromium`, installed by .ci/run) takes a screenshot, and the test checks that the
page and its plots are there."""

import html
import os
import shutil
import subprocess

import numpy as np
import pytest

import reluscope as rs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")


def near(image, rgb, tolerance=12):
    return np.all(np.abs(image[..., :3] * 255 - np.array(rgb)) <= tolerance, axis=-1)


def trained_monitor(lr, epochs=4):
    """A run whose first five units of hidden layer 0 are dead from the start (bias far
    below any pre-activation), so that every run has dead units to draw."""
    rng = np.random.default_rng(0)
    x = rng.random((300, 10)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    model = rs.MLP([10, 32, 32, 3], seed=0)
    model.layers[0].bias[:5] = -100.0
    monitor = rs.DeadUnitMonitor(x)
    rs.Trainer(model, optimizer=rs.SGD(lr=lr), seed=0).fit(x, y, epochs=epochs,
                                                            callbacks=[monitor], verbose=False)
    return monitor


DEAD_RED = (214, 39, 40)
FIRES_BLUE = (31, 119, 180)
VERDICT_BACKGROUND = (255, 248, 225)  # reluscope.html_report.VERDICT_BACKGROUND


def test_report_renders_with_its_plots(tmp_path):
    image_module = pytest.importorskip("matplotlib.image")
    monitor = trained_monitor(lr=0.5)
    page = tmp_path / "report.html"
    assert monitor.to_html(page) == str(page)  # returns the path, as ScanReport.to_html does
    image = _screenshot(page, tmp_path / "shot.png", image_module)
    # Not a blank page: a good share of non-white pixels.
    assert np.mean(np.any(image[..., :3] < 0.9, axis=-1)) > 0.05
    # The plots were decoded and drawn: units that fire in C0 blue, dead ones in C3 red,
    # and viridis' bright end (the firing-rate heatmap).
    assert near(image, FIRES_BLUE).sum() > 200
    assert near(image, DEAD_RED).sum() > 200
    assert near(image, (253, 231, 37), tolerance=30).sum() > 200


def test_two_runs_open_with_the_verdict_and_stand_side_by_side(tmp_path):
    image_module = pytest.importorskip("matplotlib.image")
    from reluscope.html_report import write_report
    from reluscope.verdict import verdict_of

    runs = [("small steps", trained_monitor(lr=0.05)), ("large steps", trained_monitor(lr=0.5))]
    page = tmp_path / "report.html"
    write_report(runs, page)
    text = page.read_text()
    for title, monitor in runs:
        assert html.escape(verdict_of(title, monitor).cause_text()) in text
    assert text.index('class="verdict"') < text.index("<img")
    image = _screenshot(page, tmp_path / "shot.png", image_module)

    # The verdict's box (its pale amber, which no plot uses) opens the page, and every
    # plot is drawn below it.
    verdict_rows = np.flatnonzero(near(image, VERDICT_BACKGROUND, tolerance=3).sum(axis=1) > 600)
    assert verdict_rows.size > 100 and verdict_rows[0] < 150
    verdict_bottom = verdict_rows.max()
    blue = near(image, FIRES_BLUE)
    assert blue[:verdict_bottom].sum() == 0 and blue[verdict_bottom:].sum() > 400

    # Side by side: each run's plots in its half of the window, at the same heights.
    # (Stacked runs would put both runs' plots in the left half, one below the other.)
    middle = image.shape[1] // 2
    rows_left = set(np.flatnonzero(blue[:, :middle].sum(axis=1) > 0))
    rows_right = set(np.flatnonzero(blue[:, middle:].sum(axis=1) > 0))
    assert len(rows_left) > 100 and len(rows_right) > 100
    assert len(rows_left & rows_right) > 0.8 * min(len(rows_left), len(rows_right))

    # Dead units in their own colour, in both runs' plots, below the verdict (whose dead
    # counts are red text too).
    red = near(image, DEAD_RED)[verdict_bottom:]
    assert red[:, :middle].sum() > 200 and red[:, middle:].sum() > 200


def _screenshot(page, shot, image_module):
    """The page as headless Chromium draws it in a 1280 x 2000 window."""
    # The browser is not ours to sanitize: under scripts/test_sanitized.sh the
    # preloaded ASan runtime would otherwise slow it past the timeout.
    browser_environment = {key: value for key, value in os.environ.items()
                           if key != "LD_PRELOAD"}
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False, env=browser_environment)
    assert shot.exists(), result.stderr[-2000:]
    image = image_module.imread(shot)
    assert image.shape[0] == 2000 and image.shape[1] == 1280
    return image


def test_scan_page_renders_with_its_margin_plots(tmp_path):
    image_module = pytest.importorskip("matplotlib.image")
    model = rs.MLP([10, 32, 32, 3], seed=0)
    model.layers[0].bias[:5] = -100.0  # five dead units, drawn in their own colour
    x = np.random.default_rng(0).random((300, 10)).astype(np.float32)
    page = tmp_path / "scan.html"
    rs.scan(model, x).to_html(page)
    image = _screenshot(page, tmp_path / "shot.png", image_module)
    # Not blank: two layers' text, table and plots cover about 3% of the window.
    assert np.mean(np.any(image[..., :3] < 0.9, axis=-1)) > 0.02
    # The margin plots were decoded and drawn: units that fire in matplotlib's
    # C0 blue, dead units in C3 red.
    assert near(image, FIRES_BLUE).sum() > 200
    assert near(image, DEAD_RED).sum() > 200
