"""The exact dead-unit scan and the training monitor."""

import json

import numpy as np
import pytest

import reluscope as rs


def network_with_dead_units():
    # Inputs are small non-negative integers and weights multiples of 0.25, so
    # every pre-activation is exact in float32 and in float64 alike.
    w1 = np.array([
        [1.0, -1.0, 0.0, 0.25, 0.5],
        [0.5, -0.5, 0.0, -0.25, -1.0],
        [-0.25, -2.0, 0.0, 0.5, 0.75],
    ])
    # unit 1: all weights negative, zero bias: dead on non-negative inputs.
    # unit 2: zero weight column, zero bias: pre-activation exactly 0, never fires.
    # unit 4: negative bias large enough to keep it off on this data.
    b1 = np.array([0.0, 0.0, 0.0, 0.0, -20.0])
    w2 = np.array([[1.0, -1.0], [2.0, 0.5], [1.0, 1.0], [-1.0, 0.25], [3.0, 3.0]])
    b2 = np.array([0.0, -0.5])
    w3 = np.ones((2, 3))
    b3 = np.zeros(3)
    return [(w1, b1), (w2, b2), (w3, b3)]


def numpy_firing_counts(weights, x):
    counts, h = [], x.astype(np.float64)
    for w, b in weights[:-1]:
        pre = h @ w + b
        counts.append((pre > 0).sum(axis=0))
        h = np.maximum(pre, 0)
    return counts


@pytest.fixture
def data():
    return np.random.default_rng(0).integers(0, 5, (257, 3)).astype(np.float32)


def test_scan_counts_agree_with_numpy(simd_target, num_threads, data):
    weights = network_with_dead_units()
    model = rs.MLP.from_weights(weights)
    report = rs.scan(model, data)
    expected = numpy_firing_counts(weights, data)
    assert len(report.layers) == 2  # the linear output layer is not scanned
    for layer, counts in zip(report.layers, expected):
        np.testing.assert_array_equal(layer.firing_counts, counts)
    assert report.layers[0].dead_units.tolist() == [1, 2, 4]
    assert report.layers[0].max_pre_activation[2] == 0.0  # exactly zero does not fire
    assert report.layers[0].n_dead == 3
    assert report.layers[0].dead_fraction == pytest.approx(3 / 5)
    assert report.n_dead == 3 + report.layers[1].n_dead
    assert report.dead_fraction == pytest.approx(report.n_dead / 7)


def test_scan_result_does_not_depend_on_chunk_size(data):
    model = rs.MLP([3, 17, 9, 2], seed=1)
    whole = rs.scan(model, data, chunk_size=10_000)
    for chunk_size in (1, 7, 256):
        chunked = rs.scan(model, data, chunk_size=chunk_size)
        for a, b in zip(whole.layers, chunked.layers):
            np.testing.assert_array_equal(a.firing_counts, b.firing_counts)
            np.testing.assert_array_equal(a.max_pre_activation, b.max_pre_activation)


