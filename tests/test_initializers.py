"""Weight initializers: shapes, seeding, and the documented scales."""

import numpy as np
import pytest

import reluscope as rs
from reluscope.initializers import INITIALIZERS, initialize

ALL = sorted(INITIALIZERS)


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_and_seeding(name):
    first = rs.MLP([7, 13, 3], init=name, seed=11)
    second = rs.MLP([7, 13, 3], init=name, seed=11)
    for a, b in zip(first.layers, second.layers):
        assert a.weight.shape == (a.fan_in, a.fan_out) and a.weight.dtype == np.float32
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
        if name != "rai":  # the only initializer that draws biases
            np.testing.assert_array_equal(a.bias, np.zeros(a.fan_out))
    if name not in ("zeros", "constant"):
        third = rs.MLP([7, 13, 3], init=name, seed=12)
        assert not np.array_equal(first.layers[0].weight, third.layers[0].weight)


@pytest.mark.parametrize("name,expected_std", [
    ("he_normal", np.sqrt(2 / 400)),
    ("he_uniform", np.sqrt(2 / 400)),
    ("glorot_normal", np.sqrt(2 / 700)),
    ("glorot_uniform", np.sqrt(2 / 700)),
    ("lecun_normal", np.sqrt(1 / 400)),
])
def test_scale_follows_fan(name, expected_std):
    weight, _ = initialize(name, 400, 300, np.random.default_rng(0))
    assert abs(weight.mean()) < 0.01 * expected_std * 10
    assert weight.std() == pytest.approx(expected_std, rel=0.01)


def test_parameterized_initializers():
    rng = np.random.default_rng(0)
    normal, _ = initialize("normal", 300, 300, rng, {"std": 0.28})
    assert normal.std() == pytest.approx(0.28, rel=0.01)
    uniform, _ = initialize("uniform", 300, 300, rng, {"limit": 0.5})
    assert uniform.min() >= -0.5 and uniform.max() <= 0.5
    assert uniform.std() == pytest.approx(0.5 / np.sqrt(3), rel=0.01)
    np.testing.assert_array_equal(initialize("constant", 2, 3, rng, {"value": 0.25})[0],
                                  np.full((2, 3), 0.25))


@pytest.mark.parametrize("fan_in,fan_out", [(50, 20), (20, 50), (30, 30)])
def test_orthogonal_has_orthonormal_rows_or_columns(fan_in, fan_out):
    weight = initialize("orthogonal", fan_in, fan_out, np.random.default_rng(0),
                        {"gain": 2.0})[0].astype(np.float64)
    small = min(fan_in, fan_out)
    gram = weight.T @ weight if fan_in >= fan_out else weight @ weight.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_constant_bias_option():
    model = rs.MLP([3, 4, 2], bias_init=0.1, seed=0)
    np.testing.assert_array_equal(model.layers[0].bias, np.full(4, 0.1, np.float32))


def test_custom_initializer_callable():
    model = rs.MLP([3, 4, 2], init=lambda fan_in, fan_out, rng: np.ones((fan_in, fan_out)))
    np.testing.assert_array_equal(model.layers[1].weight, np.ones((4, 2)))


def _rai_parameters(fan_in, fan_out, seed=0, **params):
    weight, bias = initialize("rai", fan_in, fan_out, np.random.default_rng(seed), params)
    return np.vstack([weight, bias[None, :]]).astype(np.float64)  # (fan_in + 1, fan_out)


def test_rai_symmetric_part_has_the_documented_variance():
    fan_in = 40
    params = _rai_parameters(fan_in, 20000)
    # Drop each unit's largest entry: a Beta(2, 1) draw wins over N(0, 0.095^2) almost surely.
    keep = np.ones_like(params, dtype=bool)
    keep[params.argmax(axis=0), np.arange(params.shape[1])] = False
    symmetric = params[keep]
    sigma = 0.6007 / np.sqrt(fan_in)
    assert abs(symmetric.mean()) < 4 * sigma / np.sqrt(symmetric.size)
    assert symmetric.std() == pytest.approx(sigma, rel=0.01)


def test_rai_one_positive_beta_entry_per_unit_at_a_uniform_position():
    fan_in, units = 3, 40000
    params = _rai_parameters(fan_in, units, std_scale=0.0)  # only the Beta entries remain
    nonzero = params != 0
    assert (nonzero.sum(axis=0) == 1).all()
    draws = params[nonzero]
    assert (draws > 0).all() and (draws < 1).all()
    # Beta(2, 1): mean 2/3, variance 1/18.
    assert draws.mean() == pytest.approx(2 / 3, abs=4 * np.sqrt(1 / 18 / units))
    assert draws.var() == pytest.approx(1 / 18, rel=0.03)
    # The chosen position (one of 3 weights or the bias) is uniform over the 4.
    counts = nonzero.sum(axis=1)
    expected = units / (fan_in + 1)
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected))


def test_rai_beta_parameters_are_configurable():
    params = _rai_parameters(5, 20000, std_scale=0.0, beta_a=1.0, beta_b=3.0)
    assert params[params != 0].mean() == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ValueError, match="beta_a"):
        _rai_parameters(5, 3, beta_a=0.0)


def test_rai_sets_biases_in_a_model():
    model = rs.MLP([6, 50, 50, 2], init="rai", seed=3)
    assert np.count_nonzero(model.layers[0].bias) == 50


def test_custom_initializer_may_return_a_bias():
    model = rs.MLP([3, 4, 2], init=lambda fan_in, fan_out, rng: (np.ones((fan_in, fan_out)),
                                                                  np.full(fan_out, 0.5)))
    np.testing.assert_array_equal(model.layers[0].bias, np.full(4, 0.5, np.float32))
    with pytest.raises(ValueError, match="bias of shape"):
        rs.MLP([3, 4, 2], init=lambda fan_in, fan_out, rng: (np.ones((fan_in, fan_out)),
                                                              np.ones(fan_out + 1)))
