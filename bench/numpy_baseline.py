"""The same work written in plain numpy (float32), with preallocated outputs where
numpy allows it: the baseline the benchmarks compare against."""

import numpy as np


def dense_forward(x, weight, bias, pre, out, counts, maxima):
    np.matmul(x, weight, out=pre)
    pre += bias
    np.maximum(pre, 0.0, out=out)
    counts += np.count_nonzero(pre > 0, axis=0)
    np.maximum(maxima, pre.max(axis=0), out=maxima)


def dense_backward(x, weight, pre, grad_out):
    grad_pre = grad_out * (pre > 0)
    return x.T @ grad_pre, grad_pre.sum(axis=0), grad_pre @ weight.T


class MLPStep:
    """One SGD-with-momentum step of a ReLU MLP with softmax cross-entropy."""

    def __init__(self, weights, lr=0.01, momentum=0.9):
        self.params = [p.copy() for pair in weights for p in pair]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.lr, self.momentum = np.float32(lr), np.float32(momentum)

    def __call__(self, x, labels):
        n_layers = len(self.params) // 2
        inputs, pres = [], []
        h = x
        for i in range(n_layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            inputs.append(h)
            pre = h @ w + b
            pres.append(pre)
            h = pre if i == n_layers - 1 else np.maximum(pre, 0.0)
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        n = x.shape[0]
        loss = float(np.mean(np.log(total[:, 0]) - shifted[np.arange(n), labels]))
        grad = exp / total
        grad[np.arange(n), labels] -= 1.0
        grad /= n
        grads = [None] * len(self.params)
        for i in range(n_layers - 1, -1, -1):
            if i < n_layers - 1:
                grad = grad * (pres[i] > 0)
            grads[2 * i] = inputs[i].T @ grad
            grads[2 * i + 1] = grad.sum(axis=0)
            if i > 0:
                grad = grad @ self.params[2 * i].T
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.momentum
            v += g
            p -= self.lr * v
        return loss