def test_scan_margin_is_the_largest_pre_activation(data):
    model = rs.MLP([3, 6, 2], seed=2)
    report = rs.scan(model, data)
    pre = data @ model.layers[0].weight + model.layers[0].bias
    np.testing.assert_allclose(report.layers[0].max_pre_activation, pre.max(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(report.layers[0].dead_units,
                                  np.flatnonzero(report.layers[0].max_pre_activation <= 0))


def test_scan_report_text_and_json(data):
    report = rs.scan(rs.MLP.from_weights(network_with_dead_units()), data)
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["schema_version"] == 1
    assert as_dict["layers"][0]["dead_units"] == [1, 2, 4]
    assert as_dict["n_samples"] == 257
    text = str(report)
    assert "257 samples" in text
    assert text.splitlines()[2].split()[:4] == ["0", "5", "3", "60.0%"]


def test_monitor_records_deaths_per_epoch():
    rng = np.random.default_rng(0)
    x = rng.random((200, 8)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    model = rs.MLP([8, 32, 32, 3], seed=0)
    monitor = rs.DeadUnitMonitor(x)
    # A learning rate large enough to kill units in the first epochs.
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=2.0), batch_size=20, seed=0)
    try:
        trainer.fit(x, y, epochs=4, callbacks=[monitor])
    except rs.TrainingDiverged:
        pass
    assert monitor.epochs[0] == 0
    assert monitor.dead_counts.shape == (len(monitor.epochs), 2)
    # Replaying the recorded transitions gives the dead set of every scan.
    for index, report in enumerate(monitor.reports):
        epoch = monitor.epochs[index]
        for layer in report.layers:
            dead = set()
            for e, k, u in sorted(monitor.deaths + [(e, k, -u - 1) for e, k, u in
                                                    monitor.revivals]):
                if e <= epoch and k == layer.index:
                    if u >= 0:
                        dead.add(u)
                    else:
                        dead.discard(-u - 1)
            assert dead == set(layer.dead_units.tolist())
    assert monitor.dead_counts[-1].sum() > monitor.dead_counts[0].sum()
    assert any(e > 0 for e, _, _ in monitor.deaths)
    assert json.loads(json.dumps(monitor.to_dict()))["schema_version"] == 1
    assert "died in epoch" in monitor.summary()


def assert_ledger_adds_up(monitor, labels=None):
    """The summary's "dead at init + died - revived = dead now" lines against a recount
    from the scans themselves: events between consecutive scans, not the monitor's book."""
    reports = monitor.reports
    lines = [line for line in monitor.summary().splitlines() if line.endswith("dead now")
             or "dead now (" in line]
    labels = labels or [layer.label for layer in reports[-1].layers]
    assert len(lines) == len(labels)
    totals = np.zeros(3, dtype=int)
    for k, (line, label) in enumerate(zip(lines, labels)):
        died = revived = 0
        deaths_of: dict[int, int] = {}
        for u in reports[0].layers[k].dead_units.tolist():
            deaths_of[u] = 1
        for before, after in zip(reports, reports[1:]):
            was = set(before.layers[k].dead_units.tolist())
            now = set(after.layers[k].dead_units.tolist())
            died += len(now - was)
            revived += len(was - now)
            for u in now - was:
                deaths_of[u] = deaths_of.get(u, 0) + 1
        first, latest = reports[0].layers[k].n_dead, reports[-1].layers[k].n_dead
        assert first + died - revived == latest
        expected = (f"  layer {label}: {first} dead at init + {died} died - {revived} revived "
                    f"= {latest} dead now")
        again = sum(count > 1 for count in deaths_of.values())
        if again:
            expected += f" ({again} unit(s) died again after reviving)"
        assert line == expected
        totals += (died, revived, again)
    return totals


def test_deaths_and_revivals_add_up_to_the_latest_scan():
    rng = np.random.default_rng(0)
    x = rng.random((256, 10)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(rs.MLP([10, 24, 24, 3], seed=0),
                         optimizer=rs.SGD(lr=0.5, momentum=0.9), batch_size=32, seed=0)
    trainer.fit(x, y, epochs=4, callbacks=[monitor])  # a large lr: deaths and revivals
    died, revived, again = assert_ledger_adds_up(monitor)
    assert died and revived and again  # some units died, revived and died again
    assert [(ledger.died, ledger.revived) for ledger in monitor.history.ledger()] == [
        (sum(1 for e, k, _ in monitor.deaths if k == layer and e > 0),
         sum(1 for _, k, _ in monitor.revivals if k == layer)) for layer in range(2)]


def test_the_ledger_counts_the_first_scan_even_when_it_is_not_at_epoch_0():
    # A monitor attached after training began: its first scan's deaths are not epoch 0's.
    model = rs.MLP.from_weights(network_with_dead_units())
    x = np.random.default_rng(0).integers(0, 5, (257, 3)).astype(np.float32)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(5, model)
    monitor.observe(5, model)  # and a second scan given the same epoch
    assert [ledger.dead_at_first_scan for ledger in monitor.history.ledger()] == [3, 1]
    assert "3 dead at the first scan (epoch 5) + 0 died - 0 revived = 3 dead now" in (
        monitor.summary())


def test_monitor_checks_feature_count():
    monitor = rs.DeadUnitMonitor(np.ones((4, 5)))
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    with pytest.raises(ValueError, match="x_scan has 5 features but the first layer expects 3"):
        trainer.fit(np.ones((4, 3)), [0, 1, 0, 1], callbacks=[monitor])


def test_the_monitor_samples_pre_activations_so_values_below_0_show():
    x = np.random.default_rng(0).random((50, 8)).astype(np.float32)
    model = rs.MLP([8, 16, 16, 3], seed=0)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, model)
    pre_activations = [pre for pre, _ in model.forward_layers(x)[:-1]]
    for sample, pre in zip(monitor.activation_samples["first"], pre_activations):
        # 50 rows x 16 units < 4000: every pre-activation, none clipped at 0 by the ReLU.
        np.testing.assert_array_equal(np.sort(sample), np.sort(pre.ravel()))
        assert sample.min() < 0


# ScanReport.to_html: one scan as a page.

def _scan_with_dead_units():
    """Units 0-4 of hidden layer 0 have a bias far below any pre-activation: dead."""
    model = rs.MLP([10, 32, 32, 3], seed=0)
    model.layers[0].bias[:5] = -100.0
    x = np.random.default_rng(0).random((300, 10)).astype(np.float32)
    report = rs.scan(model, x)
    assert set(range(5)) <= set(report.layers[0].dead_units.tolist())
    return report


def test_scan_page_shows_each_layer_its_dead_units_and_the_margin_plots():
    pytest.importorskip("matplotlib")
    report = _scan_with_dead_units()
    page = report.to_html(title="my model")
    assert page.startswith("<!DOCTYPE html>") and "reluscope scan: my model" in page
    for layer in report.layers:
        assert f"<h2>Hidden layer {layer.label}</h2>" in page
        dead = ", ".join(str(unit) for unit in layer.dead_units)
        assert f"{layer.n_dead} of {layer.n_units} units dead</strong></span>:\n{dead}." in page
    assert page.count('<img src="data:image/png;base64,') == len(report.layers)
    assert "No plots on this page" not in page


def test_scan_page_without_matplotlib_has_no_plots_and_says_so(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def hide_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    report = _scan_with_dead_units()
    monkeypatch.setattr(builtins, "__import__", hide_matplotlib)
    page = report.to_html()
    assert "<img" not in page
    assert "No plots on this page: plots need matplotlib: pip install 'reluscope[plot]'" \
        in page.replace("&#x27;", "'")
    assert "<h2>Hidden layer 0</h2>" in page and "0, 1, 2, 3, 4" in page


def test_scan_to_html_writes_the_page_atomically(tmp_path, monkeypatch):
    import os

    report = _scan_with_dead_units()
    path = tmp_path / "scan.html"
    path.write_text("previous")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            report.to_html(path)
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["scan.html"]
    assert report.to_html(path, title="t") == str(path)
    assert path.read_text(encoding="utf-8") == report.to_html(title="t")
    assert os.listdir(tmp_path) == ["scan.html"]


def test_a_scan_page_title_must_be_text():
    model = rs.MLP([3, 4, 2], seed=0)
    report = rs.scan(model, np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="title must be a string"):
        report.to_html(title=3)


@pytest.mark.parametrize("sizes", [[5, 8, 4, 3], [5, 8, 3], [5, 8, 8, 8, 3]])
def test_a_model_whose_hidden_layers_changed_is_refused_before_anything_is_recorded(sizes):
    x = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, rs.MLP([5, 8, 8, 3], seed=0))
    changed = rs.MLP(sizes, seed=0)
    changed.layers[0].bias[:3] = -100.0  # three units of layer 0 die
    with pytest.raises(ValueError, match=r"hidden layers changed since the first scan"):
        monitor.observe(1, changed)
    assert monitor.history.epochs == [0] and monitor.history.deaths == []
    assert len(monitor.history.reports) == 1 and monitor.certificates == []


def test_fit_refuses_a_monitor_of_other_units_before_training(rng):
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, rs.MLP([5, 8, 3], seed=0))
    model = rs.MLP([5, 6, 3], seed=0)
    before = [p.copy() for p in model.parameters()]
    trainer = rs.Trainer(model, batch_size=8)
    with pytest.raises(ValueError, match=r"widths \[8\], now \[6\]"):
        trainer.fit(x, y, epochs=1, callbacks=[monitor], verbose=False)
    assert trainer.steps_done == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_history_refuses_a_scan_of_other_units_before_booking_it():
    # The PyTorch monitor records scans it takes itself: this is its only guard.
    from reluscope.layer_weights import HiddenLayerWeights
    from reluscope.unit_history import UnitHistory

    x = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    history = UnitHistory(None)
    first = rs.MLP([5, 8, 8, 3], seed=0)
    history.record(0, 0, rs.scan(first, x), HiddenLayerWeights.of_mlp(first), [])
    changed = rs.MLP([5, 8, 10, 3], seed=0)
    changed.layers[1].bias[:] = -100.0
    with pytest.raises(ValueError, match=r"widths \[8, 8\], now \[8, 10\]"):
        history.record(1, 5, rs.scan(changed, x), HiddenLayerWeights.of_mlp(changed), [])
    assert history.epochs == [0] and history.deaths == [] and len(history.reports) == 1


def test_an_output_layer_that_overflows_does_not_fail_the_hidden_layers_scan():
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    model = rs.MLP([3, 4, 2], seed=0)
    model.layers[1].weight[:] = 3e38  # only the (unscanned) output layer overflows
    monitor = rs.DeadUnitMonitor(x)
    report = monitor.observe(0, model)
    np.testing.assert_array_equal(report.layers[0].firing_counts,
                                  rs.scan(model, x).layers[0].firing_counts)


def test_an_epoch_whose_scan_fails_books_nothing(rng):
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = rs.MLP([4, 6, 3], seed=0)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(model, batch_size=40, track_gradients=True)
    trainer.fit(x, y, epochs=1, callbacks=[monitor], verbose=False)

    class Overflow(rs.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            trainer.model.layers[0].weight[:] = 3e38  # finite, but the scan overflows

    with pytest.raises(rs.NonFiniteActivations):
        trainer.fit(x, y, epochs=1, callbacks=[Overflow(), monitor], verbose=False)
    assert [e for e, _ in monitor.silent] == monitor.history.epochs[1:] == [1]
    assert [e for e, _ in monitor.silent_unit_gradients] == [1]
