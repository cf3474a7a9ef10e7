"""Optimizers: hyper-parameters and named state buffers for the C++ training step.

The update itself runs in C++, inside ``Trainer.step``; an optimizer holds what
that update needs: its hyper-parameters, one state object per parameter
(``SGDState`` or ``AdamState``, created on first use), the number of updates
applied (``steps``), and ``version``, which changes whenever the state arrays
are replaced or reset, so that a trainer knows to hand the new ones to C++.

Both follow PyTorch's conventions: weight decay is added to the gradient
(L2, ``g + weight_decay * w``); SGD momentum has no dampening,
``v = momentum * v + g``, and steps along ``v`` (or ``g + momentum * v``
with Nesterov); Adam uses bias-corrected moments (Kingma & Ba, 2015).

An update is all or nothing: every parameter's new value is checked before any
is written, so a step that would produce NaN or Inf changes nothing.

Two remedies for units killed by large steps are options of both optimizers:

- ``clip_norm``: gradient-norm clipping. When the global L2 norm of all the
  gradients of a step exceeds ``clip_norm``, every gradient is multiplied by
  ``clip_norm / (norm + 1e-6)`` before the update (the rule of PyTorch's
  ``clip_grad_norm_``). Weight decay is added after clipping, as in PyTorch
  when ``clip_grad_norm_`` runs before ``optimizer.step()``.
- ``warmup_steps``: linear learning-rate warmup. Update number t (from 1) uses
  ``lr * min(1, t / warmup_steps)``.

Hyper-parameters are checked when assigned, at construction or later
(``opt.lr = 0.05``), in float64 and again as the float32 the step computes in:
``lr=1e-46`` (0 in float32) and ``momentum=1 - 1e-9`` (1 in float32) are refused.

An optimizer is bound to one model, the first one a ``Trainer`` uses it with:
its state (momentum, moments) belongs to that model's parameters. Binding is to
the model object (held by a weak reference), not to its arrays, so replacing
``layer.weight`` by assignment keeps the state. A second model, even of the same
shapes, is refused; ``reset()`` forgets the state and releases the binding. A
copy (``copy.deepcopy``, pickle) starts unbound.
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._validation import float32_hyperparameter, index_into, nonnegative_int

if TYPE_CHECKING:
    from .model import MLP


@dataclass
class SGDState:
    """SGD's buffer for one parameter, shaped like it."""

    velocity: np.ndarray

    def buffers(self) -> list[np.ndarray]:
        """Return the state's arrays: the velocity."""
        return [self.velocity]

    def to_core(self) -> _core.ParamState:
        """Return the state as the C++ step takes it."""
        return _core.ParamState(velocity=self.velocity)


@dataclass
class AdamState:
    """Adam's buffers for one parameter, shaped like it.

    ``cohort`` (int32 per element, or None) is the moment cohort of each
    element: see ``Adam.reset_elements``.
    """

    first_moment: np.ndarray
    second_moment: np.ndarray
    cohort: np.ndarray | None = None

    def buffers(self) -> list[np.ndarray]:
        """Return the state's arrays: the two moments."""
        return [self.first_moment, self.second_moment]

    def to_core(self) -> _core.ParamState:
        """Return the state as the C++ step takes it."""
        return _core.ParamState(first_moment=self.first_moment,
                                second_moment=self.second_moment, cohort=self.cohort)


def _hyperparameter(name: str, doc: str, **bounds) -> property:
    """Return an attribute checked at every assignment, in float64 and as float32 (see above).

    The check runs at assignment, not at each step; the value lives in
    ``_<name>``, which ``_hyperparameters`` reads for the settings cache key.
    """
    slot = "_" + name

    def assign(self, value):
        setattr(self, slot, float32_hyperparameter(value, name, **bounds))

    return property(operator.attrgetter(slot), assign, doc=doc)


