"""Non-finite pre-activations are refused, never counted as dead; born_dead needs two
distinct samples; the layers are checked at every entry point that uses them."""

import numpy as np
import pytest

import reluscope as rs
from reluscope import NonFiniteActivations


def small_model(seed=0):
    return rs.MLP([4, 8, 6, 3], seed=seed)


def data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


# Every entry point that runs the model's layers on data, as f(model, x, y).
ENTRY_POINTS = {
    "forward": lambda model, x, y: model.forward(x),
    "predict": lambda model, x, y: model.predict(x),
    "predict_proba": lambda model, x, y: model.predict_proba(x),
    "forward_layers": lambda model, x, y: model.forward_layers(x),
    "loss_and_gradients": lambda model, x, y: model.loss_and_gradients(x, y),
    "scan": lambda model, x, y: rs.scan(model, x),
    "born_dead": lambda model, x, y: rs.born_dead(model, x),
    "evaluate": lambda model, x, y: rs.Trainer(model).evaluate(x, y),
    "monitor": lambda model, x, y: rs.DeadUnitMonitor(x).observe(0, model),
    "unit_history": lambda model, x, y: rs.UnitHistory(x).observe(0, model),
}
# The trainer's own step, which also writes the layers.
TRAINING_ENTRY_POINTS = {
    "step": lambda model, x, y: rs.Trainer(model).step(x, y),
    "fit": lambda model, x, y: rs.Trainer(model).fit(x, y, verbose=False),
    "fit_with_monitor": lambda model, x, y: rs.Trainer(model).fit(
        x, y, callbacks=[rs.DeadUnitMonitor(x)], verbose=False),
}


# Non-finite pre-activations.

def overflowing_inputs():
    x, y = data()
    x[[3, 7, 8]] = 3e38  # finite in float32, but x @ weight overflows
    return x, y


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_inputs_that_overflow_float32_are_refused(entry):
    model = small_model()
    x, y = overflowing_inputs()
    with pytest.raises(NonFiniteActivations) as error:
        ENTRY_POINTS[entry](model, x, y)
    assert error.value.layer == 0
    assert error.value.n_samples == 3
    assert error.value.first_sample == 3
    assert error.value.cause == "inputs too large"
    message = str(error.value)
    assert "layer 0 has NaN or Inf pre-activations on 3 of 20 samples (first: sample 3)" in message
    assert "the inputs are too large" in message
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_nan_weight_set_after_construction_is_refused(entry):
    model = small_model()
    model.layers[1].weight[2, 4] = np.nan
    x, y = data()
    with pytest.raises(NonFiniteActivations, match=r"layers\[1\]\.weight holds 1 NaN") as error:
        ENTRY_POINTS[entry](model, x, y)
    # A NaN weight poisons its unit on every sample, and only that unit.
    assert (error.value.layer, error.value.n_samples, error.value.n_units) == (1, 20, 1)
    assert error.value.cause == "non-finite weights"


def test_finite_weights_too_large_for_the_data_are_named():
    # A diverging run's last finite state: finite weights whose products overflow.
    model = small_model()
    model.layers[1].weight *= np.float32(1e37)
    model.layers[2].weight *= np.float32(1e37)
    x, _ = data()
    with pytest.raises(NonFiniteActivations, match="the weights are too large") as error:
        model.forward(x)
    assert error.value.cause == "weights too large" and error.value.layer == 2


def test_an_inf_bias_in_the_output_layer_is_refused_by_forward():
    model = small_model()
    model.layers[2].bias[0] = np.inf
    x, _ = data()
    with pytest.raises(NonFiniteActivations, match=r"layer 2 .* layers\[2\]\.bias holds 1"):
        model.forward(x)


def test_nan_is_never_counted_as_dead():
    # Before the check, the ReLU turned the NaN into 0: a whole layer "dead",
    # born_dead said "signal collapse" and forward returned finite constants.
    model = small_model()
    model.layers[0].weight[:] = np.nan
    x, _ = data()
    for entry in (rs.scan, rs.born_dead, lambda m, x: m.forward(x)):
        with pytest.raises(NonFiniteActivations, match="would pass for dead"):
            entry(model, x)


