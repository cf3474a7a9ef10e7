"""Mini-batch training: forward, loss, backward, optimizer update."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import as_features, positive_int
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

    If the loss or an updated parameter becomes NaN or Inf, ``step`` and ``fit``
    raise ``TrainingDiverged`` and the model keeps its parameters from before
    that step.
    """

    def __init__(self, model: MLP, loss: str = "cross_entropy", optimizer: Optimizer | None = None,
                 batch_size: int = 32, seed=None):
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

    def step(self, x_batch, y_batch) -> float:
        """One update on one batch. Returns the batch loss before the update."""
        x_batch = as_features(x_batch, "x_batch", self.model.n_features)
        targets = self.loss.prepare_targets(y_batch, x_batch.shape[0], self.model.n_outputs)
        return self._step_validated(x_batch, targets)[0]

    def fit(self, x, y, epochs: int = 1, callbacks=(), shuffle: bool = True) -> History:
        """Train for ``epochs`` passes over (x, y), reshuffled each epoch from the seed.

        Returns the trainer's ``History`` (it accumulates across calls).
        Callbacks get ``on_train_begin``, ``on_epoch_end`` and ``on_train_end``.
        """
        x = as_features(x, "x", self.model.n_features)
        targets = self.loss.prepare_targets(y, x.shape[0], self.model.n_outputs)
        epochs = positive_int(epochs, "epochs")
        callbacks = list(callbacks)
        n = x.shape[0]
        for callback in callbacks:
            callback.on_train_begin(self)
        try:
            for _ in range(epochs):
                epoch = self.epochs_done + 1
                order = self.rng.permutation(n) if shuffle else None
                loss_sum, correct = 0.0, 0
                for start in range(0, n, self.batch_size):
                    if order is None:
                        batch = slice(start, start + self.batch_size)
                    else:
                        batch = order[start:start + self.batch_size]
                    x_batch, t_batch = x[batch], targets[batch]
                    loss, outputs = self._step_validated(x_batch, t_batch, epoch)
                    loss_sum += loss * x_batch.shape[0]
                    if self.loss.is_classification:
                        correct += int(np.count_nonzero(outputs.argmax(axis=1) == t_batch))
                self.epochs_done = epoch
                logs = {"loss": loss_sum / n}
                self.history.loss.append(logs["loss"])
                if self.loss.is_classification:
                    logs["accuracy"] = correct / n
                    self.history.accuracy.append(logs["accuracy"])
                for callback in callbacks:
                    callback.on_epoch_end(self, epoch, logs)
        finally:
            for callback in callbacks:
                callback.on_train_end(self)
        return self.history

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

    def _step_validated(self, x_batch: np.ndarray, targets: np.ndarray, epoch: int | None = None):
        step = self.steps_done + 1
        loss, gradients, outputs = self.model._loss_and_gradients_validated(
            x_batch, targets, self.loss)
        if not np.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at step {step}; the model keeps its parameters from "
                f"before this step (try a smaller learning rate)", step=step, epoch=epoch)
        grads = [g for pair in gradients for g in pair]
        if not self.optimizer.update(self.model.parameters(), grads):
            raise TrainingDiverged(
                f"the update at step {step} would make a parameter NaN or Inf; it was not "
                f"applied (try a smaller learning rate)", step=step, epoch=epoch)
        self.steps_done = step
        return float(loss), outputs
