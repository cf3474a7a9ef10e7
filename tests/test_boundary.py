"""The typed contract between the Python layer and the C++ training step."""

import numpy as np
import pytest

import reluscope as rs
from reluscope import _core


def layer(fan_in, fan_out, activation=_core.Activation.relu, **buffers):
    weight = np.full((fan_in, fan_out), 0.1, np.float32)
    bias = np.zeros(fan_out, np.float32)
    return _core.LayerSpec(weight, bias, activation, 0.0,
                           weight_state=_core.ParamState(velocity=np.zeros_like(weight)),
                           bias_state=_core.ParamState(velocity=np.zeros_like(bias)),
                           units=_core.UnitBuffers(**buffers))


def test_a_step_reports_a_named_status_and_result():
    step = _core.TrainStep([layer(3, 4), layer(4, 2, _core.Activation.identity)],
                           _core.Loss.cross_entropy)
    x = np.ones((5, 3), np.float32)
    settings = _core.StepSettings(_core.OptimizerSettings(_core.OptimizerKind.sgd, 0.1), 1)
    result = step.run(_core.Batch(x, labels=np.array([0, 1, 0, 1, 0])), settings)
    assert result.status == _core.StepStatus.ok
    assert result.loss == pytest.approx(np.log(2), rel=1e-6)  # equal logits: log(2 classes)
    assert np.isnan(result.grad_norm)  # no clipping asked
    x[0, 0] = np.nan
    result = step.run(_core.Batch(x, labels=np.zeros(5, np.int64), check_values=True), settings)
    assert result.status == _core.StepStatus.x_not_finite


@pytest.mark.parametrize("loss", [_core.Loss.cross_entropy, _core.Loss.mse])
def test_a_whole_batch_run_is_a_run_over_every_row_with_its_values_checked(loss):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 3)).astype(np.float32)
    targets = (rng.integers(0, 2, 7) if loss == _core.Loss.cross_entropy
               else rng.standard_normal((7, 2)).astype(np.float32))
    labelled = loss == _core.Loss.cross_entropy
    optimizer = _core.OptimizerSettings(_core.OptimizerKind.sgd, 0.1, momentum=0.9)
    specs = [[layer(3, 4), layer(4, 2, _core.Activation.identity)] for _ in range(2)]
    steps = [_core.TrainStep(layers, loss) for layers in specs]
    for number in (1, 2):  # the second step also reads the first one's velocity
        batch = (_core.Batch(x, labels=targets, check_values=True) if labelled
                 else _core.Batch(x, targets=targets, check_values=True))
        expected = steps[0].run(batch, _core.StepSettings(optimizer, number))
        got = steps[1].run_whole_batch(x, targets, optimizer, number)
        assert (got.status, got.loss, got.correct) == (expected.status, expected.loss,
                                                      expected.correct)
    for a, b in zip(*specs):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
    bad = x.copy()
    bad[6, 2] = np.inf
    assert (steps[1].run_whole_batch(bad, targets, optimizer, 3).status
            == _core.StepStatus.x_not_finite)
    other = targets.astype(np.float32 if labelled else np.float64)
    with pytest.raises(TypeError, match="labels" if labelled else "targets"):
        steps[1].run_whole_batch(x, other, optimizer, 3)
    with pytest.raises(ValueError, match="step_number must be >= 1"):
        steps[1].run_whole_batch(x, targets, optimizer, 0)


def test_the_boundary_takes_names_not_integers():
    weight, bias = np.ones((3, 2), np.float32), np.zeros(2, np.float32)
    with pytest.raises(TypeError):
        _core.LayerSpec(weight, bias, 1, 0.0)
    with pytest.raises(TypeError):
        _core.TrainStep([layer(3, 2)], 0)
    with pytest.raises(TypeError):
        _core.OptimizerSettings(1, 0.1)
    with pytest.raises(TypeError):  # options after the learning rate are keyword-only
        _core.OptimizerSettings(_core.OptimizerKind.sgd, 0.1, 0.9)


