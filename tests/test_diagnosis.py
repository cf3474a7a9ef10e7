"""Diagnosis: born dead or collapsed, dormancy, margins, silent units, and the
chain-rule evidence that silent units get exactly zero gradient."""

import html
import json

import numpy as np
import pytest
from tests import reference

import reluscope as rs
from reluscope.verdict import verdict_of


def test_mask_death_is_found():
    # Layer 1 has only negative weights and biases on non-negative inputs: it
    # never fires, so everything after it is constant.
    rng = np.random.default_rng(0)
    x = rng.random((50, 4))
    weights = [(rng.random((4, 6)), np.zeros(6)), (-np.ones((6, 5)), -np.ones(5)),
               (rng.standard_normal((5, 2)), np.zeros(2))]
    report = rs.born_dead(rs.MLP.from_weights(weights), x)
    assert report.mask_death and report.verdict == "mask death"
    assert report.fully_dead_layers == [1]
    assert report.output_spread == 0.0
    assert not report.signal_collapse
    assert "mask death" in str(report)
    assert json.loads(json.dumps(report.to_dict()))["verdict"] == "mask death"


@pytest.mark.parametrize("activation,options", [("leaky_relu", {}), ("identity", {}),
                                                ("leaky_relu", {"negative_slope": 0.0})])
def test_only_an_activation_that_zeroes_negatives_can_mask_the_signal(activation, options):
    # Every pre-activation of the hidden layer is about -100: no unit fires.
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    model = rs.MLP([3, 4, 2], activation=activation, seed=0, bias_init=-100.0, **options)
    report = rs.born_dead(model, x)
    outputs = model.forward(x)
    spread = float(np.ptp(outputs, axis=0).max())
    assert report.scan.layers[0].n_dead == 4
    if options.get("negative_slope") == 0.0:  # a leaky ReLU of slope 0 is a ReLU
        assert report.verdict == "mask death" and spread == 0.0
    else:
        assert spread > 0.0 and report.output_spread == pytest.approx(spread)
        assert report.verdict == "alive" and report.fully_dead_layers == []


def test_signal_collapse_without_a_dead_layer():
    # Inputs differ by 1e-3; each layer scales differences by 1e-4 while a large
    # bias keeps every unit firing: by the output the samples are equal in float32.
    x = np.array([[1.0], [1.001], [1.002]])
    scale = 1e-4
    weights = [(np.array([[scale]]), np.array([1.0]))] * 4 + [(np.array([[1.0]]), np.array([0.0]))]
    report = rs.born_dead(rs.MLP.from_weights(weights), x)
    assert not report.mask_death
    assert report.signal_collapse and report.verdict == "signal collapse"
    assert report.activation_spread[0] > 0.0


def test_signal_that_underflows_is_collapse_not_mask_death():
    # Weights 1e-3 and zero biases: the signal shrinks about 1000x per layer and
    # underflows float32 (denormals included) to exactly 0 by layer 19; none dies by sign.
    x = np.random.default_rng(0).random((20, 4)) + 0.5
    weights = [(np.full((4, 4), 1e-3), np.zeros(4))] * 22 + [(np.ones((4, 1)), np.zeros(1))]
    report = rs.born_dead(rs.MLP.from_weights(weights), x)
    assert report.underflowed_layers and not report.mask_death
    assert report.verdict == "signal collapse"
    assert "underflowed" in str(report)


def test_healthy_network_is_alive():
    x = np.random.default_rng(1).standard_normal((100, 8))
    report = rs.born_dead(rs.MLP([8, 32, 32, 3], seed=0), x)
    assert report.verdict == "alive" and report.output_spread > 0


