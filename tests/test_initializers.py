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
    weight = initialize(name, 400, 300, np.random.default_rng(0))
    assert abs(weight.mean()) < 0.01 * expected_std * 10
    assert weight.std() == pytest.approx(expected_std, rel=0.01)


def test_parameterized_initializers():
    rng = np.random.default_rng(0)
    assert initialize("normal", 300, 300, rng, {"std": 0.28}).std() == pytest.approx(0.28, rel=0.01)
    uniform = initialize("uniform", 300, 300, rng, {"limit": 0.5})
    assert uniform.min() >= -0.5 and uniform.max() <= 0.5
    assert uniform.std() == pytest.approx(0.5 / np.sqrt(3), rel=0.01)
    np.testing.assert_array_equal(initialize("constant", 2, 3, rng, {"value": 0.25}),
                                  np.full((2, 3), 0.25))


@pytest.mark.parametrize("fan_in,fan_out", [(50, 20), (20, 50), (30, 30)])
def test_orthogonal_has_orthonormal_rows_or_columns(fan_in, fan_out):
    weight = initialize("orthogonal", fan_in, fan_out, np.random.default_rng(0),
                        {"gain": 2.0}).astype(np.float64)
    small = min(fan_in, fan_out)
    gram = weight.T @ weight if fan_in >= fan_out else weight @ weight.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_constant_bias_option():
    model = rs.MLP([3, 4, 2], bias=0.1, seed=0)
    np.testing.assert_array_equal(model.layers[0].bias, np.full(4, 0.1, np.float32))


def test_custom_initializer_callable():
    model = rs.MLP([3, 4, 2], init=lambda fan_in, fan_out, rng: np.ones((fan_in, fan_out)))
    np.testing.assert_array_equal(model.layers[1].weight, np.ones((4, 2)))
