"""Validation where values are used: float32 hyper-parameters, attributes changed later,
one model per optimizer, data types, thresholds, and the experiments' arguments."""

import copy
import math

import numpy as np
import pytest

import reluscope as rs
from reluscope.experiments import born_dead, initialization, learning_rate, remedies

X = np.ones((4, 3), np.float32)
Y = np.array([0, 1, 0, 1])

# The float32 edges: 1e-46 rounds to 0 (refused: asked for, it would be nothing),
# 1e-39 is a subnormal, 1e39 and 3.5e38 overflow (the largest float32 is
# 3.4028235e38), 1 - 1e-9 rounds to 1.
ZERO = "becomes 0.0 in float32"
ONE = "becomes 1.0 in float32"
OVERFLOW = "overflows float32"
NOT_FINITE = "must be finite"

HYPERPARAMETERS = {
    "lr": (lambda v: rs.SGD(lr=v), lambda v: rs.Adam(lr=v)),
    "momentum": (lambda v: rs.SGD(momentum=v),),
    "weight_decay": (lambda v: rs.SGD(weight_decay=v), lambda v: rs.Adam(weight_decay=v)),
    "clip_norm": (lambda v: rs.SGD(clip_norm=v), lambda v: rs.Adam(clip_norm=v)),
    "beta1": (lambda v: rs.Adam(betas=(v, 0.999)),),
    "beta2": (lambda v: rs.Adam(betas=(0.9, v)),),
    "eps": (lambda v: rs.Adam(eps=v),),
    "negative_slope": (lambda v: rs.MLP([3, 4, 2], "leaky_relu", negative_slope=v),),
    "bias_init": (lambda v: rs.MLP([3, 4, 2], bias_init=v),),
}

# (parameter, value, None when accepted or the text of the error)
EDGES = [
    ("lr", 1e-46, ZERO), ("lr", 1e-39, None), ("lr", 1e39, OVERFLOW), ("lr", 3.5e38, OVERFLOW),
    ("lr", 3.4e38, None), ("lr", math.nan, NOT_FINITE), ("lr", math.inf, NOT_FINITE),
    ("lr", -0.0, "lr must be > 0"), ("lr", 1 - 1e-9, None),
    ("momentum", 1 - 1e-9, ONE), ("momentum", 1e-46, ZERO), ("momentum", -0.0, None),
    ("momentum", 1e-39, None), ("momentum", math.nan, NOT_FINITE),
    ("weight_decay", 1e39, OVERFLOW), ("weight_decay", 3.5e38, OVERFLOW),
    ("weight_decay", 1e-46, ZERO), ("weight_decay", -0.0, None),
    ("weight_decay", math.inf, NOT_FINITE),
    # clip_norm 0 means "no clipping" to the C++ step: 1e-46 silently switched it off.
    ("clip_norm", 1e-46, ZERO), ("clip_norm", 1e-39, None), ("clip_norm", 1e39, OVERFLOW),
    ("clip_norm", -0.0, "clip_norm must be > 0"),
    ("beta1", 1 - 1e-9, ONE), ("beta2", 1 - 1e-9, ONE), ("beta2", math.nan, NOT_FINITE),
    ("beta1", -0.0, None),
    # eps=1e-50 trained into a TrainingDiverged that blamed the learning rate.
    ("eps", 1e-50, ZERO), ("eps", 1e-46, ZERO), ("eps", 1e-39, None), ("eps", 3.5e38, OVERFLOW),
    ("negative_slope", 1 - 1e-9, ONE), ("negative_slope", 1e-46, ZERO),
    ("negative_slope", math.nan, NOT_FINITE),
    ("bias_init", 3.5e38, OVERFLOW), ("bias_init", 1e39, OVERFLOW), ("bias_init", 1e-46, ZERO),
    ("bias_init", -0.0, None), ("bias_init", math.inf, NOT_FINITE),
]


@pytest.mark.parametrize("name,value,error", EDGES,
                         ids=[f"{n}={v!r}" for n, v, _ in EDGES])
def test_hyperparameters_are_checked_as_the_float32_they_become(name, value, error):
    for make in HYPERPARAMETERS[name]:
        if error is None:
            make(value)
        else:
            with pytest.raises(ValueError, match=error) as raised:
                make(value)
            assert name in str(raised.value)
            if error not in (NOT_FINITE,) and not error.endswith("> 0"):
                assert repr(value) in str(raised.value)  # the value as the user gave it


