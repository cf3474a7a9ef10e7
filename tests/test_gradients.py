"""Model gradients: one network worked by hand, and central finite differences."""

import numpy as np
import pytest
import reference

import reluscope as rs


def test_tiny_network_worked_by_hand():
    # 2 inputs -> 2 ReLU units -> 1 linear output, MSE against target 1.
    w1 = [[1.0, -1.0], [0.5, -1.0]]
    b1 = [0.5, 0.0]
    w2 = [[2.0], [3.0]]
    b2 = [-1.0]
    model = rs.MLP.from_weights([(w1, b1), (w2, b2)], activation="relu")
    x = np.array([[1.0, 2.0]])
    # pre1 = x @ W1 + b1 = [1*1 + 2*0.5 + 0.5, 1*(-1) + 2*(-1) + 0] = [2.5, -3]
    # h = relu(pre1) = [2.5, 0]: unit 1 does not fire on this sample.
    # out = h @ W2 + b2 = 2.5*2 + 0*3 - 1 = 4
    np.testing.assert_array_equal(model.forward(x), [[4.0]])
    # loss = (4 - 1)^2 = 9 and d loss / d out = 2 * (4 - 1) = 6
    loss, grads = model.loss_and_gradients(x, np.array([[1.0]]), loss="mse")
    assert loss == 9.0
    (gw1, gb1), (gw2, gb2) = grads
    # dW2 = h.T * 6 = [[15], [0]], db2 = [6]
    np.testing.assert_array_equal(gw2, [[15.0], [0.0]])
    np.testing.assert_array_equal(gb2, [6.0])
    # d loss / d h = 6 * W2.T = [12, 18]; the ReLU mask [1, 0] gives d loss / d pre1 = [12, 0]
    # dW1 = x.T @ [12, 0] = [[12, 0], [24, 0]], db1 = [12, 0]
    np.testing.assert_array_equal(gw1, [[12.0, 0.0], [24.0, 0.0]])
    np.testing.assert_array_equal(gb1, [12.0, 0.0])
    # The silent unit's incoming weights get exactly zero gradient (the chain rule:
    # dL/dw_jk = dL/dx_k * f'(s_j) * x_j with f'(s_j) = 0).
    assert gw1[:, 1].tolist() == [0.0, 0.0] and gb1[1] == 0.0
    # One SGD step with lr 0.01 moves only the live unit's weights: W1[:, 0] -= 0.01 * [12, 24]
    trainer = rs.Trainer(model, loss="mse", optimizer=rs.SGD(lr=0.01), batch_size=1)
    assert trainer.step(x, np.array([[1.0]])) == 9.0
    np.testing.assert_allclose(model.layers[0].weight, [[0.88, -1.0], [0.26, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(model.layers[0].bias, [0.38, 0.0], rtol=1e-6)


@pytest.mark.parametrize("hidden,slope", [("relu", 0.0), ("leaky_relu", 0.1),
                                          ("identity", 0.0)])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_gradients_match_central_finite_differences(simd_target, hidden, slope, loss):
    rng = np.random.default_rng(7)
    sizes = [5, 7, 6, 3]
    model = rs.MLP(sizes, activation=hidden, negative_slope=slope or 0.01, init="glorot_normal",
                   seed=3, bias_init=0.1)
    x = rng.standard_normal((11, 5)).astype(np.float32)
    y = rng.integers(0, 3, 11) if loss == "cross_entropy" else rng.standard_normal((11, 3))
    _, grads = model.loss_and_gradients(x, y, loss=loss)
    params = [(w.astype(np.float64), b.astype(np.float64)) for w, b in model.get_weights()]
    eps = 1e-6
    for layer, (w, b) in enumerate(params):
        for array, grad in ((w, grads[layer][0]), (b, grads[layer][1])):
            numeric = np.zeros(array.shape)
            for index in np.ndindex(array.shape):
                saved = array[index]
                array[index] = saved + eps
                up = reference.mlp_loss(params, x, y, hidden, slope, loss)
                array[index] = saved - eps
                down = reference.mlp_loss(params, x, y, hidden, slope, loss)
                array[index] = saved
                numeric[index] = (up - down) / (2 * eps)
            np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-5)
