"""Causes by attribution: each cause built on purpose and named, and the split of a margin's
fall checked against its definition (reluscope.attribution, reluscope.causes)."""

import numpy as np
import pytest

import reluscope as rs
from reluscope.attribution import LayerInputs
from reluscope.causes import OptimizerTraits
from reluscope.layer_weights import HiddenLayerWeights


def margins_by_numpy(weights, x, layer):
    h = x.astype(np.float64)
    for below in range(layer):
        h = np.maximum(h @ weights[below][0] + weights[below][1], 0.0)
    return (h @ weights[layer][0] + weights[layer][1]).max(axis=0)


def test_the_three_parts_add_up_to_the_fall_and_follow_their_definitions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5)).astype(np.float32)
    model = rs.MLP([5, 7, 6, 2], seed=0)
    before = HiddenLayerWeights.of_mlp(model).copy()
    weights_a = [(layer.weight.astype(np.float64).copy(), layer.bias.astype(np.float64).copy())
                 for layer in model.hidden_layers]
    for layer in model.layers:
        layer.weight += rng.normal(0, 0.3, layer.weight.shape).astype(np.float32)
        layer.bias += rng.normal(0, 0.3, layer.bias.shape).astype(np.float32)
    after = HiddenLayerWeights.of_mlp(model)
    weights_b = [(layer.weight.astype(np.float64), layer.bias.astype(np.float64))
                 for layer in model.hidden_layers]
    inputs = LayerInputs(x, before, after, chunk_rows=64)  # several chunks
    for layer in (0, 1):
        units = np.arange(after.biases[layer].size)
        found = inputs.attribute(layer, units)
        margin_a = margins_by_numpy(weights_a, x, layer)
        margin_b = margins_by_numpy(weights_b, x, layer)
        # Own weights moved, inputs held at the earlier scan.
        mixed = weights_a[:layer] + [(weights_b[layer][0], weights_a[layer][1])]
        weights_only = margins_by_numpy(mixed, x, layer)
        for unit, attribution in zip(units, found):
            assert attribution.margin_before == pytest.approx(margin_a[unit], abs=1e-5)
            assert attribution.margin_after == pytest.approx(margin_b[unit], abs=1e-5)
            assert attribution.weights + attribution.bias + attribution.upstream == (
                pytest.approx(attribution.fall, abs=1e-9))
            assert attribution.bias == pytest.approx(
                weights_a[layer][1][unit] - weights_b[layer][1][unit], abs=1e-7)
            assert attribution.weights == pytest.approx(margin_a[unit] - weights_only[unit],
                                                        abs=1e-5)
            if layer == 0:
                assert attribution.upstream == 0.0  # the data do not change


def planted_monitor(x, weights, optimizer=None):
    model = rs.MLP.from_weights(weights)
    monitor = rs.DeadUnitMonitor(x)
    monitor.observe(0, model, optimizer=optimizer)
    return model, monitor


def test_a_bias_that_drifts_down_is_a_drift_of_the_bias():
    x = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
    model, monitor = planted_monitor(x, [(np.eye(3, 4), np.zeros(4)), (np.ones((4, 2)),
                                                                         np.zeros(2))])
    for epoch in range(1, 6):
        model.layers[0].bias[1] -= 1.0
        model.layers[0].weight[1, 1] *= 0.98  # the weights move a little too
        monitor.observe(epoch, model)
    (certificate,) = [c for c in monitor.certificates if c.cause != "born dead"]
    assert (certificate.layer, certificate.unit, certificate.drift_by) == (0, 1, "bias")
    assert certificate.cause_text == "drift (bias)"
    assert certificate.attribution.own_share == pytest.approx(1.0)


def test_strong_weight_decay_is_listed_with_a_drift_of_the_weights():
    x = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
    bias = np.array([-0.5, 0.0])
    model, monitor = planted_monitor(x, [(np.eye(3, 2), bias), (np.ones((2, 2)), np.zeros(2))])
    decay = rs.SGD(lr=0.1, weight_decay=5.0)
    for epoch in range(1, 8):  # the weights shrink; the bias holds (kept by the gradient)
        model.layers[0].weight *= 0.5
        monitor.observe(epoch, model, optimizer=decay)
    (certificate,) = [c for c in monitor.certificates if c.cause != "born dead"]
    assert (certificate.layer, certificate.unit, certificate.cause_text) == (
        0, 0, "drift (weights)")
    assert "weight decay" in certificate.conditions
    # Without weight decay, the same death does not list it.
    model, monitor = planted_monitor(x, [(np.eye(3, 2), bias), (np.ones((2, 2)), np.zeros(2))])
    for epoch in range(1, 8):
        model.layers[0].weight *= 0.5
        monitor.observe(epoch, model, optimizer=rs.SGD(lr=0.1))
    assert monitor.certificates[-1].conditions == []