def test_dormancy_score_matches_definition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    model = rs.MLP([6, 40, 3], seed=4)
    model.layers[0].bias[:5] = -50.0      # dead: score 0
    model.layers[0].weight[:, 5:8] *= 0.001  # tiny activations: dormant, not dead
    layer = rs.scan(model, x).layers[0]
    h = np.maximum(x.astype(np.float64) @ model.layers[0].weight + model.layers[0].bias, 0)
    mean_abs = np.abs(h).mean(axis=0)
    np.testing.assert_allclose(layer.mean_abs_activation, mean_abs, rtol=1e-5)
    # Normalized by the layer mean, not the sum (Sokar et al. 2023).
    np.testing.assert_allclose(layer.dormant_scores, mean_abs / mean_abs.mean(), rtol=1e-5)
    dormant = set(layer.dormant_units(tau=0.025).tolist())
    assert set(range(5)) <= dormant and {5, 6, 7} <= dormant
    assert set(layer.dead_units.tolist()) == set(range(5))
    assert len(layer.dormant_units(tau=0.0)) >= 5


def test_dormancy_can_be_skipped():
    layer = rs.scan(rs.MLP([3, 4, 2], seed=0), np.ones((5, 3)), dormancy=False).layers[0]
    assert layer.mean_abs_activation is None
    with pytest.raises(ValueError, match="dormancy=True"):
        _ = layer.dormant_scores


def train_with_monitor(lr, epochs=4, **trainer_options):
    rng = np.random.default_rng(0)
    x = rng.random((256, 10)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    model = rs.MLP([10, 24, 24, 3], seed=0)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=lr, momentum=0.9), batch_size=32, seed=0,
                         **trainer_options)
    try:
        trainer.fit(x, y, epochs=epochs, callbacks=[monitor])
    except rs.TrainingDiverged:
        pass
    return model, monitor, trainer


def test_silent_units_get_exactly_zero_gradient():
    _, monitor, _ = train_with_monitor(lr=0.5, track_gradients=True)
    assert monitor.silent_unit_gradients, "no chain-rule evidence recorded"
    seen_silent = False
    for _epoch, layers in monitor.silent_unit_gradients:
        for evidence in layers:
            if evidence["silent_units"]:
                seen_silent = True
                assert evidence["max_silent_gradient"] == 0.0  # exactly, not merely small
                assert evidence["silent_gradient_exactly_zero"]
            if evidence["min_firing_gradient"] is not None:
                assert evidence["min_firing_gradient"] >= 0.0
    assert seen_silent, "this setting is meant to silence units"
    # Units that fired got a nonzero gradient somewhere.
    assert any(
        e["min_firing_gradient"] for _, layers in monitor.silent_unit_gradients for e in layers
    )
    assert "chain rule" in monitor.summary()


def test_gradient_magnitude_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = rs.MLP([5, 7, 3], seed=1)
    manual = rs.MLP.from_weights(model.get_weights())
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.1), track_gradients=True)
    trainer.step(x, y)
    _, grads = manual.loss_and_gradients(x, y)
    expected = np.abs(grads[0][0]).sum(axis=0) + np.abs(grads[0][1])
    np.testing.assert_allclose(trainer.gradient_magnitude[0], expected, rtol=1e-5)


def test_silent_units_are_recorded_per_epoch():
    _, monitor, trainer = train_with_monitor(lr=0.5)
    assert [e for e, _ in monitor.silent] == list(range(1, trainer.epochs_done + 1))
    _, units = monitor.silent[-1]
    for layer, silent in enumerate(units):
        np.testing.assert_array_equal(silent, np.flatnonzero(trainer.firing_counts[layer] == 0))


def test_margins_and_labels():
    _, monitor, _ = train_with_monitor(lr=0.5)
    margins = monitor.margins(0)
    assert margins.shape == (len(monitor.reports), 24)
    dead_last = monitor.reports[-1].layers[0].dead_units
    np.testing.assert_array_equal(np.flatnonzero(margins[-1] <= 0), dead_last)
    labels = monitor.dead_unit_labels()
    assert set(labels[0].values()) <= {"permanent"} and set(labels[1].values()) <= {"tentative"}
    assert set(labels[0]) == set(dead_last.tolist())


