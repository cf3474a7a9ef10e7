"""Remedies: gradient-norm clipping, learning-rate warmup, Adam moment cohorts, ReDo."""

import numpy as np
import pytest
from tests import reference

import reluscope as rs


def _data(n=48, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, features)).astype(np.float32),
            rng.integers(0, classes, n))


def _flat_grads(model, x, y):
    _, grads = model.loss_and_gradients(x, y)
    return [g.astype(np.float64) for pair in grads for g in pair]


@pytest.mark.parametrize("clip_norm", [0.05, 1e6])
def test_clipping_scales_the_gradients_by_the_global_norm(clip_norm):
    x, y = _data()
    model = rs.MLP([5, 17, 3], seed=1)
    expected_model = rs.MLP.from_weights(model.get_weights())
    grads = _flat_grads(expected_model, x, y)
    norm = np.sqrt(sum((g ** 2).sum() for g in grads))
    scale = min(1.0, clip_norm / (norm + 1e-6))
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.5, momentum=0.9, clip_norm=clip_norm))
    trainer.step(x, y)
    assert trainer.last_grad_norm == pytest.approx(norm, rel=1e-5)
    for param, start, grad in zip(model.parameters(), expected_model.parameters(), grads):
        expected, _ = reference.sgd(start.astype(np.float64), scale * grad, 0.0, 0.5, 0.9)
        np.testing.assert_allclose(param, expected, rtol=1e-5, atol=1e-6)
    if clip_norm < norm:
        assert np.sqrt(sum(((p - s) ** 2).sum() for p, s in zip(
            model.parameters(), expected_model.parameters()))) == pytest.approx(0.5 * clip_norm,
                                                                                 rel=1e-4)


def test_clipping_in_the_standalone_update_matches_the_trainer():
    x, y = _data(seed=2)
    first = rs.MLP([5, 8, 3], seed=4)
    second = rs.MLP.from_weights(first.get_weights())
    rs.Trainer(first, optimizer=rs.Adam(lr=0.01, clip_norm=0.1)).step(x, y)
    update = reference.LayerByLayerUpdate(rs.Adam(lr=0.01, clip_norm=0.1))
    _, grads = second.loss_and_gradients(x, y)
    assert update(second.parameters(), [g for pair in grads for g in pair])
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_no_clipping_reports_no_norm():
    x, y = _data()
    trainer = rs.Trainer(rs.MLP([5, 4, 3], seed=0))
    trainer.step(x, y)
    assert np.isnan(trainer.last_grad_norm)


