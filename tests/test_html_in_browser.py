"""The HTML report rendered by a real browser: headless Chromium (Debian's
`chromium`, installed by .ci/run) takes a screenshot, and the test checks that the
page and its plots are there."""

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


def test_report_renders_with_its_plots(tmp_path):
    image_module = pytest.importorskip("matplotlib.image")
    rng = np.random.default_rng(0)
    x = rng.random((300, 10)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(rs.MLP([10, 32, 32, 3], seed=0), optimizer=rs.SGD(lr=0.5), seed=0)
    trainer.fit(x, y, epochs=4, callbacks=[monitor])
    page = tmp_path / "report.html"
    assert monitor.to_html(page) == str(page)  # returns the path, as ScanReport.to_html does
    image = _screenshot(page, tmp_path / "shot.png", image_module)
    # Not a blank page: a good share of non-white pixels.
    assert np.mean(np.any(image[..., :3] < 0.9, axis=-1)) > 0.05
    # The plots were decoded and drawn: matplotlib's first line colour (the
    # dead-fraction plot) and viridis' bright end (the firing-rate heatmap).
    assert near(image, (31, 119, 180)).sum() > 200
    assert near(image, (253, 231, 37), tolerance=30).sum() > 200


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
    assert near(image, (31, 119, 180)).sum() > 200
    assert near(image, (214, 39, 40)).sum() > 200