class Optimizer:
    """Base class: hyper-parameters, per-parameter state, the count of applied updates."""

    kind: _core.OptimizerKind
    _lr: float  # set through the lr property

    lr = _hyperparameter("lr", "Learning rate, > 0 (before warmup).", low=0.0, low_open=True)

    def __init__(self, lr: float, *, clip_norm: float | None = None, warmup_steps: int = 0):
        self.lr = lr
        self.clip_norm = clip_norm
        self.warmup_steps = warmup_steps
        self._model: weakref.ref | None = None  # the bound model
        self.state: list | None = None
        self.steps = 0
        self.version = 0
        self._settings: _core.OptimizerSettings | None = None
        self._settings_key: tuple | None = None

    @property
    def clip_norm(self) -> float | None:
        """Gradient-norm clipping threshold, > 0, or None (no clipping)."""
        return self._clip_norm

    @clip_norm.setter
    def clip_norm(self, value: float | None) -> None:
        # 0.0 means "off" to the C++ step: a value that rounds to 0 in float32 is refused.
        self._clip_norm = (None if value is None else
                           float32_hyperparameter(value, "clip_norm", low=0.0, low_open=True))

    @property
    def warmup_steps(self) -> int:
        """Updates of linear learning-rate warmup (0: none)."""
        return self._warmup_steps

    @warmup_steps.setter
    def warmup_steps(self, value: int) -> None:
        self._warmup_steps = nonnegative_int(value, "warmup_steps")

    def bind(self, model: MLP) -> None:
        """Tie this optimizer to ``model``; a different model is refused until ``reset()``."""
        bound = None if self._model is None else self._model()
        if bound is model:
            return
        if self._model is not None:
            was = "another model" if bound is None else f"another model, {bound!r}"
            raise ValueError(
                f"this optimizer holds the state (momentum, moments) of {was}; it cannot "
                f"train {model!r} too. Give each model its own optimizer, or call "
                f"optimizer.reset() to forget the state first")
        self._model = weakref.ref(model)

    def hyperparameters(self) -> dict:
        """Return the keyword arguments that build an optimizer like this one (not its state)."""
        return {"lr": self.lr, "clip_norm": self.clip_norm, "warmup_steps": self.warmup_steps}

    def __getstate__(self) -> dict:
        """Pickle without the bound model and the settings cache: a copy starts unbound."""
        state = self.__dict__.copy()
        state["_model"] = None  # a weak reference does not copy; a copy starts unbound
        state["_settings"] = state["_settings_key"] = None  # a cache, rebuilt when needed
        return state

    def reset(self) -> None:
        """Forget all state (momentum, moments, step count) and the model it belonged to."""
        self.state = None
        self.steps = 0
        self.version += 1
        self._model = None

    def lr_at(self, update: int) -> float:
        """Return the learning rate of update number ``update`` (from 1), warmup included."""
        if self._warmup_steps and update < self._warmup_steps:
            return self._lr * update / self._warmup_steps
        return self._lr

    def reset_elements(self, param_index: int, index: Any) -> None:
        """Zero the state of ``params[param_index][index]``, as if those elements were new.

        Used when units are recycled (``reluscope.ReDo``): their momentum (SGD)
        or moments (Adam) restart from zero, and Adam also restarts their step
        count, so their bias correction is that of a first update.
        """
        if self.state is None:
            return
        for array in self._state_of(param_index, index).buffers():
            array[index] = 0.0
        self.version += 1

    def _state_of(self, param_index, index):
        """Return the state of ``params[param_index]``, once ``index`` is known to address it."""
        assert self.state is not None  # the callers return early without state
        param_index = index_into(param_index, len(self.state), "param_index",
                                 "parameters with state")
        state = self.state[param_index]
        shape = state.buffers()[0].shape
        try:
            state.buffers()[0][index]
        except (IndexError, TypeError) as error:
            shown = (f"an index array of shape {index.shape} ({index.dtype})"
                     if isinstance(index, np.ndarray) else f"index {index!r}")
            raise type(error)(f"{shown} does not address params[{param_index}], of shape "
                              f"{shape}: {error}") from None
        return state

    def state_matches(self, params: list[np.ndarray]) -> bool:
        """Whether the state exists and holds one entry of the right shape per parameter."""
        return self.state is not None and len(self.state) == len(params) and all(
            s.buffers()[0].shape == p.shape for s, p in zip(self.state, params))

    def state_for(self, params: list[np.ndarray]) -> list:
        """Return the per-parameter state, created (zeroed) when missing or of another model."""
        if not self.state_matches(params):
            self.state = [self.new_state(p) for p in params]
            self.version += 1
        assert self.state is not None  # state_matches holds only with a state
        return self.state

    def settings(self) -> _core.OptimizerSettings:
        """Return the hyper-parameters of the next update (number ``steps + 1``), for the C++ step.

        One object, built again only when a hyper-parameter or the state changed
        (building one takes keyword arguments, which cost microseconds at every
        step of a small model); each call updates its ``lr`` and ``update_number``.
        """
        key = (self.version, *self._hyperparameters())
        if self._settings is None or key != self._settings_key:
            self._settings = self._build_settings()
            self._settings_key = key
        update = self.steps + 1
        self._settings.lr = self.lr_at(update)
        self._settings.update_number = update
        return self._settings

    def _hyperparameters(self) -> tuple:
        raise NotImplementedError

    def _build_settings(self) -> _core.OptimizerSettings:
        raise NotImplementedError

    def update_applied(self) -> None:
        """Count one more applied update (the training step calls this after it succeeds)."""
        self.steps += 1

    def new_state(self, param: np.ndarray) -> SGDState | AdamState:
        """Zeroed state for one parameter."""
        raise NotImplementedError

    def _clip_norm_setting(self) -> float:
        return 0.0 if self._clip_norm is None else self._clip_norm

    def _remedies_repr(self) -> str:
        text = f", clip_norm={self.clip_norm}" if self.clip_norm is not None else ""
        return text + (f", warmup_steps={self.warmup_steps}" if self.warmup_steps else "")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay."""

    kind = _core.OptimizerKind.sgd
    _weight_decay: float  # set through the weight_decay property

    weight_decay = _hyperparameter("weight_decay", "L2 weight decay, >= 0.", low=0.0)

    def __init__(self, lr: float = 0.01, *, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 warmup_steps: int = 0):
        super().__init__(lr, clip_norm=clip_norm, warmup_steps=warmup_steps)
        self._nesterov = False
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov

    @property
    def momentum(self) -> float:
        """Momentum in [0, 1); > 0 while ``nesterov`` is on."""
        return self._momentum

    @momentum.setter
    def momentum(self, value: float) -> None:
        value = float32_hyperparameter(value, "momentum", low=0.0, high=1.0, high_open=True)
        if self._nesterov and value == 0.0:
            raise ValueError("momentum=0.0 with nesterov=True: Nesterov needs momentum > 0 "
                             "(set nesterov = False first)")
        self._momentum = value

    @property
    def nesterov(self) -> bool:
        """Nesterov momentum; needs ``momentum`` > 0."""
        return self._nesterov

    @nesterov.setter
    def nesterov(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {value!r}")
        if value and self._momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self._nesterov = bool(value)

    def hyperparameters(self) -> dict:
        """Return the keyword arguments that build an optimizer like this one (not its state)."""
        return {**super().hyperparameters(), "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def new_state(self, param: np.ndarray) -> SGDState:
        """Zeroed state (a velocity) for one parameter."""
        # Allocated even without momentum, so that momentum can be switched on later.
        return SGDState(np.zeros(np.shape(param), dtype=np.float32))

    def _hyperparameters(self) -> tuple:
        return self._momentum, self._weight_decay, self._nesterov, self._clip_norm

    def _build_settings(self) -> _core.OptimizerSettings:
        return _core.OptimizerSettings(
            self.kind, self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
            nesterov=self.nesterov, clip_norm=self._clip_norm_setting())

    def __repr__(self) -> str:
        """Return the constructor call that builds an optimizer like this one."""
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay}{self._remedies_repr()})")


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba, 2015) and optional L2 weight decay.

    Attributes
    ----------
    cohort_start : ndarray of int64
        ``cohort_start[c]``: the update count after which moment cohort c
        restarted (see ``reset_elements``); cohort 0, which never did, starts at 0.
    """

    kind = _core.OptimizerKind.adam
    # Set through the properties below.
    _beta1: float
    _beta2: float
    _eps: float
    _weight_decay: float

    beta1 = _hyperparameter("beta1", "Decay of the first moment, in [0, 1).",
                            low=0.0, high=1.0, high_open=True)
    # beta2 = 1 would make the bias correction 1 - beta2**t zero.
    beta2 = _hyperparameter("beta2", "Decay of the second moment, in [0, 1).",
                            low=0.0, high=1.0, high_open=True)
    # eps that rounds to 0 would divide by sqrt(0) for a parameter with no gradient yet.
    eps = _hyperparameter("eps", "Added to the root of the second moment, > 0.",
                          low=0.0, low_open=True)
    weight_decay = _hyperparameter("weight_decay", "L2 weight decay, >= 0.", low=0.0)

    def __init__(self, lr: float = 1e-3, *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float | None = None,
                 warmup_steps: int = 0) -> None:
        super().__init__(lr, clip_norm=clip_norm, warmup_steps=warmup_steps)
        self.cohort_start = np.zeros(1, dtype=np.int64)
        if isinstance(betas, (str, bytes)) or np.ndim(betas) != 1 or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay

    def hyperparameters(self) -> dict:
        """Return the keyword arguments that build an optimizer like this one (not its state)."""
        return {**super().hyperparameters(), "betas": (self.beta1, self.beta2), "eps": self.eps,
                "weight_decay": self.weight_decay}

    def new_state(self, param: np.ndarray) -> AdamState:
        """Zeroed state (both moments) for one parameter."""
        return AdamState(np.zeros(np.shape(param), dtype=np.float32),
                         np.zeros(np.shape(param), dtype=np.float32))

    def reset(self) -> None:
        """Forget all state, the moment cohorts included, and the model it belonged to."""
        super().reset()
        self.cohort_start = np.zeros(1, dtype=np.int64)

    def reset_elements(self, param_index: int, index: Any) -> None:
        """Zero the moments of ``params[param_index][index]`` and restart their step count.

        Each call opens a moment *cohort* that started after update number
        ``steps``; its elements' bias correction uses ``t - steps``.
        """
        if self.state is None:
            return
        state = self._state_of(param_index, index)  # before anything changes
        if state.cohort is None:
            state.cohort = np.zeros(state.first_moment.shape, dtype=np.int32)
        if self.cohort_start[-1] != self.steps:
            self.cohort_start = np.append(self.cohort_start, np.int64(self.steps))
        state.cohort[index] = len(self.cohort_start) - 1
        super().reset_elements(param_index, index)

    def _hyperparameters(self) -> tuple:
        # cohort_start changes with version (reset, reset_elements), part of the key.
        return self._weight_decay, self._beta1, self._beta2, self._eps, self._clip_norm

    def _build_settings(self) -> _core.OptimizerSettings:
        cohorts = self.cohort_start if len(self.cohort_start) > 1 else None
        return _core.OptimizerSettings(
            self.kind, self.lr, weight_decay=self.weight_decay, beta1=self.beta1,
            beta2=self.beta2, eps=self.eps, clip_norm=self._clip_norm_setting(),
            cohort_start=cohorts)

    def __repr__(self) -> str:
        """Return the constructor call that builds an optimizer like this one."""
        return (f"Adam(lr={self.lr}, betas=({self.beta1}, {self.beta2}), eps={self.eps}, "
                f"weight_decay={self.weight_decay}{self._remedies_repr()})")
