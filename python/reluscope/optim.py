"""Optimizers that update a model's parameters in place through the C++ kernels.

Both follow PyTorch's conventions: weight decay is added to the gradient
(L2, ``g + weight_decay * w``); SGD momentum has no dampening,
``v = momentum * v + g``, and steps along ``v`` (or ``g + momentum * v``
with Nesterov); Adam uses bias-corrected moments (Kingma & Ba, 2015).

An update is all or nothing: every parameter's new value is checked before any
is written, so a step that would produce NaN or Inf changes nothing and
``update`` returns False.

Two remedies for units killed by large steps are options of both optimizers:

- ``clip_norm``: gradient-norm clipping. When the global L2 norm of all the
  gradients of a step exceeds ``clip_norm``, every gradient is multiplied by
  ``clip_norm / (norm + 1e-6)`` before the update (the rule of PyTorch's
  ``clip_grad_norm_``). Weight decay is added after clipping, as in PyTorch
  when ``clip_grad_norm_`` runs before ``optimizer.step()``.
- ``warmup_steps``: linear learning-rate warmup. Update number t (from 1) uses
  ``lr * min(1, t / warmup_steps)``.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validation import finite_float, nonnegative_int


class Optimizer:
    """Base class: per-parameter state, created on first use."""

    # Code of the optimizer in the C++ training step (rs::OptimizerKind).
    _kind = -1

    def __init__(self, lr: float, clip_norm: float | None = None, warmup_steps: int = 0):
        self.lr = finite_float(lr, "lr", low=0.0, low_open=True)
        self.clip_norm = (None if clip_norm is None
                          else finite_float(clip_norm, "clip_norm", low=0.0, low_open=True))
        self.warmup_steps = nonnegative_int(warmup_steps, "warmup_steps")
        self._state: list | None = None
        self.steps = 0

    def reset(self) -> None:
        """Forget all state (momentum, moments, step count)."""
        self._state = None
        self.steps = 0

    def lr_at(self, update: int) -> float:
        """The learning rate of update number ``update`` (from 1), warmup included."""
        if self.warmup_steps and update < self.warmup_steps:
            return self.lr * update / self.warmup_steps
        return self.lr

    def reset_elements(self, param_index: int, index) -> None:
        """Zero the state of ``params[param_index][index]``, as if those elements were new.

        Used when units are recycled (``reluscope.ReDo``): their momentum (SGD)
        or moments (Adam) restart from zero, and Adam also restarts their step
        count, so their bias correction is that of a first update.
        """
        if self._state is None:
            return
        for array in self._state[param_index][:2]:
            if array is not None:
                array[index] = 0.0
        # A new list, so that a Trainer rebuilds its C++ step around the new state.
        self._state = list(self._state)

    def state_for(self, params: list[np.ndarray]) -> list:
        """The per-parameter state, created (zeroed) when missing or of another model."""
        if self._state is None or len(self._state) != len(params) or any(
                s[0].shape != p.shape for s, p in zip(self._state, params)):
            self._state = [self._new_state(p) for p in params]
        return self._state

    def settings(self) -> tuple:
        """(kind, lr, momentum, weight_decay, nesterov, beta1, beta2, eps, clip_norm,
        cohort_start) of the next update, for the C++ step."""
        raise NotImplementedError

    def _clip_settings(self) -> tuple:
        return (0.0 if self.clip_norm is None else self.clip_norm,)

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> bool:
        """Apply one step to ``params`` in place; False (and no change) if it would overflow."""
        self.state_for(params)
        if self.clip_norm is not None:
            norm = np.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel()))
                               for g in grads))
            if norm > self.clip_norm:
                scale = np.float32(self.clip_norm / (norm + 1e-6))
                grads = [g * scale for g in grads]
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

    def _remedies_repr(self) -> str:
        text = f", clip_norm={self.clip_norm}" if self.clip_norm is not None else ""
        return text + (f", warmup_steps={self.warmup_steps}" if self.warmup_steps else "")

    def _apply(self, param, grad, state, commit: bool) -> bool:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 warmup_steps: int = 0):
        super().__init__(lr, clip_norm, warmup_steps)
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
        return (self._kind, self.lr_at(self.steps + 1), self.momentum, self.weight_decay,
                self.nesterov, 0.0, 0.0, 0.0, *self._clip_settings(), None)

    def _apply(self, param, grad, state, commit):
        velocity = state[0] if self.momentum > 0.0 else None
        return _core.sgd_update(param, grad, velocity, self.lr_at(self.steps), self.momentum,
                                self.weight_decay, self.nesterov, commit)

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay}{self._remedies_repr()})")


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba, 2015) and optional L2 weight decay."""

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 warmup_steps: int = 0):
        super().__init__(lr, clip_norm, warmup_steps)
        # Update count after which each moment cohort restarted; cohort 0 never did.
        self._cohort_start = np.zeros(1, dtype=np.int64)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = finite_float(betas[0], "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = finite_float(betas[1], "beta2", low=0.0, high=1.0, high_open=True)
        self.eps = finite_float(eps, "eps", low=0.0, low_open=True)
        self.weight_decay = finite_float(weight_decay, "weight_decay", low=0.0)

    _kind = 1

    def _new_state(self, param):
        # (first moment, second moment, cohort ids or None): see reset_elements.
        return np.zeros_like(param), np.zeros_like(param), None

    def reset(self) -> None:
        super().reset()
        self._cohort_start = np.zeros(1, dtype=np.int64)

    def reset_elements(self, param_index: int, index) -> None:
        """Zero the moments of ``params[param_index][index]`` and restart their step count.

        Each call opens a moment *cohort* that started after update number
        ``steps``; its elements' bias correction uses ``t - steps``.
        """
        if self._state is None:
            return
        first, second, cohort = self._state[param_index]
        if cohort is None:
            cohort = np.zeros(first.shape, dtype=np.int32)
        if self._cohort_start[-1] != self.steps:
            self._cohort_start = np.append(self._cohort_start, np.int64(self.steps))
        cohort[index] = len(self._cohort_start) - 1
        self._state[param_index] = (first, second, cohort)
        super().reset_elements(param_index, index)

    def settings(self) -> tuple:
        cohorts = self._cohort_start if len(self._cohort_start) > 1 else None
        return (self._kind, self.lr_at(self.steps + 1), 0.0, self.weight_decay, False,
                self.beta1, self.beta2, self.eps, *self._clip_settings(), cohorts)

    def _apply(self, param, grad, moments, commit):
        first, second, cohort = moments
        cohort_start = None if cohort is None else self._cohort_start
        return _core.adam_update(param, grad, first, second, self.lr_at(self.steps), self.beta1,
                                 self.beta2, self.eps, self.weight_decay, self.steps, commit,
                                 cohort, cohort_start)

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas=({self.beta1}, {self.beta2}), eps={self.eps}, "
                f"weight_decay={self.weight_decay}{self._remedies_repr()})")
