"""The one-call C++ training step against the layer-by-layer Python path."""

import contextlib

import numpy as np
import pytest
from tests import reference

import reluscope as rs

OPTIMIZERS = {
    "sgd": lambda: rs.SGD(lr=0.05),
    "momentum": lambda: rs.SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda: rs.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: rs.Adam(lr=1e-2, weight_decay=1e-3),
}


def data(loss, n=97, n_features=13, n_outputs=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_features)).astype(np.float32)
    if loss == "cross_entropy":
        return x, rng.integers(0, n_outputs, n)
    return x, rng.standard_normal((n, n_outputs)).astype(np.float32)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_fused_step_equals_layer_by_layer_path(simd_target, num_threads, optimizer, loss):
    x, y = data(loss)
    sizes = [13, 17, 3, 33, 5]
    fused = rs.MLP(sizes, activation="leaky_relu", negative_slope=0.05, seed=1)
    manual = rs.MLP.from_weights(fused.get_weights(), activation="leaky_relu",
                                 negative_slope=0.05)
    trainer = rs.Trainer(fused, loss=loss, optimizer=OPTIMIZERS[optimizer]())
    manual_update = reference.LayerByLayerUpdate(OPTIMIZERS[optimizer]())
    for start in (0, 40, 80, 0):
        batch = slice(start, start + 40)
        fused_loss = trainer.step(x[batch], y[batch])
        manual_loss, grads = manual.loss_and_gradients(x[batch], y[batch], loss=loss)
        assert manual_update(manual.parameters(), [g for pair in grads for g in pair])
        assert fused_loss == manual_loss
        for a, b in zip(fused.parameters(), manual.parameters()):
            np.testing.assert_array_equal(a, b)


def test_fit_without_shuffle_equals_consecutive_steps():
    x, y = data("cross_entropy")
    first = rs.MLP([13, 8, 5], seed=2)
    second = rs.MLP.from_weights(first.get_weights())
    history = rs.Trainer(first, batch_size=25).fit(x, y, epochs=1, shuffle=False)
    trainer = rs.Trainer(second, batch_size=25)
    losses = [trainer.step(x[s:s + 25], y[s:s + 25]) for s in range(0, 97, 25)]
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_array_equal(a, b)
    sizes = [25, 25, 25, 22]
    assert history.loss[0] == pytest.approx(np.dot(losses, sizes) / 97, rel=1e-12)


def test_firing_counts_are_counted_in_the_training_forward_pass(simd_target):
    x, y = data("cross_entropy", n=300)
    model = rs.MLP([13, 20, 10, 5], seed=3)
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.01))
    expected = [np.zeros(20, np.int64), np.zeros(10, np.int64)]
    for start in range(0, 300, 64):
        batch = x[start:start + 64]
        h = batch
        for i, layer in enumerate(model.hidden_layers):
            pre, h = layer.forward(h)
            expected[i] += (pre > 0).sum(axis=0)
        trainer.step(batch, y[start:start + 64])
    for got, want in zip(trainer.firing_counts, expected):
        np.testing.assert_array_equal(got, want)
    trainer.reset_firing_counts()
    assert all(c.sum() == 0 for c in trainer.firing_counts)


def test_firing_counts_can_be_switched_off():
    x, y = data("cross_entropy")
    trainer = rs.Trainer(rs.MLP([13, 20, 5], seed=3), track_firing=False)
    trainer.fit(x, y, epochs=1)
    assert trainer.firing_counts[0].sum() == 0


def test_fit_resets_firing_counts_every_epoch():
    x, y = data("cross_entropy")
    trainer = rs.Trainer(rs.MLP([13, 20, 5], seed=3), optimizer=rs.SGD(lr=1e-6), batch_size=97)
    trainer.fit(x, y, epochs=2)
    pre = x @ trainer.model.layers[0].weight + trainer.model.layers[0].bias
    # One batch per epoch: the counts are those of the last epoch's single step.
    assert np.abs(trainer.firing_counts[0] - (pre > 0).sum(axis=0)).max() <= 1


def test_replacing_parameters_rebuilds_the_step():
    x, y = data("cross_entropy")
    model = rs.MLP([13, 8, 5], seed=2)
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.1, momentum=0.9))
    trainer.step(x, y)
    model.layers[0].weight = np.zeros((13, 8), np.float32)
    trainer.step(x, y)
    # Zero weights and biases in the first layer: only the bias moves it.
    assert model.layers[0].weight.any() or model.layers[0].bias.any()
    manual = rs.MLP.from_weights(model.get_weights())
    trainer.optimizer.reset()
    trainer.step(x, y)  # fresh optimizer state: a plain gradient step
    loss, grads = manual.loss_and_gradients(x, y)
    np.testing.assert_allclose(model.layers[1].weight,
                               manual.layers[1].weight - 0.1 * grads[1][0], rtol=1e-5,
                               atol=1e-7)