def test_an_accepted_subnormal_learning_rate_reaches_the_step_as_nonzero():
    optimizer = rs.SGD(lr=1e-39)
    rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer).step(X, Y)
    assert 0.0 < optimizer.settings().lr < 1e-38


@pytest.mark.parametrize("make,name,value,error", [
    (lambda: rs.SGD(lr=0.1), "lr", -0.5, "lr must be > 0"),
    (lambda: rs.SGD(lr=0.1), "lr", 1e-46, ZERO),
    (lambda: rs.SGD(lr=0.1), "lr", "0.1", "lr must be a real number"),
    (lambda: rs.SGD(lr=0.1), "momentum", 1.0, "momentum must be < 1"),
    (lambda: rs.SGD(lr=0.1), "momentum", 1 - 1e-9, ONE),
    (lambda: rs.SGD(lr=0.1), "weight_decay", -1e-3, "weight_decay must be >= 0"),
    (lambda: rs.SGD(lr=0.1), "clip_norm", 1e-46, ZERO),
    (lambda: rs.SGD(lr=0.1), "warmup_steps", -1, "warmup_steps must be >= 0"),
    (lambda: rs.SGD(lr=0.1), "nesterov", True, "nesterov=True needs momentum > 0"),
    (lambda: rs.SGD(lr=0.1, momentum=0.9, nesterov=True), "momentum", 0.0,
     "Nesterov needs momentum > 0"),
    (lambda: rs.Adam(), "eps", 1e-50, ZERO),
    (lambda: rs.Adam(), "beta2", 1.0, "beta2 must be < 1"),
    (lambda: rs.Adam(), "lr", math.nan, NOT_FINITE),
])
def test_hyperparameters_changed_later_are_checked_too(make, name, value, error):
    optimizer = make()
    before = getattr(optimizer, name)
    with pytest.raises((ValueError, TypeError), match=error):
        setattr(optimizer, name, value)
    assert getattr(optimizer, name) == before  # a refused value changes nothing


def test_nesterov_takes_booleans_only():
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        optimizer.nesterov = "yes"


def test_a_negative_learning_rate_set_later_no_longer_trains_by_ascent():
    model = rs.MLP([3, 4, 2], seed=0)
    optimizer = rs.SGD(lr=0.1)
    trainer = rs.Trainer(model, optimizer=optimizer)
    trainer.step(X, Y)
    with pytest.raises(ValueError, match="lr must be > 0"):
        optimizer.lr = -0.5
    weights = [p.copy() for p in model.parameters()]
    losses = [trainer.step(X, Y) for _ in range(5)]
    assert losses[-1] < losses[0]
    assert optimizer.lr == 0.1 and any(
        not np.array_equal(a, b) for a, b in zip(weights, model.parameters()))


@pytest.mark.parametrize("name,value", [
    ("lr", 0.5), ("momentum", 0.7), ("weight_decay", 0.01), ("clip_norm", 2.0),
])
def test_a_valid_change_reaches_the_cached_settings_of_the_step(name, value):
    optimizer = rs.SGD(lr=0.1, momentum=0.5)
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer)
    trainer.step(X, Y)
    setattr(optimizer, name, value)
    assert getattr(optimizer.settings(), name) == pytest.approx(value)


def test_an_adam_change_reaches_the_cached_settings():
    optimizer = rs.Adam(lr=0.01)
    rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer).step(X, Y)
    optimizer.eps, optimizer.beta2 = 1e-6, 0.99
    settings = optimizer.settings()
    assert settings.eps == pytest.approx(1e-6) and settings.beta2 == pytest.approx(0.99)


@pytest.mark.parametrize("value,error", [(-5, ValueError), (0, ValueError), (2.5, TypeError),
                                         (True, TypeError)])
def test_a_batch_size_set_later_is_checked(value, error):
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0), batch_size=2)
    with pytest.raises(error, match="batch_size"):
        trainer.batch_size = value
    assert trainer.batch_size == 2
    history = trainer.fit(X, Y, epochs=1)
    assert trainer.steps_done == 2 and history.loss[0] > 0.0  # -5 ran 0 steps, loss 0.0


def test_an_optimizer_set_later_is_checked():
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    with pytest.raises(TypeError, match="optimizer must be reluscope.SGD or reluscope.Adam"):
        trainer.optimizer = "adam"


# One optimizer, one model.