def test_buffers_are_checked_before_any_step():
    with pytest.raises(ValueError, match="last_firing needs firing_counts"):
        _core.TrainStep([layer(3, 4, last_firing=np.zeros((4, len(_core.LAST_FIRING_FIELDS)))),
                         layer(4, 2, _core.Activation.identity)], _core.Loss.mse)
    with pytest.raises(ValueError, match="firing_counts has 3 elements, expected 4"):
        _core.TrainStep([layer(3, 4, firing_counts=np.zeros(3, np.int64)),
                         layer(4, 2, _core.Activation.identity)], _core.Loss.mse)
    with pytest.raises(ValueError, match="layer 1 has 5 inputs but layer 0 has 4 outputs"):
        _core.TrainStep([layer(3, 4), layer(5, 2)], _core.Loss.mse)


def test_last_firing_records_are_named_from_the_cpp_field_list():
    stats = rs.UnitStats(3)
    assert stats.last_firing.dtype.names == tuple(_core.LAST_FIRING_FIELDS)
    assert stats.last_firing.dtype.names[:2] == ("step", "lr")
    assert (stats.last_firing["step"] == -1).all() and stats.last_fired(0) is None


def test_layer_verdict_is_the_one_rule():
    assert _core.layer_verdict(True, True) == _core.LayerVerdict.fires
    assert _core.layer_verdict(False, True) == _core.LayerVerdict.dead_by_sign
    assert _core.layer_verdict(False, False) == _core.LayerVerdict.underflowed


def test_optimizer_owns_its_count_and_version():
    optimizer = rs.Adam(lr=0.01)
    model = rs.MLP([3, 4, 2], seed=0)
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    trainer = rs.Trainer(model, optimizer=optimizer)
    trainer.step(x, y)
    assert optimizer.steps == 1 and optimizer.settings().update_number == 2
    version = optimizer.version
    optimizer.reset_elements(0, (slice(None), [1]))
    assert optimizer.version > version
    assert optimizer.settings().cohort_start.tolist() == [0, 1]
    trainer.step(x, y)  # the step picks up the new cohort ids
    assert optimizer.steps == 2


def test_tracking_switched_off_and_on_between_steps():
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = np.arange(16) % 2
    trainer = rs.Trainer(rs.MLP([3, 5, 2], seed=1))
    trainer.step(x, y)
    counted = trainer.firing_counts[0].copy()
    trainer.track_firing = False
    trainer.step(x, y)
    np.testing.assert_array_equal(trainer.firing_counts[0], counted)
    trainer.track_firing = True
    trainer.step(x, y)
    assert trainer.firing_counts[0].sum() > counted.sum()


def test_the_old_monitor_name_warns_and_still_works():
    with pytest.warns(DeprecationWarning, match="DeadUnitMonitor"):
        monitor = rs.DeadNeuronMonitor(np.ones((2, 3)))
    assert isinstance(monitor, rs.DeadUnitMonitor)
    monitor.observe(0, rs.MLP([3, 4, 2], seed=0))
    assert len(monitor.reports) == 1