def test_warmup_ramps_the_learning_rate_linearly():
    optimizer = rs.SGD(lr=0.4, warmup_steps=4)
    assert [optimizer.lr_at(t) for t in range(1, 7)] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    x, y = _data()
    model = rs.MLP([5, 6, 3], seed=3)
    replay = rs.MLP.from_weights(model.get_weights())
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.4, warmup_steps=4))
    for step in range(1, 4):
        grads = _flat_grads(replay, x, y)
        for param, grad in zip(replay.parameters(), grads):
            param -= (0.1 * step * grad).astype(np.float32)
        trainer.step(x, y)
        for a, b in zip(model.parameters(), replay.parameters()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_death_certificates_record_the_warmed_up_rate():
    x, y = _data()
    trainer = rs.Trainer(rs.MLP([5, 6, 3], seed=3), optimizer=rs.SGD(lr=0.4, warmup_steps=4))
    trainer.step(x, y)
    trainer.flush_last_firing()
    records = trainer.last_firing[0]
    fired = records["step"] == 1
    assert fired.any()
    np.testing.assert_allclose(records["lr"][fired], 0.1)


@pytest.mark.parametrize("bad", [{"clip_norm": 0.0}, {"clip_norm": float("nan")},
                                 {"warmup_steps": -1}, {"warmup_steps": 1.5}])
def test_bad_remedy_options_are_refused(bad):
    with pytest.raises((ValueError, TypeError), match=next(iter(bad))):
        rs.SGD(lr=0.1, **bad)


def test_adam_cohorts_restart_the_bias_correction_of_reset_elements():
    x, y = _data(seed=5)
    model = rs.MLP([5, 7, 3], seed=6)
    optimizer = rs.Adam(lr=0.01)
    trainer = rs.Trainer(model, optimizer=optimizer)
    for _ in range(3):
        trainer.step(x, y)
    # Reference state in float64, per element: moments and own step count.
    params = [p.astype(np.float64) for p in model.parameters()]
    moments = [(s.first_moment.astype(np.float64), s.second_moment.astype(np.float64))
               for s in optimizer.state]
    ages = [np.full(p.shape, 3) for p in params]
    optimizer.reset_elements(0, (slice(None), [1, 4]))   # incoming weights of units 1 and 4
    optimizer.reset_elements(1, [1, 4])
    for index, where in ((0, (slice(None), [1, 4])), (1, [1, 4])):
        moments[index][0][where] = 0.0
        moments[index][1][where] = 0.0
        ages[index][where] = 0
    for _ in range(2):
        grads = _flat_grads(rs.MLP.from_weights(
            [(params[i], params[i + 1]) for i in range(0, len(params), 2)]), x, y)
        trainer.step(x, y)
        for i, grad in enumerate(grads):
            ages[i] += 1
            params[i], m, v = reference.adam(params[i], grad, *moments[i], ages[i], 0.01)
            moments[i] = (m, v)
    for param, expected in zip(model.parameters(), params):
        np.testing.assert_allclose(param, expected, rtol=2e-4, atol=1e-6)
    # A reset element's first update after the reset has the size of a first Adam step.
    assert optimizer.state[0].cohort[:, [1, 4]].min() == 1


def _trainer_with_dead_units(make_optimizer, dead=(2, 5)):
    x, y = _data(n=64, features=6, classes=3, seed=7)
    model = rs.MLP([6, 8, 8, 3], seed=8)
    trainer = rs.Trainer(model, optimizer=make_optimizer(), batch_size=16, seed=0)
    trainer.fit(x, y, epochs=1, verbose=False)
    # Kill two first-layer units: they never fire on x, so their ReDo score is 0.
    model.layers[0].bias[list(dead)] = -1e3
    return trainer, x


@pytest.mark.parametrize("make_optimizer", [lambda: rs.SGD(lr=0.05, momentum=0.9),
                                            lambda: rs.Adam(lr=0.01)], ids=["sgd", "adam"])
def test_redo_recycles_exactly_the_dormant_units_and_their_state(make_optimizer):
    trainer, x = _trainer_with_dead_units(make_optimizer)
    model, optimizer = trainer.model, trainer.optimizer
    report = rs.scan(model, x)
    expected = [set(layer.dormant_units(0.025).tolist()) for layer in report.layers]
    assert {2, 5} <= expected[0]
    before = model.get_weights()
    state_before = [[a.copy() for a in s.buffers()] for s in optimizer.state]
    redo = rs.ReDo(tau=0.025, every=1, sample_size=64, seed=0)
    trainer.fit_inputs = x
    redo.check(trainer, step=trainer.steps_done)
    recycled = [set() for _ in report.layers]
    for event in redo.events:
        recycled[event["layer"]].update(event["units"])
    assert recycled == expected
    # Which elements of each parameter ReDo must reset: the incoming weights and
    # bias of a recycled unit, and the outgoing weights of one.
    # Zero outgoing weights: the network computes what it did with the dormant
    # units cut off, whatever their fresh incoming weights.
    cut_off = rs.MLP.from_weights(before)
    for index, units in enumerate(recycled):
        cut_off.layers[index + 1].weight[sorted(units), :] = 0.0
    np.testing.assert_allclose(model.forward(x), cut_off.forward(x), rtol=1e-6, atol=1e-7)
    masks = []
    for index, layer in enumerate(model.layers):
        weight_mask = np.zeros(layer.weight.shape, dtype=bool)
        bias_mask = np.zeros(layer.bias.shape, dtype=bool)
        if index < len(recycled):
            weight_mask[:, sorted(recycled[index])] = True
            bias_mask[sorted(recycled[index])] = True
        if index > 0:
            weight_mask[sorted(recycled[index - 1]), :] = True
        masks += [weight_mask, bias_mask]
    for param_index, (param, mask) in enumerate(zip(model.parameters(), masks)):
        start = before[param_index // 2][param_index % 2]
        np.testing.assert_array_equal(param[~mask], start[~mask])
        for now, then in zip(optimizer.state[param_index].buffers(), state_before[param_index]):
            assert (now[mask] == 0).all()
            np.testing.assert_array_equal(now[~mask], then[~mask])
    for index, units in enumerate(recycled):
        units = sorted(units)
        if units:
            w, b = model.layers[index].weight, model.layers[index].bias
            assert not np.array_equal(w[:, units], before[index][0][:, units])
            assert (b[units] == 0).all() and (model.layers[index + 1].weight[units, :] == 0).all()
    if isinstance(optimizer, rs.Adam):
        cohort = optimizer.state[0].cohort
        assert (cohort[:, sorted(recycled[0])] == 1).all()
        assert optimizer.cohort_start.tolist() == [0, trainer.steps_done]


def test_redo_in_fit_reports_recycled_units_and_whether_they_stayed_alive():
    x, y = _data(n=96, features=6, classes=3, seed=9)
    model = rs.MLP([6, 16, 16, 3], seed=1, bias_init=-0.5)  # many units start dormant
    redo = rs.ReDo(every=3, seed=0)
    trainer = rs.Trainer(model, optimizer=rs.Adam(lr=0.01), batch_size=16, seed=0)
    trainer.fit(x, y, epochs=2, callbacks=[redo], verbose=False)
    assert redo.recycled > 0
    assert all(event["stayed_alive"] is not None for event in redo.events)
    assert 0 <= redo.stayed_alive <= redo.recycled
    assert "recycled" in redo.summary()
    assert np.isfinite(trainer.history.loss).all()


def test_reports_say_that_inactive_leaky_units_still_get_gradient():
    rng = np.random.default_rng(0)
    x = rng.random((80, 6)).astype(np.float32)
    y = rng.integers(0, 3, 80)
    model = rs.MLP([6, 12, 12, 3], activation="leaky_relu", seed=0, bias_init=-0.6)
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.1), track_gradients=True, seed=0)
    monitor = rs.DeadUnitMonitor(x)
    trainer.fit(x, y, epochs=2, callbacks=[monitor], verbose=False)
    labels = monitor.dead_unit_labels()
    assert any(labels) and all(v == "inactive" for layer in labels for v in layer.values())
    summary = monitor.summary()
    assert "inactive, not dead" in summary and "permanent" not in summary
    evidence = [e for e in monitor.silent_unit_gradients[-1][1] if e["silent_units"]]
    assert evidence and all(e["max_silent_gradient"] > 0 for e in evidence)
    assert "leaky ReLU: nonzero" in summary
    assert monitor.to_dict()["activation"] == "leaky_relu"
