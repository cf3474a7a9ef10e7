"""Every MLP is built by __init__: from an initializer, from weights, or from layers."""

import numpy as np
import pytest

import reluscope as rs

X = np.random.default_rng(0).standard_normal((17, 5)).astype(np.float32)


@pytest.mark.parametrize("kwargs", [
    {},
    {"init": "rai"},
    {"bias_init": -0.2},
    {"activation": "leaky_relu", "negative_slope": 0.2},
    {"activation": "identity"},
])
def test_from_layers_round_trip_computes_the_same_outputs(kwargs):
    model = rs.MLP([5, 9, 7, 3], seed=3, **kwargs)
    copy = rs.MLP.from_layers(model.layers)
    np.testing.assert_array_equal(copy.forward(X), model.forward(X))
    for (pre_a, out_a), (pre_b, out_b) in zip(copy.forward_layers(X), model.forward_layers(X)):
        np.testing.assert_array_equal(pre_a, pre_b)
        np.testing.assert_array_equal(out_a, out_b)
    assert copy.activation == model.activation and copy.layer_sizes == model.layer_sizes
    # Parameters of its own, and built from weights: no initializer to redraw from.
    for mine, theirs in zip(copy.parameters(), model.parameters()):
        assert mine is not theirs and not np.shares_memory(mine, theirs)
    assert copy.init is None and copy.init_params == {}
    assert model.init == kwargs.get("init", "he_normal")


def test_from_layers_gives_the_same_training_as_from_weights():
    model = rs.MLP([5, 8, 3], seed=1)
    y = np.arange(17) % 3
    a, b = rs.MLP.from_layers(model.layers), rs.MLP.from_weights(model.get_weights())
    for m in (a, b):
        rs.Trainer(m, optimizer=rs.SGD(lr=0.1), seed=0).fit(X, y, epochs=2, verbose=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa, pb)


def test_from_weights_of_square_layers():
    rng = np.random.default_rng(2)
    weights = [(rng.standard_normal((4, 4)), rng.standard_normal(4)) for _ in range(3)]
    model = rs.MLP.from_weights(weights)
    assert model.layer_sizes == [4, 4, 4, 4]
    expected = X[:, :4].astype(np.float64)
    for i, (w, b) in enumerate(weights):
        w32, b32 = w.astype(np.float32), b.astype(np.float32)
        np.testing.assert_array_equal(model.layers[i].weight, w32)
        expected = expected @ w32 + b32
        if i < 2:
            expected = np.maximum(expected, 0.0)
    np.testing.assert_allclose(model.forward(X[:, :4]), expected, rtol=1e-5, atol=1e-5)
    assert model.layers[0].weight.dtype == np.float32 and model.layers[0].weight.flags.c_contiguous


def test_weights_argument_is_what_from_weights_uses():
    weights = rs.MLP([5, 6, 2], seed=0).get_weights()
    direct = rs.MLP([5, 6, 2], "leaky_relu", negative_slope=0.1, weights=weights)
    shortcut = rs.MLP.from_weights(weights, activation="leaky_relu", negative_slope=0.1)
    np.testing.assert_array_equal(direct.forward(X), shortcut.forward(X))
    assert direct.init is None and direct.init_params == {}
    weights[0][0][:] = 0.0  # the model holds copies
    assert np.any(direct.layers[0].weight != 0.0)


@pytest.mark.parametrize("make,message", [
    (lambda w: rs.MLP([5, 6, 2], weights=w, seed=0), "cannot be given with it"),
    (lambda w: rs.MLP([5, 6, 2], weights=w, init="rai"), "cannot be given with it"),
    (lambda w: rs.MLP([5, 6, 2], weights=w, bias_init=0.5), "cannot be given with it"),
    (lambda w: rs.MLP([5, 6, 2], weights=w, init_params={"std": 1.0}), "cannot be given"),
    (lambda w: rs.MLP([5, 7, 2], weights=w), r"needs \(5, 7\)"),
    (lambda w: rs.MLP([5, 6, 6, 2], weights=w), "has 3 layers but weights holds 2"),
    (lambda w: rs.MLP([5, 6, 2], weights=[]), "at least one"),
    (lambda w: rs.MLP.from_layers([]), "at least one Dense layer"),
    (lambda w: rs.MLP.from_layers(rs.MLP([5, 6, 2], seed=0).layers[:1]),
     "output layer and must be linear"),
    (lambda w: rs.MLP.from_layers(
        rs.MLP([5, 6, 6, 2], seed=0).layers[:1]
        + rs.MLP([5, 6, 6, 2], activation="leaky_relu", seed=0).layers[1:]),
     "every hidden layer must have the same activation"),
])
def test_bad_construction_from_weights_or_layers(make, message):
    weights = rs.MLP([5, 6, 2], seed=0).get_weights()
    with pytest.raises(ValueError, match=message):
        make(weights)


def test_from_layers_refuses_what_is_not_a_dense_layer():
    with pytest.raises(TypeError, match=r"layers\[1\] must be a reluscope.layers.Dense"):
        rs.MLP.from_layers([rs.MLP([5, 6, 2], seed=0).layers[0], (np.ones((6, 2)), np.ones(2))])


def test_old_and_positional_constructor_arguments_are_refused():
    with pytest.raises(TypeError, match="bias"):
        rs.MLP([4, 3], bias=0.1)
    with pytest.raises(TypeError, match="positional"):
        rs.MLP([4, 3], "relu", "he_normal")
    with pytest.raises(TypeError, match="positional"):
        rs.MLP.from_weights(rs.MLP([4, 3]).get_weights(), "leaky_relu", 0.1)
    with pytest.raises(TypeError, match="positional"):
        rs.ReDo(0.025, 100, 64)
    redo = rs.ReDo(0.05, 10, sample_size=32, seed=0)
    assert (redo.tau, redo.every, redo.sample_size) == (0.05, 10, 32)
    with pytest.raises(ValueError, match="bias_init must be finite"):
        rs.MLP([4, 3], bias_init=float("nan"))
