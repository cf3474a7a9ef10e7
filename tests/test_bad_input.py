"""Every bad input gets a clear Python exception that names the problem."""

import numpy as np
import pytest

import reluscope as rs


@pytest.fixture
def model():
    return rs.MLP([4, 5, 3], seed=0)


@pytest.fixture
def trainer(model):
    return rs.Trainer(model, seed=0)


GOOD_X = np.ones((6, 4))
GOOD_Y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("x,error,message", [
    (np.ones(4), ValueError, r"x must be 2-dimensional .* got shape \(4,\)"),
    (np.ones((2, 3, 4)), ValueError, "x must be 2-dimensional"),
    (np.ones((6, 5)), ValueError, "x has 5 features but the first layer expects 4"),
    (np.ones((0, 4)), ValueError, "x is empty"),
    (np.full((6, 4), np.nan), ValueError, "x contains NaN or Inf"),
    (np.full((6, 4), np.inf), ValueError, "x contains NaN or Inf"),
    (np.full((6, 4), 1e300), ValueError, "x contains NaN or Inf"),  # overflows float32
    (np.array([["a"] * 4] * 6), TypeError, "x must be a numeric array"),
    (np.ones((6, 4), dtype=complex), TypeError, "x must be real"),
])
def test_bad_x_is_refused_everywhere(model, trainer, x, error, message):
    for call in (model.forward, model.predict, lambda v: rs.scan(model, v),
                 lambda v: trainer.fit(v, GOOD_Y[: len(v)] if np.ndim(v) else GOOD_Y)):
        with pytest.raises(error, match=message):
            call(x)


@pytest.mark.parametrize("y,error,message", [
    (np.array([0, 1, 2, 0, 1, 3]), ValueError, r"y has label 3, outside \[0, 3\)"),
    (np.array([0, 1, 2, 0, 1, -1]), ValueError, r"y has label -1, outside \[0, 3\)"),
    (np.array([0, 1, 2, 0, 1, 1.5]), ValueError, "integer class labels"),
    (np.array([0, 1, 2, 0, 1, np.nan]), ValueError, "y contains NaN or Inf"),
    (np.array(["a"] * 6), TypeError, "integer class labels"),
    (np.array([0, 1, 2]), ValueError, "x has 6 samples but y has 3"),
    (np.zeros((6, 3)), ValueError, "y must be 1-dimensional class labels"),
])
def test_bad_labels_for_cross_entropy(trainer, y, error, message):
    with pytest.raises(error, match=message):
        trainer.fit(GOOD_X, y)
    with pytest.raises(error):
        trainer.step(GOOD_X, y)


def test_float_labels_holding_integers_are_accepted(trainer):
    trainer.step(GOOD_X, GOOD_Y.astype(np.float64))
    trainer.step(GOOD_X.astype(np.int32), list(GOOD_Y))


@pytest.mark.parametrize("y,message", [
    (np.full((6, 3), np.inf), "y contains NaN or Inf"),
    (np.ones((5, 3)), "x has 6 samples but y has 5"),
    (np.ones((6, 2)), "y has 2 columns but the model has 3 outputs"),
])
def test_bad_regression_targets(model, y, message):
    trainer = rs.Trainer(model, loss="mse")
    with pytest.raises(ValueError, match=message):
        trainer.fit(GOOD_X, y)


