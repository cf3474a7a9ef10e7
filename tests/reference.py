"""Plain numpy (float64) references for every kernel: the oracle of the tests."""

import numpy as np

import reluscope as rs
from reluscope import _core


def activation_kind(name):
    """The kernels' enum value of the activation called ``name``."""
    return _core.Activation.__members__[name]


def activation(pre, name, slope=0.0):
    if name == "identity":
        return pre
    if name == "relu":
        return np.where(pre <= 0, 0.0, pre)  # NaN stays NaN, as in the kernels
    return np.where(pre > 0, pre, slope * pre)


def activation_derivative(pre, name, slope=0.0):
    if name == "identity":
        return np.ones_like(pre)
    if name == "relu":
        return (pre > 0).astype(pre.dtype)
    return np.where(pre > 0, 1.0, slope).astype(pre.dtype)


def dense_forward(x, weight, bias, name, slope=0.0):
    pre = x.astype(np.float64) @ weight.astype(np.float64) + bias.astype(np.float64)
    return pre, activation(pre, name, slope)


def dense_backward(x, weight, pre, grad_out, name, slope=0.0):
    grad_pre = grad_out.astype(np.float64) * activation_derivative(pre.astype(np.float64), name,
                                                                   slope)
    return (grad_pre, x.astype(np.float64).T @ grad_pre, grad_pre.sum(axis=0),
            grad_pre @ weight.astype(np.float64).T)


def softmax_cross_entropy(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = z.shape[0]
    loss = -log_softmax[np.arange(n), labels].mean()
    grad = np.exp(log_softmax)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n


def mean_squared_error(out, target):
    diff = out.astype(np.float64) - target
    return np.mean(diff ** 2), 2.0 * diff / diff.size


def sgd(w, g, v, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """One SGD step in PyTorch's convention; returns (w, v)."""
    g = g + weight_decay * w
    if momentum:
        v = momentum * v + g
        g = g + momentum * v if nesterov else v
    return w - lr * g, v


def adam(w, g, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One Adam step with bias correction; returns (w, m, v)."""
    g = g + weight_decay * w
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def mlp_loss(params, x, y, hidden, slope, loss):
    """Loss of an MLP given as [(W, b), ...] in float64."""
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(params):
        pre = h @ w + b
        h = pre if i == len(params) - 1 else activation(pre, hidden, slope)
    if loss == "cross_entropy":
        return softmax_cross_entropy(h, y)[0]
    return mean_squared_error(h, y)[0]


class LayerByLayerUpdate:
    """The oracle of the fused training step's update: one optimizer update applied
    parameter by parameter through the C++ update kernels, after clipping in numpy,
    all or nothing. Uses the hyper-parameters of ``optimizer`` (an ``rs.SGD`` or
    ``rs.Adam``) and keeps its own state and update count.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.state = None
        self.steps = 0

    def __call__(self, params, grads) -> bool:
        """Apply one update to ``params`` in place; False (and no change) if it would overflow."""
        opt = self.optimizer
        if self.state is None:
            self.state = [opt.new_state(p) for p in params]
        if opt.clip_norm is not None:
            norm = np.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel()))
                               for g in grads))
            if norm > opt.clip_norm:
                scale = np.float32(opt.clip_norm / (norm + 1e-6))
                grads = [g * scale for g in grads]
        self.steps += 1
        staged = list(zip(params, grads, self.state))
        if not all(self._apply(p, g, s, commit=False) for p, g, s in staged):
            self.steps -= 1
            return False
        for p, g, s in staged:
            self._apply(p, g, s, commit=True)
        return True

    def _apply(self, param, grad, state, commit):
        opt, lr = self.optimizer, self.optimizer.lr_at(self.steps)
        if isinstance(opt, rs.SGD):
            velocity = state.velocity if opt.momentum > 0.0 else None
            return _core.sgd_update(param, grad, velocity, lr, opt.momentum, opt.weight_decay,
                                    opt.nesterov, commit)
        return _core.adam_update(param, grad, state.first_moment, state.second_moment, lr,
                                 opt.beta1, opt.beta2, opt.eps, opt.weight_decay, self.steps,
                                 commit)