def test_at_risk_rule():
    class FakeReport:
        def __init__(self, margins):
            layer = type("L", (), {})()
            layer.max_pre_activation = np.array(margins, np.float32)
            self.layers = [layer]

    monitor = rs.DeadUnitMonitor(np.ones((2, 2)))
    # unit 0 falls steadily to 10% of its peak; unit 1 falls but stays high;
    # unit 2 is dead; unit 3 falls then rises.
    history = [[1.0, 1.0, 0.5, 1.0], [0.5, 0.95, 0.1, 0.5], [0.1, 0.9, -0.1, 0.6]]
    monitor.history.reports = [FakeReport(m) for m in history]
    assert monitor.at_risk(0).tolist() == [0]
    assert monitor.at_risk(0, window=3).tolist() == []  # not enough scans yet


def test_momentum_moves_dead_units_and_the_report_says_so():
    rng = np.random.default_rng(0)
    x = rng.random((64, 3)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    model = rs.MLP([3, 6, 2], seed=0)
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    trainer = rs.Trainer(model, optimizer=optimizer, batch_size=64, seed=0)
    trainer.fit(x, y, epochs=1)  # builds velocity for every unit
    # Kill unit 0 by hand, then give its velocity a push: the gradient is zero
    # from now on, but momentum keeps moving the weights.
    model.layers[0].weight[:, 0] = -1.0
    model.layers[0].bias[0] = -1.0
    optimizer.state_for(model.parameters())[0].velocity[:, 0] = 0.5
    monitor = rs.DeadUnitMonitor(x)
    trainer.fit(x, y, epochs=2, callbacks=[monitor])
    moved = [(e, layer, u) for e, layer, u, _ in monitor.moved_while_dead]
    assert (2, 0, 0) in moved or (3, 0, 0) in moved
    assert "momentum or weight decay" in monitor.summary()


@pytest.mark.parametrize("make_optimizer", [lambda: rs.SGD(lr=0.3, momentum=0.5),
                                            lambda: rs.Adam(lr=0.3)], ids=["sgd", "adam"])
def test_last_firing_records_the_last_step_and_its_update(make_optimizer):
    # Two hidden layers of different widths: each layer's record is its own.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    model = rs.MLP([4, 9, 5, 3], seed=2, bias_init=-0.3)
    trainer = rs.Trainer(model, optimizer=make_optimizer(), batch_size=20)
    replay = rs.MLP.from_weights(model.get_weights())
    replay_update = reference.LayerByLayerUpdate(make_optimizer())
    expected = [{}, {}]  # per layer: unit -> (step, update norm, bias update, relative update)
    for step in range(1, 10):
        batch = slice(((step - 1) % 3) * 20, ((step - 1) % 3) * 20 + 20)
        before = [(layer.weight.copy(), layer.bias.copy()) for layer in replay.hidden_layers]
        fired = [(pre > 0).any(axis=0) for pre, _ in replay.forward_layers(x[batch])[:-1]]
        _, grads = replay.loss_and_gradients(x[batch], y[batch])
        replay_update(replay.parameters(), [g for pair in grads for g in pair])
        for index, (before_w, before_b) in enumerate(before):
            after = replay.layers[index]
            delta = np.linalg.norm(after.weight - before_w, axis=0)
            for unit in np.flatnonzero(fired[index]):
                expected[index][unit] = (step, delta[unit], after.bias[unit] - before_b[unit],
                                         delta[unit] / np.linalg.norm(before_w[:, unit]))
        trainer.step(x[batch], y[batch])
    trainer.flush_last_firing()
    for index, record in enumerate(trainer.last_firing):
        assert record.shape == (model.layers[index].fan_out,)
        for unit in range(record.shape[0]):
            if unit not in expected[index]:
                assert record["step"][unit] == -1
                continue
            step, update, bias_update, relative = expected[index][unit]
            assert record["step"][unit] == step
            assert record["lr"][unit] == pytest.approx(0.3)
            assert record["update_norm"][unit] == pytest.approx(update, rel=1e-4)
            assert record["bias_update"][unit] == pytest.approx(bias_update, rel=1e-4, abs=1e-7)
            assert record["relative_update"][unit] == pytest.approx(relative, rel=1e-4)
            for name in ("layer_median_update_norm", "layer_median_bias_update",
                         "layer_median_relative_update"):
                assert np.isfinite(record[name][unit])  # the layer medians, filled at flush


def test_death_certificates_name_a_documented_cause():
    _, monitor, _ = train_with_monitor(lr=0.5)
    causes = set(rs.causes.CAUSES)
    deaths = {(e, layer, u) for e, layer, u in monitor.deaths}
    assert len(monitor.certificates) == len(deaths)
    for certificate in monitor.certificates:
        assert certificate.cause in causes
        key = (certificate.confirmed_by_scan_after_epoch, certificate.layer,
               certificate.unit)
        assert key in deaths
        if certificate.confirmed_by_scan_after_epoch == 0:
            assert certificate.cause == "born dead"
            continue
        # Every death during training is attributed.
        assert certificate.cause != "unclassified" and certificate.note is None
        assert set(certificate.conditions) <= set(rs.causes.CONDITIONS)
        if certificate.last_fired_step is not None:
            assert certificate.lr == pytest.approx(0.5)
            assert certificate.update_norm >= 0
    json.loads(json.dumps(monitor.to_dict()))


def test_layer_table_counts_match_the_monitor():
    _, monitor, _ = train_with_monitor(lr=0.5)
    table = monitor.layer_table().splitlines()
    report = monitor.reports[-1]
    for line, layer in zip(table[2:], report.layers):
        fields = line.split()
        assert int(fields[0]) == layer.index and int(fields[1]) == layer.n_units
        assert int(fields[2]) == layer.n_dead
        assert int(fields[3]) == len(layer.dormant_units())
        assert int(fields[4]) == len(monitor.at_risk(layer.index))
        assert int(fields[5]) == len(monitor.silent[-1][1][layer.index])
        assert int(fields[6]) == sum(1 for _, k, _ in monitor.revivals if k == layer.index)
    assert monitor.summary().startswith(table[0])


def test_html_report_is_self_contained(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (installed by the test extra)")
    _, monitor, _ = train_with_monitor(lr=0.5)
    path = tmp_path / "report.html"
    monitor.to_html(path)
    page = path.read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "http://" not in page and "https://" not in page  # opens offline
    # The verdict first; the certificates folded away, their number in the summary.
    verdict = verdict_of("Training run", monitor)
    assert page.index(html.escape(verdict.cause_text())) < page.index("<img")
    folded = page.split('<details class="certificates">')[1].split("</details>")[0]
    n = len(monitor.certificates)
    assert f"<summary>Death certificates: {n} certificates</summary>" in folded
    body = folded.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == len(monitor.certificates)
    causes = [row.split("<td>")[1].split("</td>")[0] for row in body.split("<tr>")[1:]]
    assert causes == sorted(causes)  # sorted by cause
    assert monitor.layer_table().splitlines()[1].split()[0] in page


def test_without_matplotlib_the_text_and_json_still_work(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def hide_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    _, monitor, _ = train_with_monitor(lr=0.5, epochs=2)
    monkeypatch.setattr(builtins, "__import__", hide_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'reluscope\[plot\]'"):
        monitor.to_html(tmp_path / "report.html")
    assert "Hidden layers" in monitor.summary()
    json.dumps(monitor.to_dict())


def test_one_huge_step_is_certified_as_a_large_update():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)).astype(np.float32)  # centered data
    y = rng.integers(0, 3, 200)
    model = rs.MLP([6, 32, 32, 3], seed=1)
    optimizer = rs.SGD(lr=0.01)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(model, optimizer=optimizer, batch_size=200, seed=0)
    trainer.fit(x, y, epochs=2, callbacks=[monitor])
    optimizer.lr = 10.0  # the learning rate multiplied by 1000, for one step
    huge_step = trainer.steps_done + 1
    try:
        trainer.fit(x, y, epochs=1, callbacks=[monitor])
    except rs.TrainingDiverged:
        pytest.skip("the huge step overflowed instead of killing units")
    killed = [c for c in monitor.certificates if c.confirmed_by_scan_after_epoch == 3]
    assert killed, "the huge step killed no unit"
    assert any(c.cause == "large update" for c in killed)
    for certificate in killed:
        assert certificate.last_fired_step == huge_step
        assert certificate.lr == pytest.approx(10.0)
        assert "layer-wide large step" in certificate.conditions
        if certificate.layer == 0:  # its inputs are the data: the step itself killed it
            assert certificate.cause == "large update"
            assert certificate.attribution.own_share == pytest.approx(1.0)
        else:  # deeper, the layer below moved too; whichever did more is named
            assert certificate.cause in ("large update", "upstream shift")


def test_a_unit_whose_inputs_died_is_starved():
    x = np.random.default_rng(0).random((50, 2))
    weights = [(np.ones((2, 4)), np.zeros(4)), (np.ones((4, 2)), np.array([-0.1, 0.5])),
               (np.ones((2, 2)), np.zeros(2))]
    model = rs.MLP.from_weights(weights)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, model)
    model.layers[0].weight[:] = -1.0  # the whole first layer dies
    monitor.observe(1, model)
    starved = [c for c in monitor.certificates if c.layer == 1]
    assert [(c.unit, c.cause) for c in starved] == [(0, "upstream shift")]
    assert "starved" in starved[0].conditions
    assert starved[0].attribution.upstream_share == pytest.approx(1.0)  # its own weights held


def test_a_deep_unit_revives_when_the_layer_below_changes():
    x = np.random.default_rng(0).random((50, 2))
    weights = [(np.ones((2, 3)), np.zeros(3)), (np.ones((3, 2)), np.zeros(2)),
               (np.ones((2, 2)), np.zeros(2))]
    model = rs.MLP.from_weights(weights)
    monitor = rs.DeadUnitMonitor(x)
    model.layers[0].weight[:] = -1.0
    monitor.observe(0, model)  # layer 1 dead: its inputs are all zero
    assert monitor.reports[0].layers[1].n_dead == 2
    model.layers[0].weight[:] = 1.0  # the layer below changes
    monitor.observe(1, model)
    assert sorted((layer, unit) for _, layer, unit in monitor.revivals if layer == 1) == [
        (1, 0), (1, 1)]
    assert monitor.dead_unit_labels()[1] == {}


def test_a_unit_whose_own_inputs_died_is_starved_even_if_the_layer_lives():
    x = np.random.default_rng(0).random((50, 2))
    # Layer-1 unit 0 reads only layer-0 units 0 and 1; units 2-5 stay alive.
    w1 = np.zeros((6, 2))
    w1[0:2, 0] = 1.0
    w1[:, 1] = 1.0
    weights = [(np.ones((2, 6)), np.zeros(6)), (w1, np.array([-0.1, 0.0])),
               (np.ones((2, 2)), np.zeros(2))]
    model = rs.MLP.from_weights(weights)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, model)
    model.layers[0].weight[:, 0:2] = -1.0  # only the units feeding it die
    monitor.observe(1, model)
    assert monitor.reports[-1].layers[0].dead_fraction < 0.5
    causes = {(c.layer, c.unit): (c.cause, c.conditions) for c in monitor.certificates}
    assert causes[(1, 0)] == ("upstream shift", ["starved"])
