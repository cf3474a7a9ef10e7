"""Optimizers that update a model's parameters in place through the C++ kernels.

Both follow PyTorch's conventions: weight decay is added to the gradient
(L2, ``g + weight_decay * w``); SGD momentum has no dampening,
``v = momentum * v + g``, and steps along ``v`` (or ``g + momentum * v``
with Nesterov); Adam uses bias-corrected moments (Kingma & Ba, 2015).

An update is all or nothing: every parameter's new value is checked before any
is written, so a step that would produce NaN or Inf changes nothing and
``update`` returns False.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validation import finite_float


class Optimizer:
    """Base class: per-parameter state, created on first use."""

    # Code of the optimizer in the C++ training step (rs::OptimizerKind).
    _kind = -1

    def __init__(self, lr: float):
        self.lr = finite_float(lr, "lr", low=0.0, low_open=True)
        self._state: list | None = None
        self.steps = 0

    def reset(self) -> None:
        """Forget all state (momentum, moments, step count)."""
        self._state = None
        self.steps = 0

    def state_for(self, params: list[np.ndarray]) -> list:
        """The per-parameter state, created (zeroed) when missing or of another model."""
        if self._state is None or len(self._state) != len(params) or any(
                s[0].shape != p.shape for s, p in zip(self._state, params)):
            self._state = [self._new_state(p) for p in params]
        return self._state

    def settings(self) -> tuple:
        """(kind, lr, momentum, weight_decay, nesterov, beta1, beta2, eps) for the C++ step."""
        raise NotImplementedError

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> bool:
        """Apply one step to ``params`` in place; False (and no change) if it would overflow."""
        self.state_for(params)
        self.steps += 1
        staged = list(zip(params, grads, self._state))
        if not all(self._apply(p, g, s, commit=False) for p, g, s in staged):
            self.steps -= 1
            return False
        for p, g, s in staged:
            self._apply(p, g, s, commit=True)
        return True

    def _new_state(self, param: np.ndarray):
        raise NotImplementedError

    def _apply(self, param, grad, state, commit: bool) -> bool:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = finite_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.weight_decay = finite_float(weight_decay, "weight_decay", low=0.0)
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    _kind = 0

    def _new_state(self, param):
        # Allocated even without momentum, so that momentum can be switched on later.
        return (np.zeros_like(param), None)

    def settings(self) -> tuple:
        return (self._kind, self.lr, self.momentum, self.weight_decay, self.nesterov,
                0.0, 0.0, 0.0)

    def _apply(self, param, grad, state, commit):
        velocity = state[0] if self.momentum > 0.0 else None
        return _core.sgd_update(param, grad, velocity, self.lr, self.momentum,
                                self.weight_decay, self.nesterov, commit)

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba, 2015) and optional L2 weight decay."""

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = finite_float(betas[0], "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = finite_float(betas[1], "beta2", low=0.0, high=1.0, high_open=True)
        self.eps = finite_float(eps, "eps", low=0.0, low_open=True)
        self.weight_decay = finite_float(weight_decay, "weight_decay", low=0.0)

    _kind = 1

    def _new_state(self, param):
        return np.zeros_like(param), np.zeros_like(param)

    def settings(self) -> tuple:
        return (self._kind, self.lr, 0.0, self.weight_decay, False, self.beta1, self.beta2,
                self.eps)

    def _apply(self, param, grad, moments, commit):
        first, second = moments
        return _core.adam_update(param, grad, first, second, self.lr, self.beta1, self.beta2,
                                 self.eps, self.weight_decay, self.steps, commit)

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas=({self.beta1}, {self.beta2}), eps={self.eps}, "
                f"weight_decay={self.weight_decay})")