def test_switching_momentum_on_later_works():
    x, y = data("cross_entropy")
    model = rs.MLP([13, 8, 5], seed=2)
    optimizer = rs.SGD(lr=0.1)
    trainer = rs.Trainer(model, optimizer=optimizer)
    trainer.step(x, y)
    optimizer.momentum = 0.9
    trainer.step(x, y)
    trainer.step(x, y)
    assert np.abs(optimizer.state_for(model.parameters())[0].velocity).sum() > 0


# 26 parameters, none over 4,096 elements: on 2 threads the step updates whole
# parameters side by side (one run of them per thread) instead of each on one thread.
MANY_SMALL_LAYERS = [32] + [64] * 12 + [10]
two_processors = pytest.mark.skipif(rs.build_info()["available_processors"] < 2,
                                    reason="needs 2 processors for a second kernel thread")


@contextlib.contextmanager
def kernel_threads(n):
    previous = rs.get_num_threads()
    rs.set_num_threads(n)
    try:
        yield
    finally:
        rs.set_num_threads(previous)


def train_and_collect(optimizer, threads, tie_layers=None, sizes=MANY_SMALL_LAYERS,
                            batch_size=40):
    """Parameters, optimizer buffers, death records and gradient sums after 6 steps.

    tie_layers: (i, j), layer j given layer i's weight array.
    """
    x, y = data("cross_entropy", n=3 * batch_size, n_features=sizes[0], n_outputs=sizes[-1],
                seed=4)
    model = rs.MLP(sizes, seed=5)
    if tie_layers is not None:
        i, j = tie_layers
        model.layers[j].weight = model.layers[i].weight
    opt = OPTIMIZERS[optimizer]()
    trainer = rs.Trainer(model, optimizer=opt, batch_size=batch_size, seed=6,
                         track_gradients=True)
    with kernel_threads(threads):
        trainer.fit(x, y, epochs=2)
    buffers = [b for state in opt.state for b in state.buffers()]
    return model.parameters(), buffers, trainer.last_firing, trainer.gradient_magnitude


def assert_trains_alike_on_one_and_two_threads(optimizer, **model):
    """train_and_collect on 1 and on 2 threads gives every array bit for bit."""
    one = train_and_collect(optimizer, threads=1, **model)
    two = train_and_collect(optimizer, threads=2, **model)
    for arrays_one, arrays_two in zip(one, two):
        assert len(arrays_one) == len(arrays_two) > 0
        for a, b in zip(arrays_one, arrays_two):
            # Records as rows of float64 (a structured array never equals one with NaN).
            np.testing.assert_array_equal(a.view(np.float64), b.view(np.float64))
    # Death records were written, so the update statistics were compared too.
    assert any((records["step"] > 0).any() for records in one[2])


@two_processors
@pytest.mark.parametrize("tie_layers", [None, (1, 7)])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_many_small_parameters_train_alike_on_one_and_two_threads(optimizer, tie_layers):
    # Tied: one array is the weight of layers 1 and 7, whose updates would fall
    # to different threads at about the same time; it takes them in turn, as on
    # one thread.
    assert_trains_alike_on_one_and_two_threads(optimizer, tie_layers=tie_layers)


@two_processors
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_deep_narrow_model_trains_alike_on_one_and_two_threads(optimizer):
    # 256 rows through 128-wide layers: on 2 threads the forward splits the
    # batch's rows between the threads for the whole stack, and the backward
    # runs the grad_x chain on one thread and the weight gradients on the other.
    assert_trains_alike_on_one_and_two_threads(optimizer, sizes=[100] + [128] * 5 + [10],
                                               batch_size=256)


@two_processors
def test_a_late_parameter_that_would_turn_nan_stops_the_whole_update_on_two_threads():
    # The last layer's parameters are updated by the second thread; the first
    # thread's must stay unwritten too.
    x, y = data("cross_entropy", n=40, n_features=32, n_outputs=10, seed=4)
    model = rs.MLP(MANY_SMALL_LAYERS, seed=5)
    optimizer = rs.SGD(lr=0.05, momentum=0.9)
    trainer = rs.Trainer(model, optimizer=optimizer)
    with kernel_threads(2):
        trainer.step(x, y)
        optimizer.state[-1].velocity[:] = np.nan
        before = [p.copy() for p in model.parameters()]
        with pytest.raises(rs.TrainingDiverged, match="would make a parameter NaN or Inf"):
            trainer.step(x, y)
    for now, then in zip(model.parameters(), before):
        np.testing.assert_array_equal(now, then)