def test_an_optimizer_used_for_a_second_model_of_the_same_shapes_is_refused():
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer).step(X, Y)
    second = rs.MLP([3, 4, 2], seed=1)
    with pytest.raises(ValueError, match="holds the state .* of another model"):
        rs.Trainer(second, optimizer=optimizer)


def test_replacing_the_trainers_model_with_a_bound_optimizer_is_refused_at_the_step():
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer)
    trainer.step(X, Y)
    trainer.model = rs.MLP([3, 4, 2], seed=1)
    with pytest.raises(ValueError, match="holds the state"):
        trainer.step(X, Y)


def test_reset_releases_the_binding_and_the_state():
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer).step(X, Y)
    optimizer.reset()
    second = rs.MLP([3, 4, 2], seed=1)
    rs.Trainer(second, optimizer=optimizer).step(X, Y)
    assert optimizer.steps == 1


def test_the_binding_is_to_the_model_not_to_its_arrays():
    model = rs.MLP([3, 4, 2], seed=0)
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    trainer = rs.Trainer(model, optimizer=optimizer)
    trainer.step(X, Y)
    velocity = optimizer.state_for(model.parameters())[0].velocity.copy()
    model.layers[0].weight = model.layers[0].weight.copy()  # a new array, same model
    trainer.step(X, Y)
    assert optimizer.steps == 2
    assert np.abs(velocity).sum() > 0  # the momentum was kept, not zeroed
    # The same model's parameters, asked for again (as ReDo does), are fine.
    optimizer.state_for(model.parameters())


def test_a_copy_of_an_optimizer_starts_unbound():
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer).step(X, Y)
    copied = copy.deepcopy(optimizer)
    rs.Trainer(rs.MLP([3, 4, 2], seed=1), optimizer=copied).step(X, Y)
    assert copied.steps == 2 and optimizer.steps == 1


def test_a_model_that_is_gone_still_owns_the_state():
    optimizer = rs.SGD(lr=0.1, momentum=0.9)
    rs.Trainer(rs.MLP([3, 4, 2], seed=0), optimizer=optimizer).step(X, Y)
    import gc

    gc.collect()  # the first model and its trainer are gone; their momentum is not
    with pytest.raises(ValueError, match="holds the state"):
        rs.Trainer(rs.MLP([3, 4, 2], seed=1), optimizer=optimizer)


# Data types.


@pytest.mark.parametrize("x,message", [
    (np.ones((4, 3), dtype=np.complex64), "complex"),
    (np.ones((4, 3)).astype("m8[s]"), "times and durations are not data"),
    (np.ones((4, 3)).astype("M8[s]"), "times and durations are not data"),
    (np.full((4, 3), "1.0"), "must be a numeric array"),
    (np.full((4, 3), 1.0, dtype=object), "must be a numeric array, got dtype object"),
])
def test_features_that_are_not_real_numbers_are_refused(x, message):
    model = rs.MLP([3, 4, 2], seed=0)
    for call in (model.forward, lambda v: rs.scan(model, v), lambda v: rs.born_dead(model, v),
                 lambda v: rs.Trainer(model).fit(v, Y), lambda v: rs.Trainer(model).step(v, Y)):
        with pytest.raises(TypeError, match=message):
            call(x)


@pytest.mark.parametrize("y,message", [
    (np.ones((4, 1), dtype=complex), "complex"),
    (np.ones(4).astype("m8[s]"), "times and durations"),
    (np.full(4, "1"), "must be numeric"),
])
def test_regression_targets_that_are_not_real_numbers_are_refused(y, message):
    trainer = rs.Trainer(rs.MLP([3, 4, 1], seed=0), loss="mse")
    for call in (lambda: trainer.fit(X, y), lambda: trainer.step(X, y)):
        with pytest.raises(TypeError, match=message):
            call()


@pytest.mark.parametrize("y,message", [
    (np.array([0, 1, 0, 1]).astype("m8[s]"), "times and durations"),
    (np.array([0, 1, 0, 1], dtype=complex), "complex"),
    (np.array([0.0, 1.5, 0.0, 1.0]), "non-integer values"),
    (np.array(["0", "1", "0", "1"]), "integer class labels, got dtype <U1"),
])
def test_class_labels_that_are_not_integers_are_refused(y, message):
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    for call in (lambda: trainer.fit(X, y), lambda: trainer.step(X, y)):
        with pytest.raises((TypeError, ValueError), match=message):
            call()