def test_the_step_refuses_an_optimizer_whose_buffers_are_missing():
    weight, bias = np.ones((2, 2), np.float32), np.zeros(2, np.float32)
    step = _core.TrainStep([_core.LayerSpec(weight, bias, _core.Activation.identity)],
                           _core.Loss.cross_entropy)
    batch = _core.Batch.labelled(np.ones((2, 2), np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="Adam needs first_moment"):
        step.run(batch, _core.StepSettings(
            _core.OptimizerSettings(_core.OptimizerKind.adam, 0.1), 1))
    with pytest.raises(ValueError, match="momentum needs a velocity"):
        step.run(batch, _core.StepSettings(
            _core.OptimizerSettings(_core.OptimizerKind.sgd, 0.1, momentum=0.9), 1))
    np.testing.assert_array_equal(weight, 1.0)  # nothing was written


def test_batch_rows_are_taken_as_int64_only():
    batch = _core.Batch.labelled(np.ones((3, 2), np.float32), np.zeros(3, np.int64))
    batch.rows = np.array([2, 0])
    assert batch.rows.tolist() == [2, 0]
    with pytest.raises(TypeError, match="int64"):
        batch.rows = np.array([0.7, 1.0])  # would truncate to row 0
    batch.rows = None
    assert batch.rows is None


def test_adam_settings_follow_a_reset_between_two_steps():
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    optimizer = rs.Adam(lr=0.01)
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer)
    for _ in range(3):
        trainer.step(x, y)
    optimizer.reset_elements(0, (slice(None), [1]))
    assert optimizer.settings().cohort_start.tolist() == [0, 3]
    optimizer.reset()
    trainer.step(x, y)
    optimizer.reset_elements(0, (slice(None), [2]))  # a new cohort after update 1
    assert optimizer.settings().cohort_start.tolist() == [0, 1]


def test_a_monitor_refuses_a_model_of_other_features_before_training():
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    monitor = rs.DeadUnitMonitor(np.ones((4, 5)))
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    with pytest.raises(ValueError, match="x_scan has 5 features but the first layer expects 3"):
        trainer.fit(x, y, epochs=1, callbacks=[monitor])
    assert trainer.steps_done == 0


def test_arrays_of_the_wrong_dtype_or_layout_are_named():
    weight = np.ones((3, 2), np.float32)
    with pytest.raises(TypeError, match="weight must be a C-contiguous numpy array of dtype "
                                        "float32, got .* of dtype float64"):
        _core.LayerSpec(weight.astype(np.float64), np.zeros(2, np.float32),
                        _core.Activation.relu)
    with pytest.raises(TypeError, match="bias must be a C-contiguous"):
        _core.LayerSpec(weight, np.zeros((2, 2), np.float32)[:, 0], _core.Activation.relu)
    with pytest.raises(TypeError, match="cohort must be .* dtype int32"):
        _core.ParamState(cohort=np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="labels must be .* dtype int64"):
        _core.Batch.labelled(np.ones((2, 3), np.float32), np.zeros(2, np.int32))


def test_a_model_array_replaced_by_float64_is_named_by_the_trainer():
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    trainer.model.layers[0].weight = trainer.model.layers[0].weight.astype(np.float64)
    with pytest.raises(TypeError, match=r"layers\[0\]\.weight has dtype float64 .* needs float32"):
        trainer.step(np.ones((2, 3), np.float32), np.array([0, 1]))


def test_step_numbers_start_at_one():
    step = _core.TrainStep([layer(3, 2, _core.Activation.identity)], _core.Loss.mse)
    batch = _core.Batch.with_targets(np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32))
    settings = _core.OptimizerSettings(_core.OptimizerKind.sgd, 0.1)
    with pytest.raises(ValueError, match="step_number must be >= 1, got 0"):
        step.run(batch, _core.StepSettings(settings, 0))


def test_layer_verdict_takes_booleans_only():
    with pytest.raises(TypeError):
        _core.layer_verdict(None, None)


def test_a_constant_bias_must_fit_in_float32():
    with pytest.raises(ValueError, match=r"bias_init=1e\+39 overflows float32"):
        rs.MLP([4, 2], bias_init=1e39)


def test_certificates_only_for_units_that_exist():
    model = rs.MLP([2, 3, 2], seed=0)
    history = rs.UnitHistory(np.ones((4, 2)))
    with pytest.raises(ValueError, match="no scan yet"):
        rs.CauseRules().certify(history, model, 0, 0, None)
    history.observe(0, model)
    for layer_index, unit in ((0, 3), (0, -1), (1, 0)):
        with pytest.raises(ValueError, match="the hidden layers have \\[3\\] units"):
            rs.CauseRules().certify(history, model, layer_index, unit, None)
