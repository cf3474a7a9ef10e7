"""Mini-batch training: forward, loss, backward, optimizer update."""

from __future__ import annotations

import operator
import sys
from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._validation import as_features, positive_int
from .callbacks import Callback
from .errors import TrainingDiverged
from .losses import get_loss
from .model import MLP
from .optim import SGD, Optimizer


@dataclass
class History:
    """Per-epoch training record.

    ``loss[e]`` is the mean training loss over the batches of epoch e + 1, each
    measured before its update; ``accuracy[e]`` (cross-entropy only) is the
    fraction of training samples classified right by those same forward passes.
    """

    loss: list = field(default_factory=list)
    accuracy: list | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        return {"loss": list(self.loss), "accuracy": None if self.accuracy is None
                else list(self.accuracy)}


class Trainer:
    """Trains an ``MLP`` with mini-batch gradient descent.

    Parameters
    ----------
    model : MLP
        Updated in place.
    loss : {"cross_entropy", "mse"}
    optimizer : SGD or Adam, default ``SGD(lr=0.01)``
    batch_size : int
    seed : int or None
        Seed of the generator that shuffles the samples at every epoch.
    track_firing : bool
        Count, per hidden unit, the training samples on which it fired, in the
        forward pass of each step (no extra pass). ``firing_counts`` holds the
        counts since the start of the current epoch (or since
        ``reset_firing_counts``); a unit with a zero count was silent on every
        batch so far, while the weights moved under it.
    track_gradients : bool
        Accumulate, per hidden unit, sum_k |dL/dw_kj| + |dL/db_j| over the
        steps of the epoch in ``gradient_magnitude`` (float64). A unit silent
        all epoch gets exactly 0.0: the chain rule's f'(s_j) = 0 zeroes every
        gradient that feeds it. Costs one extra read of each weight gradient.
    track_deaths : bool
        With ``track_firing``: for every hidden unit, record in ``last_firing``
        the last step in which it fired on its training batch and the update
        made right after it (learning rate, ||dw_j||, db_j, ||dw_j||/||w_j||,
        and the layer's medians of the same at that step). If the unit never
        fires again, that update is the one that killed it: the
        ``DeadNeuronMonitor`` turns these rows into death certificates.

    Each step runs in one call into C++ (forward, loss, backward, update) over
    workspaces that are allocated once. If the loss or an updated parameter becomes NaN or Inf, ``step`` and ``fit``
    raise ``TrainingDiverged`` and the model keeps its parameters from before
    that step.
    """

    def __init__(self, model: MLP, loss: str = "cross_entropy", optimizer: Optimizer | None = None,
                 batch_size: int = 32, seed=None, track_firing: bool = True,
                 track_gradients: bool = False, track_deaths: bool = True):
        if not isinstance(model, MLP):
            raise TypeError(f"model must be a reluscope.MLP, got {type(model).__name__}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be reluscope.SGD or reluscope.Adam, got {optimizer!r}")
        self.model = model
        self.loss = get_loss(loss)
        self.optimizer = optimizer if optimizer is not None else SGD(lr=0.01)
        self.batch_size = positive_int(batch_size, "batch_size")
        self.rng = np.random.default_rng(seed)
        self.steps_done = 0
        self.epochs_done = 0
        self.history = History(accuracy=[] if self.loss.is_classification else None)
        self.track_firing = bool(track_firing)
        self.firing_counts = [np.zeros(layer.fan_out, dtype=np.int64)
                              for layer in model.hidden_layers]
        self.track_gradients = bool(track_gradients)
        self.gradient_magnitude = [np.zeros(layer.fan_out, dtype=np.float64)
                                   for layer in model.hidden_layers]
        self.track_deaths = bool(track_deaths)
        self.last_firing = [_new_last_firing(layer.fan_out) for layer in model.hidden_layers]
        self._engine = None
        self._engine_key = None
        # The gradients' global norm before clipping at the latest step (NaN
        # unless the optimizer clips).
        self.last_grad_norm = float("nan")
        # The (validated) inputs of the running fit, for callbacks such as ReDo.
        self.fit_inputs = None

    def flush_last_firing(self) -> None:
        """Bring ``last_firing`` up to date (``fit`` does this after every epoch).

        Rows are written when a unit stops firing, with the layer medians left
        NaN; this fills the medians, and writes the rows of the units that fired
        in the latest step, whose last update may be the one that killed them.
        """
        if self._engine is not None:
            self._engine.flush_last_firing()

    def reset_firing_counts(self) -> None:
        """Zero ``firing_counts`` and ``gradient_magnitude`` (``fit`` does this every epoch)."""
        for counts in self.firing_counts:
            counts.fill(0)
        for magnitude in self.gradient_magnitude:
            magnitude.fill(0.0)

    def step(self, x_batch, y_batch) -> float:
        """One update on one batch. Returns the batch loss before the update."""
        # Shapes and types are checked here; NaN/Inf and the label range are
        # checked by the C++ step on the batch, in one pass, before any work.
        x_batch = as_features(x_batch, "x_batch", self.model.n_features, check_finite=False)
        targets = self.loss.prepare_targets(y_batch, x_batch.shape[0], self.model.n_outputs,
                                            check_values=False)
        return self._run_step(x_batch, None, targets, None, check_values=True)[0]

    def fit(self, x, y, epochs: int = 1, callbacks=(), shuffle: bool = True,
            verbose: bool | None = None) -> History:
        """Train for ``epochs`` passes over (x, y), reshuffled each epoch from the seed.

        Returns the trainer's ``History`` (it accumulates across calls).
        Callbacks get ``on_train_begin``, ``on_epoch_end`` and ``on_train_end``.
        ``verbose``: a progress bar (tqdm, optional) with the loss and the number
        of hidden units silent so far in the epoch; None shows it only when
        stderr is a terminal, False never.
        """
        x = as_features(x, "x", self.model.n_features)
        targets = self.loss.prepare_targets(y, x.shape[0], self.model.n_outputs)
        epochs = positive_int(epochs, "epochs")
        callbacks = list(callbacks)
        step_callbacks = [c for c in callbacks
                          if type(c).on_step_end is not Callback.on_step_end]
        self.fit_inputs = x
        n = x.shape[0]
        bar = _progress_bar(verbose, epochs * -(-n // self.batch_size))
        for callback in callbacks:
            callback.on_train_begin(self)
        try:
            for _ in range(epochs):
                epoch = self.epochs_done + 1
                order = self.rng.permutation(n) if shuffle else np.arange(n)
                self.reset_firing_counts()
                loss_sum, correct = 0.0, 0
                for start in range(0, n, self.batch_size):
                    rows = order[start:start + self.batch_size]
                    loss, batch_correct = self._run_step(x, rows, targets, epoch,
                                                         check_values=False)
                    loss_sum += loss * rows.shape[0]
                    correct += batch_correct
                    for callback in step_callbacks:
                        callback.on_step_end(self, self.steps_done)
                    if bar is not None:
                        bar.update(1)
                        epoch_done = start + self.batch_size >= n
                        if bar.n % 10 == 0 or epoch_done:
                            bar.set_postfix(epoch=epoch, loss=f"{loss:.4g}",
                                            silent=self._silent_units(), refresh=epoch_done)
                self.epochs_done = epoch
                self.flush_last_firing()
                logs = {"loss": loss_sum / n}
                self.history.loss.append(logs["loss"])
                if self.loss.is_classification:
                    logs["accuracy"] = correct / n
                    self.history.accuracy.append(logs["accuracy"])
                for callback in callbacks:
                    callback.on_epoch_end(self, epoch, logs)
        finally:
            if bar is not None:
                bar.close()
            for callback in callbacks:
                callback.on_train_end(self)
        return self.history

    def _silent_units(self) -> int:
        """Hidden units that have not fired yet in this epoch (with track_firing)."""
        return int(sum(np.count_nonzero(c == 0) for c in self.firing_counts))

    def evaluate(self, x, y) -> dict:
        """Mean loss (and accuracy, for cross-entropy) on (x, y) without updating."""
        x = as_features(x, "x", self.model.n_features)
        targets = self.loss.prepare_targets(y, x.shape[0], self.model.n_outputs)
        outputs = self.model._forward_validated(x)[-1][1]
        grad_unused = np.empty_like(outputs)
        result = {"loss": float(self.loss(outputs, targets, grad_unused))}
        if self.loss.is_classification:
            result["accuracy"] = float(np.mean(outputs.argmax(axis=1) == targets))
        return result

    def _training_step(self):
        """The C++ step for the current model and optimizer, rebuilt when either changed."""
        params = self.model.parameters()
        cached = self._engine_key
        if (cached is not None and cached[0] is self.optimizer
                and cached[1] is self.optimizer._state and len(params) == len(cached[2])
                and all(map(operator.is_, params, cached[2]))):
            return self._engine
        if self._engine is not None:
            # The old step's pending rows and medians, before it goes.
            self._engine.flush_last_firing()
        state = self.optimizer.state_for(params)
        layers = self.model.layers
        hidden = len(layers) - 1
        self.firing_counts = _per_unit(self.firing_counts, layers[:hidden], np.int64)
        self.gradient_magnitude = _per_unit(self.gradient_magnitude, layers[:hidden], np.float64)
        self.last_firing = [self.last_firing[i] if i < len(self.last_firing)
                            and self.last_firing[i].shape[0] == layer.fan_out
                            else _new_last_firing(layer.fan_out)
                            for i, layer in enumerate(layers[:hidden])]
        self._engine = _core.TrainStep(
            [layer.weight for layer in layers], [layer.bias for layer in layers],
            [layer.activation.code for layer in layers],
            [layer.activation.negative_slope for layer in layers],
            0 if self.loss.is_classification else 1,
            [s[0] for s in state[0::2]], [s[1] for s in state[0::2]],
            [s[0] for s in state[1::2]], [s[1] for s in state[1::2]],
            [_cohort(s) for s in state[0::2]], [_cohort(s) for s in state[1::2]],
            self.firing_counts + [None], self.gradient_magnitude + [None],
            self.last_firing + [None])
        self._engine_key = (self.optimizer, state, params)
        return self._engine

    def _run_step(self, x: np.ndarray, rows, targets: np.ndarray, epoch: int | None,
                  check_values: bool):
        """One step on x[rows] (all of x when rows is None); returns (loss, n_correct)."""
        engine = self._training_step()
        step = self.steps_done + 1
        labels, regression = (targets, None) if self.loss.is_classification else (None, targets)
        loss, correct, status, grad_norm = engine.run(x, rows, labels, regression,
                                           *self.optimizer.settings(), self.optimizer.steps + 1,
                                           step, self.track_firing, self.track_gradients,
                                           self.track_deaths, check_values)
        if status == 3:
            raise ValueError("x_batch contains NaN or Inf (after conversion to float32)")
        if status == 4:
            raise ValueError("y_batch contains NaN or Inf (after conversion to float32)")
        if status == 1:
            raise TrainingDiverged(
                f"loss became {loss} at step {step}; the model keeps its parameters from "
                f"before this step (try a smaller learning rate)", step=step, epoch=epoch)
        if status == 2:
            raise TrainingDiverged(
                f"the update at step {step} would make a parameter NaN or Inf; it was not "
                f"applied (try a smaller learning rate)", step=step, epoch=epoch)
        self.optimizer.steps += 1
        self.steps_done = step
        self.last_grad_norm = grad_norm
        return loss, correct


def _cohort(state: tuple):
    """Adam's per-element moment cohorts (None for SGD and for Adam without resets)."""
    return state[2] if len(state) > 2 else None


def _per_unit(arrays: list, layers: list, dtype) -> list:
    """One (fan_out,) array per layer: the existing one where its shape still fits."""
    return [arrays[i] if i < len(arrays) and arrays[i].shape == (layer.fan_out,)
            else np.zeros(layer.fan_out, dtype=dtype) for i, layer in enumerate(layers)]


# Columns of Trainer.last_firing (rs::LastFiringField in csrc/train/train_step.hpp).
LAST_FIRING_FIELDS = ("step", "lr", "update_norm", "bias_update", "relative_update",
                      "layer_median_update_norm", "layer_median_bias_update",
                      "layer_median_relative_update")


def _new_last_firing(units: int) -> np.ndarray:
    """One row per unit; step -1 (and NaN elsewhere) until the unit fires."""
    record = np.full((units, len(LAST_FIRING_FIELDS)), np.nan)
    record[:, 0] = -1
    return record


def _progress_bar(verbose: bool | None, total: int):
    """A tqdm bar on stderr, or None when quiet or when tqdm is not installed."""
    if verbose is False or (verbose is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="batch", file=sys.stderr)