@pytest.mark.parametrize("make,message", [
    (lambda: rs.MLP([4, 5, 3], activation="sigmoid"), "unknown activation 'sigmoid'"),
    (lambda: rs.MLP([4, 5, 3], init="xavier"), "unknown init 'xavier'"),
    (lambda: rs.Trainer(rs.MLP([4, 3]), loss="hinge"), "unknown loss 'hinge'"),
    (lambda: rs.MLP([4]), "at least an input and an output"),
    (lambda: rs.MLP([4, 0, 3]), "each layer size must be >= 1"),
    (lambda: rs.MLP([4, 5, 3], activation="leaky_relu", negative_slope=-1),
     "negative_slope must be >= 0"),
    (lambda: rs.MLP([4, 5, 3], init="normal", init_params={"std": -1}), "std must be >= 0"),
    (lambda: rs.SGD(lr=0), "lr must be > 0"),
    (lambda: rs.SGD(lr=float("nan")), "lr must be finite"),
    (lambda: rs.SGD(lr=0.1, momentum=1.0), "momentum must be < 1"),
    (lambda: rs.SGD(lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: rs.Adam(eps=0), "eps must be > 0"),
    (lambda: rs.Trainer(rs.MLP([4, 3]), batch_size=0), "batch_size must be >= 1"),
    (lambda: rs.set_num_threads(0), "number of threads must be >= 1"),
    (lambda: rs.Adam(betas=0.9), r"betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda: rs.Adam(betas="ab"), "betas must be a pair"),
    (lambda: rs.Adam(betas=np.array([[0.9, 0.99]])), "betas must be a pair"),
    (lambda: rs.MLP([4, 5, 3], seed=-1), "seed must be None, an int >= 0"),
    (lambda: rs.ReDo(init="nope"), "unknown init 'nope'"),
])
def test_bad_settings_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="activation must be given by name"):
        rs.MLP([4, 3], activation=None)
    with pytest.raises(TypeError, match="model must be a reluscope.MLP"):
        rs.Trainer("not a model")
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        rs.Trainer(rs.MLP([4, 3]), batch_size=2.5)
    with pytest.raises(TypeError, match="layer_sizes must be a list of layer widths"):
        rs.MLP(4)
    for make in (lambda seed: rs.MLP([4, 3], seed=seed), lambda seed: rs.Trainer(
            rs.MLP([4, 3]), seed=seed), lambda seed: rs.ReDo(seed=seed)):
        with pytest.raises(TypeError, match=r"seed must be None, an int >= 0.*got 1.5"):
            make(1.5)


def test_fit_takes_none_for_no_callbacks_and_names_a_lone_one(trainer):
    trainer.fit(GOOD_X, GOOD_Y, callbacks=None, verbose=False)
    assert trainer.epochs_done == 1
    with pytest.raises(TypeError, match=r"wrap a single one: callbacks=\[DeadUnitMonitor"):
        trainer.fit(GOOD_X, GOOD_Y, callbacks=rs.DeadUnitMonitor(GOOD_X), verbose=False)
    assert trainer.epochs_done == 1


@pytest.mark.parametrize("optimizer", [rs.SGD(lr=0.1, momentum=0.9), rs.Adam()])
def test_resetting_elements_that_are_not_there_changes_nothing(model, optimizer):
    trainer = rs.Trainer(model, optimizer=optimizer)
    trainer.fit(GOOD_X, GOOD_Y, verbose=False)
    before = [[b.copy() for b in state.buffers()] for state in optimizer.state]
    cohorts = getattr(optimizer, "cohort_start", None)
    version = optimizer.version
    for args, error, message in [
            ((4, 0), ValueError, "param_index 4 is out of range for 4 parameters with state"),
            ((-5, 0), ValueError, "param_index -5 is out of range for 4"),
            ((0.0, 0), TypeError, "param_index must be an integer"),
            ((0, (9, 0)), IndexError, r"does not address params\[0\]")]:
        with pytest.raises(error, match=message):
            optimizer.reset_elements(*args)
    after = [[b.copy() for b in state.buffers()] for state in optimizer.state]
    assert all(np.array_equal(a, b) for s, t in zip(before, after) for a, b in zip(s, t))
    assert optimizer.version == version
    if cohorts is not None:
        assert np.array_equal(optimizer.cohort_start, cohorts)
        assert all(state.cohort is None for state in optimizer.state)


def test_monitor_queries_name_a_bad_layer_scan_or_epoch():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    monitor = rs.DeadUnitMonitor(x)
    assert monitor.layer_table() == "No scans yet."
    assert monitor.at_risk(0).size == 0
    monitor.observe(0, rs.MLP([4, 5, 3], seed=0))
    with pytest.raises(ValueError, match="layer 1 is out of range for 1 hidden layers"):
        monitor.margins(1)
    with pytest.raises(ValueError, match="layer -2 is out of range for 1 hidden layers"):
        monitor.at_risk(-2)
    with pytest.raises(ValueError, match="scan_index 3 is out of range for 1 scans"):
        monitor.dead_unit_labels(3)
    with pytest.raises(TypeError, match="epoch must be an integer"):
        monitor.died_in("1")
    with pytest.raises(TypeError, match="epoch must be an integer"):
        monitor.observe("1", rs.MLP([4, 5, 3], seed=0))
    assert monitor.history.epochs == [0]
    assert monitor.margins(0).shape == (1, 5) and monitor.dead_unit_labels(-1) == [{}]
    np.testing.assert_array_equal(monitor.margins(-1), monitor.margins(0))


def test_adam_takes_betas_as_any_pair():
    for betas in ((0.8, 0.9), [0.8, 0.9], np.array([0.8, 0.9])):
        adam = rs.Adam(betas=betas)
        assert (adam.beta1, adam.beta2) == (np.float32(0.8), np.float32(0.9))


def test_resetting_elements_counts_negative_parameter_indices_from_the_end(model):
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    rs.Trainer(model, optimizer=optimizer).fit(GOOD_X, GOOD_Y, verbose=False)
    assert np.any(optimizer.state[-1].velocity != 0)
    optimizer.reset_elements(-1, slice(None))
    assert np.all(optimizer.state[3].velocity == 0) and np.any(optimizer.state[2].velocity != 0)


def test_save_checkpoint_takes_none_for_no_callbacks_and_names_a_lone_one(trainer, tmp_path):
    trainer.save_checkpoint(tmp_path / "none.npz", None)
    assert rs.Trainer.load_checkpoint(tmp_path / "none.npz")[1] == []
    with pytest.raises(TypeError, match="wrap a single one"):
        trainer.save_checkpoint(tmp_path / "lone.npz", rs.DeadUnitMonitor(GOOD_X))
    assert not (tmp_path / "lone.npz").exists()


def test_a_seed_numpy_refuses_is_named_for_the_digits_too():
    pytest.importorskip("sklearn")
    from reluscope import datasets

    with pytest.raises(ValueError, match="seed must be None, an int >= 0"):
        datasets.load_digits(seed=-1)


@pytest.mark.parametrize("weights,message", [
    ([], "at least one"),
    ([(np.ones((4, 5)), np.ones(4))], r"bias has shape \(4,\), expected \(5,\)"),
    ([(np.ones((4, 5)), np.ones(5)), (np.ones((6, 2)), np.ones(2))],
     "weights.1. weight has 6 inputs but layer 0 has 5 outputs"),
    ([(np.ones(4), np.ones(1))], "must be 2-D"),
    ([(np.full((2, 2), np.nan), np.ones(2))], "NaN or Inf"),
])
def test_bad_weights_for_from_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        rs.MLP.from_weights(weights)


def test_bad_custom_initializer():
    with pytest.raises(ValueError, match=r"init returned shape \(2, 2\)"):
        rs.MLP([4, 3], init=lambda fan_in, fan_out, rng: np.ones((2, 2)))