@pytest.mark.parametrize("convert_x,convert_y", [
    (lambda x: x.astype(">f4"), lambda y: y.astype(">i8")),  # other byte order
    (np.asfortranarray, lambda y: y.astype(np.int32)),
    (lambda x: np.repeat(x, 2, axis=0)[::2], lambda y: np.repeat(y, 2)[::2]),  # strided views
    (lambda x: x.astype(np.float64), lambda y: y.astype(np.float64)),
])
def test_a_step_takes_the_same_values_in_any_layout_alike(convert_x, convert_y):
    # Native float32 and int64 arrays skip the conversions (a fast path); any other
    # layout or dtype of the same values must train to the same bits.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 5)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    trained = []
    for x_in, y_in in ((x, y), (convert_x(x), convert_y(y))):
        trainer = rs.Trainer(rs.MLP([5, 7, 3], seed=1), optimizer=rs.SGD(lr=0.1))
        for _ in range(3):
            trainer.step(x_in, y_in)
        trained.append(trainer.model.parameters())
    for native, converted in zip(*trained):
        np.testing.assert_array_equal(native, converted)


@pytest.mark.parametrize("y,shown", [
    (np.array([0, 1, 0, 2**63], dtype=np.uint64), "9223372036854775808"),
    (np.array([0, 1, 0, 2**64 - 1], dtype=np.uint64), "18446744073709551615"),
    ([0, 1, 0, 2**63], "9223372036854775808"),  # numpy makes this list float64
    (np.array([0.0, 1.0, 0.0, 2.0**63]), "9223372036854775808"),
    (np.array([0.0, 1.0, 0.0, -(2.0**62)]), "-4611686018427387904"),
    (np.array([0.0, 1.0, 0.0, -(2.0**65)]), "-3.6893488147419103e\\+19"),
    (np.array([0.0, 1.0, 0.0, 1e300]), "1e\\+300"),
    (np.array([0, 1, 0, 7], dtype=np.uint8), "7"),
])
def test_a_label_out_of_range_is_reported_with_its_true_value(y, shown):
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    with pytest.raises(ValueError, match=f"y has label {shown}, outside \\[0, 2\\)"):
        trainer.fit(X, y)
    # step() leaves the range to the C++ step, which sees int64: a label int64
    # cannot hold is refused before the cast.
    with pytest.raises(ValueError, match=f"label {shown}"):
        trainer.step(X, y)
    assert trainer.steps_done == 0


@pytest.mark.parametrize("weight,message", [
    (np.ones((3, 2), dtype=complex), "weights\\[0\\] weight must be real, got complex"),
    (np.ones((3, 2)).astype("m8[s]"), "times and durations"),
    (np.full((3, 2), "1"), "weights\\[0\\] weight must be a numeric array"),
])
def test_weights_that_are_not_real_numbers_are_refused(weight, message):
    with pytest.raises(TypeError, match=message):
        rs.MLP.from_weights([(weight, np.zeros(2))])


def test_complex_biases_are_refused():
    with pytest.raises(TypeError, match="weights\\[0\\] bias must be real"):
        rs.MLP.from_weights([(np.ones((3, 2)), np.zeros(2, dtype=complex))])


# Thresholds.


@pytest.mark.parametrize("tau,message", [(math.nan, NOT_FINITE), (math.inf, NOT_FINITE),
                                         (-0.1, "tau must be >= 0"), ("0.1", "real number")])
def test_a_dormancy_threshold_must_be_a_finite_number_at_least_zero(tau, message):
    layer = rs.scan(rs.MLP([3, 4, 2], seed=0), np.random.default_rng(0).random((8, 3))).layers[0]
    with pytest.raises((ValueError, TypeError), match=message):
        layer.dormant_units(tau)
    with pytest.raises((ValueError, TypeError), match=message):
        rs.ReDo(tau=tau)


def test_a_dormancy_threshold_of_zero_or_more_is_accepted():
    layer = rs.scan(rs.MLP([3, 4, 2], seed=0), np.random.default_rng(0).random((8, 3))).layers[0]
    assert len(layer.dormant_units(-0.0)) <= len(layer.dormant_units(1e9)) == layer.n_units


@pytest.mark.parametrize("options,message", [
    ({"large_update_factor": math.nan}, "large_update_factor must be finite"),
    ({"large_relative_update": -1.0}, "large_relative_update must be > 0"),
    ({"large_update_factor": 0.0}, "large_update_factor must be > 0"),
])
def test_the_cause_rule_thresholds_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        rs.DeadUnitMonitor(X, **options)
    with pytest.raises(ValueError, match=message):
        rs.CauseRules(**options)


