"""The experiment figures read well: legends off the data, a title per panel, labels of 9 pt
or more, rows on one scale, diverged runs marked and leaky units never called dead."""

import numpy as np
import pytest

from reluscope.experiments import initialization, initialization_figure, remedies

pytest.importorskip("matplotlib", reason="the plot extra (installed by the test extra)")

# At lr 5 the leaky run overflows on its first epoch; the ReLU runs finish (their units die).
DIVERGING = {"lr": 5.0, "seeds": [0], "dataset": "digits", "hidden": (16, 16), "epochs": 2,
             "max_train": 300, "n_jobs": 1,
             "remedies": {"plain": {}, "leaky ReLU": {"activation": "leaky_relu"},
                          "clip grad norm 1.0": {"clip_norm": 1.0}}}


@pytest.fixture(scope="module")
def remedies_result():
    result = remedies.compare_remedies(**DIVERGING)
    assert [row["diverged"] for row in result["remedies"]] == [0, 1, 0]
    return result


def drawn(figure):
    """The figure laid out and drawn (constrained layout runs at draw time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure).draw()
    return figure


def visible_texts(figure):
    from matplotlib.text import Text

    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]


def data_axes(figure):
    return [ax for ax in figure.axes if ax.axison]


def test_remedies_figure_legends_cover_no_bar(remedies_result):
    from matplotlib.patches import Rectangle

    figure = drawn(remedies.figure(remedies_result))
    renderer = figure.canvas.get_renderer()
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    assert len(legends) == 2
    bars = [patch for ax in data_axes(figure) for patch in ax.patches
            if isinstance(patch, Rectangle) and patch.get_width() > 0]
    assert bars
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not any(box.overlaps(bar.get_window_extent(renderer)) for bar in bars)
        for ax in data_axes(figure):
            assert not box.overlaps(ax.get_window_extent(renderer))


def test_remedies_figure_has_a_title_per_panel_and_no_small_text(remedies_result):
    figure = drawn(remedies.figure(remedies_result))
    assert len(data_axes(figure)) == 3
    assert all(ax.get_title() for ax in data_axes(figure))
    small = [(t.get_text(), t.get_fontsize()) for t in visible_texts(figure)
             if t.get_fontsize() < 9]
    assert not small


def test_remedies_figure_marks_the_diverged_remedy(remedies_result):
    figure = drawn(remedies.figure(remedies_result))
    bars_axes = data_axes(figure)[0]
    hatched = [patch for patch in bars_axes.patches if patch.get_hatch()]
    assert len(hatched) == 1  # the leaky run: its accuracy overflowed, so only one bar
    assert hatched[0].get_y() < 1 < hatched[0].get_y() + 2  # the second remedy's row
    every_run_diverged = [line for line in data_axes(figure)[2].lines
                          if line.get_marker() == "x" and len(line.get_xdata())]
    assert len(every_run_diverged) == 1
    labels = [label.get_text() for label in bars_axes.get_yticklabels()]
    assert labels[0] == "plain" and "diverged 1/1" in labels[1]
    legend_text = " ".join(t.get_text() for t in visible_texts(figure))
    assert "runs diverged" in legend_text and "not ranked" in legend_text


def test_remedies_figure_and_findings_call_leaky_units_inactive(remedies_result):
    figure = drawn(remedies.figure(remedies_result))
    for text in visible_texts(figure):
        words = text.get_text().lower()
        if "leaky" in words:
            assert "inactive" in words, words
            assert "dead" not in words.replace("not dead", ""), words
    text = remedies.table(remedies_result)
    leaky_line = next(line for line in text.splitlines() if line.startswith("leaky ReLU"))
    assert "inactive, not dead" in leaky_line


def test_remedies_findings_do_not_rank_a_diverged_remedy(remedies_result):
    findings = remedies_result["findings"]
    ranking = next(line for line in findings if line.startswith("Fewest dead units"))
    assert "clip grad norm 1.0" in ranking and "leaky" not in ranking
    assert any(line.startswith("leaky ReLU: 1/1 runs diverged; reported as diverged, not ranked")
               for line in findings)
    table = remedies.table(remedies_result)
    assert "DIVERGED, not ranked" in table
    # The leaky run's last state overflows: no accuracy, printed as "-", never "nan%".
    leaky_line = next(line for line in table.splitlines() if line.startswith("leaky ReLU"))
    assert leaky_line.split()[3] == "-" and "nan" not in table


def test_a_relu_remedy_that_diverged_is_left_out_of_the_ranking():
    def row(name, dead, diverged):
        return {"remedy": name, "activation": "relu", "runs": 2, "diverged": diverged,
                "dead_fraction_final": dead, "test_accuracy": 0.5}

    # The diverged remedy has the fewest dead units (its last finite state): no win.
    lines = remedies.findings([row("plain", 0.9, 0), row("wild", 0.01, 2),
                               row("calm", 0.5, 0)])
    assert lines[0] == ("Fewest dead units after training, runs that all finished "
                        "(plain: 90.0% dead): calm 50.0% (accuracy 50.0%).")
    assert lines[1].startswith("wild: 2/2 runs diverged")
    lines = remedies.findings([row("plain", 0.9, 1), row("calm", 0.5, 0)])
    assert lines[-1] == "The plain run diverged: no remedy is measured against it."
    assert "(plain:" not in lines[0]


@pytest.fixture(scope="module")
def init_figure():
    result, samples = initialization.init_study(dataset="digits", n_samples=120, seed=0)
    return result, drawn(initialization.figure(result, samples))


def test_init_figure_rows_share_one_scale(init_figure):
    result, figure = init_figure
    _, *rows = data_axes(figure)
    assert len(rows) == len(result["inits"])
    first = rows[0]
    for ax in rows[1:]:
        assert first.get_shared_y_axes().joined(first, ax)
        assert first.get_shared_x_axes().joined(first, ax)
        assert ax.get_ylim() == first.get_ylim()
    # The exploding init's last layer and the shrinking one's both fit the shared axis.
    low, high = first.get_ylim()
    stds = [row["layers"][-1]["std"] for row in result["inits"]]
    placed = initialization_figure.asinh_scaled([min(stds), max(stds)])
    assert low < placed[0] < placed[1] < high


def test_init_figure_labels_are_at_least_9_points(init_figure):
    _, figure = init_figure
    small = [(t.get_text(), t.get_fontsize()) for t in visible_texts(figure)
             if t.get_fontsize() < 9]
    assert not small
    rows = data_axes(figure)[1:]
    assert [ax.get_ylabel() for ax in rows] == [label for label, _, _ in
                                                initialization.DEFAULT_INITS]
    bottom = [label.get_text() for label in rows[-1].get_xticklabels()]
    assert bottom[0] == "linear" and bottom[-1] == "ReLU 5"


def test_init_figure_tick_labels_do_not_touch(init_figure):
    _, figure = init_figure
    renderer = figure.canvas.get_renderer()
    for ax in data_axes(figure)[1:]:
        boxes = [label.get_window_extent(renderer) for label in ax.get_yticklabels()
                 if label.get_visible() and label.get_text()
                 and ax.get_ylim()[0] <= label.get_position()[1] <= ax.get_ylim()[1]]
        assert len(boxes) >= 3
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_asinh_scale_is_monotonic_and_linear_near_zero():
    module = initialization_figure
    values = np.array([-100.0, -1.0, 0.0, 0.001, 1.0, 100.0])
    placed = module.asinh_scaled(values)
    assert np.all(np.diff(placed) > 0) and placed[2] == 0.0
    assert placed[3] == pytest.approx(0.001 / module.LINEAR_WIDTH, rel=1e-2)