def test_a_later_chunk_is_checked_and_counted_over_all_samples():
    model = small_model()
    x, _ = data(n=50)
    x[[41, 47]] = -3e38
    with pytest.raises(NonFiniteActivations) as error:
        model.forward(x, chunk_size=8)
    assert (error.value.n_samples, error.value.first_sample) == (2, 41)
    with pytest.raises(NonFiniteActivations) as error:
        rs.scan(model, x, chunk_size=8)
    assert (error.value.n_samples, error.value.first_sample) == (2, 41)


def test_finite_inputs_near_the_limit_still_work():
    model = rs.MLP.from_weights([(np.full((2, 2), 0.5), np.zeros(2)),
                                 (np.eye(2), np.zeros(2))])
    x = np.array([[1e38, 1e38], [1.0, -1.0]], np.float32)
    np.testing.assert_array_equal(model.forward(x), np.array([[1e38, 1e38], [0, 0]], np.float32))
    assert rs.scan(model, x).n_dead == 0


# born_dead needs two distinct samples.

def test_born_dead_refuses_a_single_sample():
    x, _ = data()
    with pytest.raises(ValueError, match="at least two distinct samples of x, got 1"):
        rs.born_dead(small_model(), x[:1])


def test_born_dead_refuses_identical_samples():
    x, _ = data()
    same = np.repeat(x[:1], 30, axis=0)
    with pytest.raises(ValueError, match="all 30 samples are the same"):
        rs.born_dead(small_model(), same)
    with pytest.raises(ValueError, match="all 30 samples are the same"):
        rs.born_dead(small_model(), same, chunk_size=7)


def test_born_dead_accepts_two_distinct_samples_even_in_a_late_chunk():
    x, _ = data()
    rows = np.repeat(x[:1], 30, axis=0)
    rows[29] = x[1]
    report = rs.born_dead(small_model(), rows, chunk_size=7)
    assert report.verdict == "alive"


# Layer invariants.

def width_zero_output(model):
    model.layers[0].weight = np.zeros((4, 0), np.float32)


def width_zero_hidden(model):
    # Consistent shapes, a hidden layer of no unit: SIGFPE in the training step before.
    model.layers[1].weight = np.zeros((8, 0), np.float32)
    model.layers[1].bias = np.zeros(0, np.float32)
    model.layers[2].weight = np.zeros((0, 3), np.float32)


def float64_weight(model):
    model.layers[1].weight = model.layers[1].weight.astype(np.float64)


def fortran_weight(model):
    model.layers[1].weight = np.asfortranarray(model.layers[1].weight)


def int64_weight(model):
    model.layers[1].weight = np.ones((8, 6), np.int64)


def complex_weight(model):
    model.layers[1].weight = model.layers[1].weight.astype(np.complex64)


def short_bias(model):
    model.layers[1].bias = np.zeros(5, np.float32)


def chain_broken(model):
    model.layers[1].weight = np.ones((7, 6), np.float32)


def one_dimensional_weight(model):
    model.layers[2].weight = np.ones(6, np.float32)


def list_weight(model):
    model.layers[0].weight = model.layers[0].weight.tolist()


def strided_bias(model):
    model.layers[0].bias = np.zeros(16, np.float32)[::2]


def not_a_layer(model):
    model.layers[1] = "Dense(8 -> 6)"


