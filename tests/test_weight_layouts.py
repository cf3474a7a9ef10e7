"""MLP.from_weights in reluscope's (fan_in, fan_out) layout and PyTorch's (out, in):
shape errors that name the layout, and the square-layer trap no shape check can see."""

import numpy as np
import pytest

import reluscope as rs


def torch_layout_weights(sizes, seed=0):
    """[(W (out, in), b (out,)), ...] as PyTorch's nn.Linear stores them."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((fan_out, fan_in)).astype(np.float32),
             rng.standard_normal(fan_out).astype(np.float32))
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]


def test_layout_torch_transposes_each_weight():
    weights = torch_layout_weights([3, 17, 1])
    model = rs.MLP.from_weights(weights, layout="torch")
    assert model.layer_sizes == [3, 17, 1]
    for layer, (weight, bias) in zip(model.layers, weights):
        assert layer.weight.flags.c_contiguous
        np.testing.assert_array_equal(layer.weight, weight.T)
        np.testing.assert_array_equal(layer.bias, bias)
    x = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    hidden = np.maximum(x @ weights[0][0].T + weights[0][1], 0)
    np.testing.assert_allclose(model.forward(x), hidden @ weights[1][0].T + weights[1][1],
                               rtol=1e-5, atol=1e-5)


def test_torch_weights_in_the_default_layout_get_a_hint():
    weights = torch_layout_weights([3, 17, 2])
    with pytest.raises(ValueError, match=r"weights\[0\] bias has shape \(17,\), expected \(3,\): "
                                         r"its weight \(17, 3\), read as layout='reluscope' "
                                         r"\(fan_in, fan_out\).*Every weight would fit "
                                         r"transposed.*layout='torch'"):
        rs.MLP.from_weights(weights)


def test_reluscope_weights_said_to_be_torch_get_a_hint():
    weights = rs.MLP([3, 17, 2], seed=0).get_weights()
    with pytest.raises(ValueError, match=r"read as layout='torch' \(out_features, in_features\)"
                                         r".*layout='reluscope'"):
        rs.MLP.from_weights(weights, layout="torch")


def test_no_hint_when_neither_layout_fits():
    weights = [(np.ones((3, 4)), np.ones(4)), (np.ones((5, 2)), np.ones(2))]
    for layout in ("reluscope", "torch"):
        with pytest.raises(ValueError, match="weights") as error:
            rs.MLP.from_weights(weights, layout=layout)
        assert "would fit" not in str(error.value)
    with pytest.raises(ValueError, match=r"weights\[1\] weight has 5 inputs but layer 0 has 4 "
                                         r"outputs: its shape \(5, 2\) is read as "
                                         r"layout='reluscope'"):
        rs.MLP.from_weights(weights)


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match=r"layout must be one of \['reluscope', 'torch'\], "
                                         r"got 'keras'"):
        rs.MLP.from_weights(rs.MLP([2, 2], seed=0).get_weights(), layout="keras")


# The square-layer trap: every layer 4 -> 4, so PyTorch's (out, in) weights also
# fit as (in, out), and only the answers differ. Unit 2 of the first hidden
# layer is planted dead: its incoming weights (row 2 in PyTorch's layout) are
# negative, the inputs positive. Every other weight is positive and large
# enough that, read in the wrong layout, every unit fires on some sample.
SQUARE = 4
DEAD_UNIT = 2


def planted_square_net():
    rng = np.random.default_rng(3)
    weights = []
    for _ in range(3):
        weight = rng.uniform(0.5, 1.0, (SQUARE, SQUARE)).astype(np.float32)
        weights.append((weight, np.zeros(SQUARE, np.float32)))
    weights[0][0][DEAD_UNIT, :] = -1.0
    return weights


def square_inputs():
    return np.random.default_rng(4).uniform(0.0, 1.0, (200, SQUARE)).astype(np.float32)


def dead_units(model):
    return [layer.dead_units.tolist() for layer in rs.scan(model, square_inputs()).layers]


def test_square_layers_in_the_torch_layout_give_the_planted_dead_unit():
    assert dead_units(rs.MLP.from_weights(planted_square_net(), layout="torch")) == [
        [DEAD_UNIT], []]


def test_square_layers_in_the_wrong_layout_pass_silently_and_answer_wrongly():
    # This is the trap the from_weights docstring warns about: no error, another answer.
    assert dead_units(rs.MLP.from_weights(planted_square_net())) == [[], []]


def test_square_layers_through_from_torch_give_the_planted_dead_unit():
    torch = pytest.importorskip("torch", reason="the torch extra (installed by the test extra)")
    module = torch.nn.Sequential(*[m for i in range(3) for m in (
        [torch.nn.Linear(SQUARE, SQUARE)] + ([torch.nn.ReLU()] if i < 2 else []))])
    with torch.no_grad():
        for linear, (weight, bias) in zip(module[::2], planted_square_net()):
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
    assert dead_units(rs.MLP.from_torch(module)) == [[DEAD_UNIT], []]
    assert dead_units(module) == [[DEAD_UNIT], []]