@pytest.mark.parametrize("options,message", [
    ({"fraction": math.nan}, "fraction must be finite"),
    ({"window": 0}, "window must be >= 1"),
])
def test_at_risk_checks_its_rule(options, message):
    history = rs.UnitHistory(X)
    history.observe(0, rs.MLP([3, 4, 2], seed=0))
    with pytest.raises(ValueError, match=message):
        history.at_risk(0, **options)


# The public API's other arguments.


def test_scan_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model must be a reluscope.MLP, a PyTorch nn.Sequential "
                                        ".*, got str; build a reluscope.MLP with MLP.from_torch"):
        rs.scan("model", X)


def test_fit_refuses_what_is_not_a_callback():
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    with pytest.raises(TypeError, match=r"callbacks\[1\] must be a reluscope.Callback, got dict"):
        trainer.fit(X, Y, callbacks=[rs.Callback(), {}])
    assert trainer.steps_done == 0


# The experiments check their arguments before they run.


@pytest.mark.parametrize("call,error,message", [
    # --samples 0 exited 0 with NaN statistics.
    (lambda: initialization.init_study(n_samples=0), ValueError, "n_samples must be >= 1"),
    (lambda: initialization.init_study(relu_layers=0), ValueError, "relu_layers must be >= 1"),
    (lambda: initialization.init_study(width=2.5), TypeError, "width must be an integer"),
    (lambda: born_dead.born_dead_study(abs_fit_networks=-1), ValueError,
     "abs_fit_networks must be >= 0"),
    (lambda: born_dead.born_dead_study(widths=[2, 2.5]), TypeError, "each of widths"),
    (lambda: born_dead.born_dead_study(widths=[]), ValueError, "widths must hold"),
    (lambda: born_dead.born_dead_study(max_depth=0), ValueError, "max_depth must be >= 1"),
    (lambda: born_dead.born_dead_study(x=np.ones((5, 1), dtype=complex)), TypeError, "complex"),
    (lambda: born_dead.born_dead_study(x=np.ones((5, 1)).astype("m8[s]")), TypeError,
     "times and durations"),
    (lambda: born_dead.born_dead_study(x=np.ones((5, 1)), reference_point=5), ValueError,
     "reference_point 5 is not a row of x"),
    (lambda: born_dead.born_dead_study(n_jobs=0), ValueError, "n_jobs must be >= 1"),
    (lambda: born_dead.abs_fit_collapse(n_networks=0), ValueError, "n_networks must be >= 1"),
    (lambda: learning_rate.lr_sweep(lrs=[0.1, math.nan]), ValueError, NOT_FINITE),
    (lambda: learning_rate.lr_sweep(lrs=[1e-46]), ValueError, ZERO),
    (lambda: learning_rate.lr_sweep(lrs=[]), ValueError, "lrs must hold at least one"),
    (lambda: learning_rate.lr_sweep(seeds=[-1]), ValueError, "each of seeds must be >= 0"),
    (lambda: learning_rate.lr_sweep(epochs=0), ValueError, "epochs must be >= 1"),
    (lambda: learning_rate.lr_sweep(momentum=1 - 1e-9), ValueError, ONE),
    (lambda: remedies.compare_remedies(lr=1e39), ValueError, OVERFLOW),
    (lambda: remedies.compare_remedies(seeds=[]), ValueError, "seeds must hold at least one"),
    (lambda: remedies.compare_remedies(max_train=0), ValueError, "max_train must be >= 1"),
    (lambda: remedies.compare_remedies(hidden=(128, 0)), ValueError, "each of hidden"),
])
def test_experiments_refuse_bad_arguments_before_running(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("suffix", ["/", ""])
def test_an_experiment_refuses_an_output_prefix_without_a_file_name(tmp_path, suffix):
    prefix = str(tmp_path) + "/" if suffix == "/" else ""
    with pytest.raises(ValueError, match="has no file name"):
        born_dead.run(prefix, widths=[2], max_depth=2, n_networks=2, abs_fit_networks=0)
    assert list(tmp_path.iterdir()) == []


def test_an_experiment_refuses_an_output_prefix_below_a_file_before_running(tmp_path):
    (tmp_path / "file").write_text("")
    # n_samples=0 would fail too: the output is checked first, before any work.
    with pytest.raises(ValueError, match="is a file, not a folder"):
        initialization.run(str(tmp_path / "file" / "out"), n_samples=0)