BROKEN = [
    (width_zero_output, ValueError, r"layers\[0\] has width 0 \(weight shape \(4, 0\)\)"),
    (width_zero_hidden, ValueError, r"layers\[1\] has width 0 \(weight shape \(8, 0\)\)"),
    (float64_weight, TypeError, r"layers\[1\]\.weight has dtype float64 \(shape \(8, 6\)\), "
                                r"needs float32"),
    (fortran_weight, ValueError, r"layers\[1\]\.weight of shape \(8, 6\) is not C-contiguous"),
    (int64_weight, TypeError, r"layers\[1\]\.weight has dtype int64 \(shape \(8, 6\)\)"),
    (complex_weight, TypeError, r"layers\[1\]\.weight has dtype complex64"),
    (short_bias, ValueError, r"layers\[1\]\.bias has shape \(5,\) but the weight \(8, 6\) "
                             r"needs \(6,\)"),
    (chain_broken, ValueError, r"layers\[1\]\.weight has shape \(7, 6\) but layers\[0\] has 8 "
                               r"outputs: it needs \(8, 6\)"),
    (one_dimensional_weight, ValueError, r"layers\[2\]\.weight must be 2-D \(fan_in, fan_out\), "
                                         r"has shape \(6,\)"),
    (list_weight, TypeError, r"layers\[0\]\.weight must be a numpy array, got list"),
    (strided_bias, ValueError, r"layers\[0\]\.bias of shape \(8,\) is not C-contiguous"),
    (not_a_layer, TypeError, r"layers\[1\] must be a reluscope.layers.Dense, got str"),
]


@pytest.mark.parametrize("entry", {**ENTRY_POINTS, **TRAINING_ENTRY_POINTS})
@pytest.mark.parametrize("breakage,error,message", BROKEN,
                         ids=[b[0].__name__ for b in BROKEN])
def test_a_broken_layer_is_named_at_every_entry_point(entry, breakage, error, message):
    model = small_model()
    breakage(model)
    x, y = data()
    with pytest.raises(error, match=message):
        {**ENTRY_POINTS, **TRAINING_ENTRY_POINTS}[entry](model, x, y)


def test_the_cause_rules_check_the_model_they_read():
    model = small_model()
    x, _ = data()
    history = rs.UnitHistory(x)
    history.observe(0, model)
    short_bias(model)
    with pytest.raises(ValueError, match=r"layers\[1\]\.bias has shape \(5,\)"):
        rs.CauseRules().certify(history, model, 0, 0, None)


def test_check_layers_is_public_and_passes_a_fresh_model():
    model = small_model()
    model.check_layers()
    model.check_layers(writeable=True)


@pytest.mark.parametrize("entry", TRAINING_ENTRY_POINTS)
def test_the_trainer_needs_writeable_parameters(entry):
    model = small_model()
    model.layers[2].bias.setflags(write=False)
    x, y = data()
    model.forward(x)  # reading is fine
    with pytest.raises(ValueError, match=r"layers\[2\]\.bias of shape \(3,\) is read-only"):
        TRAINING_ENTRY_POINTS[entry](model, x, y)


def test_a_layer_broken_between_steps_is_named_before_the_next_step():
    model = small_model()
    trainer = rs.Trainer(model)
    x, y = data()
    trainer.step(x, y)
    width_zero_hidden(model)
    with pytest.raises(ValueError, match=r"layers\[1\] has width 0"):
        trainer.step(x, y)


def test_a_layer_broken_by_a_callback_between_epochs_is_named():
    class Breaks(rs.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            float64_weight(trainer.model)

    x, y = data()
    trainer = rs.Trainer(small_model())
    with pytest.raises(TypeError, match=r"layers\[1\]\.weight has dtype float64"):
        trainer.fit(x, y, epochs=2, callbacks=[Breaks()], verbose=False)
    assert trainer.epochs_done == 1


def test_a_layer_broken_by_a_callback_between_steps_is_named():
    class Breaks(rs.Callback):
        def on_step_end(self, trainer, step):
            fortran_weight(trainer.model)

    x, y = data()
    trainer = rs.Trainer(small_model(), batch_size=5)
    with pytest.raises(ValueError, match=r"layers\[1\]\.weight .* is not C-contiguous"):
        trainer.fit(x, y, callbacks=[Breaks()], verbose=False)
    assert trainer.steps_done == 1