def test_weight_decay_in_training_is_a_condition_of_every_death():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    monitor = rs.DeadUnitMonitor(x)
    trainer = rs.Trainer(rs.MLP([8, 32, 32, 2], seed=0),
                         optimizer=rs.SGD(lr=0.05, weight_decay=2.0), batch_size=50, seed=0)
    trainer.fit(x, y, epochs=10, callbacks=[monitor])
    trained = [c for c in monitor.certificates if c.cause != "born dead"]
    assert trained, "strong weight decay killed no unit"
    for certificate in trained:
        assert "weight decay" in certificate.conditions
        assert certificate.cause in ("drift", "upstream shift")


def test_uncentered_inputs_are_a_condition_not_the_cause():
    # Non-negative features; unit 0's weights turn negative: dead on the raw data but firing
    # once the data are centered.
    x = np.random.default_rng(0).random((100, 3))
    model, monitor = planted_monitor(
        x, [(np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), np.array([0.0, 0.0])),
            (np.ones((2, 2)), np.zeros(2))])
    model.layers[0].weight[:, 0] = -1.0
    monitor.observe(1, model)
    (certificate,) = monitor.certificates
    assert (certificate.unit, certificate.cause_text) == (0, "drift (weights)")
    assert certificate.conditions == ["inputs not centered"]
    # Centered data: not listed.
    model, monitor = planted_monitor(
        x - 0.5, [(np.ones((3, 2)), np.array([0.0, 0.0])), (np.ones((2, 2)), np.zeros(2))])
    model.layers[0].weight[:, 0] = -1.0
    model.layers[0].bias[0] = -2.0
    monitor.observe(1, model)
    assert monitor.certificates[-1].conditions == []


def test_momentum_after_the_last_firing_step_is_listed_for_stateful_optimizers():
    traits = OptimizerTraits.of(rs.SGD(lr=0.1, momentum=0.9))
    assert traits == OptimizerTraits(0.0, True)
    assert OptimizerTraits.of(rs.Adam(weight_decay=0.01)) == OptimizerTraits(0.01, True)
    assert OptimizerTraits.of(rs.SGD(lr=0.1)) == OptimizerTraits(0.0, False)
    assert OptimizerTraits.of(None) == OptimizerTraits()
    torch = pytest.importorskip("torch")
    parameters = [torch.nn.Parameter(torch.zeros(2))]
    assert OptimizerTraits.of(torch.optim.SGD(parameters, lr=0.1, momentum=0.5,
                                              weight_decay=1e-4)) == OptimizerTraits(1e-4, True)
    assert OptimizerTraits.of(torch.optim.AdamW(parameters)).keeps_moving
    assert not OptimizerTraits.of(torch.optim.SGD(parameters, lr=0.1)).keeps_moving


def test_a_death_is_unclassified_only_when_it_cannot_be_attributed_and_says_why(tmp_path):
    x = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
    model, monitor = planted_monitor(x, [(np.eye(3, 2), np.zeros(2)),
                                         (np.ones((2, 2)), np.zeros(2))])
    state = monitor.state_dict()
    # A checkpoint of an earlier version kept no weights of the scan: nothing to split.
    state.settings["history"].pop("latest_weights")
    restored = rs.DeadUnitMonitor.from_state_dict(state)
    model.layers[0].bias[0] = -10.0
    restored.observe(1, model)
    (certificate,) = restored.certificates
    assert certificate.cause == "unclassified" and certificate.attribution is None
    assert "not kept" in certificate.note
    assert "unclassified: the weights" in restored.summary()
    # The saved weights do come back: the same death is attributed after a round trip.
    again = rs.DeadUnitMonitor.from_state_dict(monitor.state_dict())
    again.observe(1, model)
    assert again.certificates[-1].cause == "drift"


def test_certificates_round_trip_through_their_dicts():
    x = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
    model, monitor = planted_monitor(x, [(np.eye(3, 2), np.zeros(2)),
                                         (np.ones((2, 2)), np.zeros(2))])
    model.layers[0].bias[0] = -10.0
    monitor.observe(1, model, optimizer=rs.SGD(lr=0.1, weight_decay=0.1))
    (certificate,) = monitor.certificates
    data = certificate.to_dict()
    assert data["attribution"]["own_share"] == pytest.approx(1.0)
    assert data["conditions"] == ["weight decay"]
    assert rs.DeathCertificate.from_dict(data) == certificate


@pytest.mark.parametrize("lr", [0.05, 0.2])  # the demo's two runs
def test_the_demo_explains_nine_in_ten_deaths_or_more(lr):
    from reluscope import demo
    from reluscope.datasets import load_digits

    run = demo.train_once(lr, load_digits(), epochs=8)
    trained = [c for c in run["monitor"].certificates if c.cause != "born dead"]
    assert trained
    unclassified = [c for c in trained if c.cause == "unclassified"]
    assert len(unclassified) <= 0.1 * len(trained)
    text = demo.format_run("run", run)
    assert "causes of the" in text and "e.g. layer" in text
