"""Plots go through matplotlib's object API: the user's backend is never changed and
pyplot is never imported (a notebook keeps its backend and its open figures)."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("matplotlib", reason="the plot extra (installed by the test extra)")

# Run in a fresh interpreter: other tests of this session may have imported pyplot.
# "svg" stands for a user's own backend: not Agg, and available everywhere.
PRELUDE = """
import sys
import matplotlib
matplotlib.use("svg")
before = matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules
import numpy as np
import reluscope as rs
"""

CHECK = """
assert matplotlib.get_backend() == before, (before, matplotlib.get_backend())
assert "matplotlib.pyplot" not in sys.modules, "reluscope imported matplotlib.pyplot"
print("backend kept:", before)
"""


def run_python(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend kept: svg" in result.stdout


def test_experiment_figure_keeps_the_backend_and_skips_pyplot(tmp_path):
    run_python(PRELUDE + f"""
from reluscope.experiments import born_dead
born_dead.run({str(tmp_path / "born")!r}, widths=(2,), max_depth=3, n_networks=10,
              abs_fit_networks=0)
with open({str(tmp_path / "born.png")!r}, "rb") as png:
    assert png.read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
""" + CHECK)


def test_html_report_keeps_the_backend_and_skips_pyplot(tmp_path):
    run_python(PRELUDE + f"""
rng = np.random.default_rng(0)
x = rng.random((60, 5)).astype(np.float32)
monitor = rs.DeadUnitMonitor(x)
trainer = rs.Trainer(rs.MLP([5, 8, 8, 3], seed=0), optimizer=rs.SGD(lr=0.5), seed=0)
trainer.fit(x, rng.integers(0, 3, 60), epochs=2, callbacks=[monitor], verbose=False)
monitor.to_html({str(tmp_path / "report.html")!r})
with open({str(tmp_path / "report.html")!r}, encoding="utf-8") as page:
    assert page.read().count('src="data:image/png;base64,') == 4
""" + CHECK)


def test_figures_are_plain_figure_objects_not_registered_with_pyplot():
    from matplotlib.figure import Figure

    from reluscope.experiments import born_dead
    from reluscope.html_report import figure_class

    assert figure_class() is Figure
    result = born_dead.born_dead_study(widths=(2,), max_depth=3, n_networks=10,
                                       abs_fit_networks=0)
    figure = born_dead.figure(result)
    assert type(figure) is Figure
    assert figure.canvas.manager is None  # no window, no pyplot figure number: just an object


def test_figures_without_matplotlib_name_the_extra(monkeypatch):
    import builtins

    from reluscope.experiments import born_dead

    result = born_dead.born_dead_study(widths=(2,), max_depth=3, n_networks=10,
                                       abs_fit_networks=0)
    real_import = builtins.__import__

    def hide_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", hide_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'reluscope\[plot\]'"):
        born_dead.figure(result)
