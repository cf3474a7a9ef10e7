"""Mini-batch training: forward, loss, backward, optimizer update."""

from __future__ import annotations

import operator
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from . import _core
from ._validation import as_features, generator, positive_int
from .callbacks import Callback, callback_list
from .errors import NonFiniteActivations, TrainingDiverged
from .layer_stream import nonfinite_parameter, stream_layers
from .losses import get_loss
from .model import MLP
from .model_input import CONVERTERS
from .optim import SGD, Optimizer
from .tracking import UnitStats, stats_for

if TYPE_CHECKING:
    from ._typing import PathLike, Seed


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
        """Epochs recorded."""
        return len(self.loss)

    def to_dict(self) -> dict:
        """Return the losses and accuracies as a JSON-ready dict."""
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
        ``DeadUnitMonitor`` turns these records into death certificates.

    Attributes
    ----------
    unit_stats : list of UnitStats
        Per hidden layer, the arrays the step accumulates into
        (``reluscope.tracking``); ``firing_counts``, ``gradient_magnitude`` and
        ``last_firing`` list their arrays layer by layer.

    Each step runs in one call into C++ (forward, loss, backward, update) over
    workspaces that are allocated once. If the loss or an updated parameter
    becomes NaN or Inf, ``step`` and ``fit``
    raise ``TrainingDiverged`` and the model keeps its parameters from before
    that step.

    The workspaces grow to the largest batch seen and stay allocated: 4 bytes
    x rows x (3 x the sum of the layer widths + n_features + 2 x the widest
    layer or input), about 4 GB after one ``step`` on 200,000 rows of a
    784-512-512-10 model. ``release()`` gives them back; the next step
    allocates them again for its own batch (a few milliseconds for a small
    model), with bit-for-bit the same results.

    The model's layers are checked (``MLP.check_layers``: shapes, dtypes,
    layouts, writeable) at the start of ``fit`` and of each of its epochs, and
    whenever a layer holds a new array; the C++ step checks the arrays it holds
    (data pointer, shape, flags) at every step, so a resize in place is caught too.
    """

    def __init__(self, model: MLP, loss: str = "cross_entropy", *,
                 optimizer: Optimizer | None = None, batch_size: int = 32, seed: Seed = None,
                 track_firing: bool = True,
                 track_gradients: bool = False, track_deaths: bool = True):
        if not isinstance(model, MLP):
            # Not converted here, unlike in scan: training updates the model in
            # place, and a silent copy would leave the caller's network untouched.
            raise TypeError(f"model must be a reluscope.MLP, got {type(model).__name__}; the "
                            f"trainer updates its model in place, so build one first with "
                            f"{CONVERTERS} and train that")
        model.check_layers()
        self.model = model
        self.loss = get_loss(loss)
        self.optimizer = optimizer if optimizer is not None else SGD(lr=0.01)
        self.batch_size = batch_size
        self.rng = generator(seed)
        self.steps_done = 0
        self.epochs_done = 0
        self.history = History(accuracy=[] if self.loss.is_classification else None)
        self.track_firing = bool(track_firing)
        self.track_gradients = bool(track_gradients)
        self.track_deaths = bool(track_deaths)
        self.unit_stats = [UnitStats(layer.fan_out) for layer in model.hidden_layers]
        self._engine = None
        self._engine_key = None
        # Steps from several threads run one at a time: each reads and then
        # advances the step count and the optimizer's update count.
        self._step_lock = threading.RLock()
        # The gradients' global norm before clipping at the latest step (NaN
        # unless the optimizer clips).
        self.last_grad_norm = float("nan")
        # The (validated) inputs of the running fit, for callbacks such as ReDo.
        self.fit_inputs: np.ndarray | None = None

    # batch_size and optimizer are checked at every assignment, not only here:
    # a batch size of -5 set later ran no step and recorded a loss of 0.0.

    @property
    def batch_size(self) -> int:
        """Samples per step, >= 1."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = positive_int(value, "batch_size")

    @property
    def optimizer(self) -> Optimizer:
        """The optimizer, bound to ``model`` (see ``reluscope.optim``)."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be reluscope.SGD or reluscope.Adam, got {optimizer!r}")
        optimizer.bind(self.model)
        self._optimizer = optimizer

    @property
    def firing_counts(self) -> list[np.ndarray]:
        """Per hidden layer, the firing counts of the current epoch (see ``track_firing``)."""
        return [stats.firing_counts for stats in self.unit_stats]

    @property
    def gradient_magnitude(self) -> list[np.ndarray]:
        """Per hidden layer, the gradient magnitudes of the current epoch."""
        return [stats.gradient_magnitude for stats in self.unit_stats]

    @property
    def last_firing(self) -> list[np.ndarray]:
        """Per hidden layer, the last-firing records (``reluscope.tracking``)."""
        return [stats.last_firing for stats in self.unit_stats]

    def flush_last_firing(self) -> None:
        """Bring ``last_firing`` up to date (``fit`` does this after every epoch).

        Rows are written when a unit stops firing, with the layer medians left
        NaN; this fills the medians, and writes the rows of the units that fired
        in the latest step, whose last update may be the one that killed them.
        """
        with self._step_lock:
            if self._engine is not None:
                self._engine.flush_last_firing()

    def release(self) -> None:
        """Give back the workspaces of the C++ step (see the class docstring).

        Pending last-firing rows are written first, as ``flush_last_firing``
        does. Only the batch-sized buffers go; the next step allocates them
        again for its own batch, so training goes on exactly as without the
        release.
        """
        with self._step_lock:
            if self._engine is not None:
                self._engine.flush_last_firing()
                self._engine.release()

    def reset_firing_counts(self) -> None:
        """Zero ``firing_counts`` and ``gradient_magnitude`` (``fit`` does this every epoch)."""
        with self._step_lock:
            for stats in self.unit_stats:
                stats.reset_counts()

    def step(self, x_batch: npt.ArrayLike, y_batch: npt.ArrayLike) -> float:
        """One update on one batch. Returns the batch loss before the update."""
        # Shapes and types are checked here; NaN/Inf and the label range are
        # checked by the C++ step on the batch, in one pass, before any work.
        with self._step_lock:
            # First the C++ step for the model's arrays: built again when they
            # changed, after checking the layers (so a bad layer is named before
            # a bad batch, whose width comes from the layers).
            engine = self._training_step()
            x_batch = as_features(x_batch, "x_batch", self.model.n_features, check_finite=False)
            targets = self.loss.prepare_targets(y_batch, x_batch.shape[0], self.model.n_outputs,
                                                check_values=False)
            step = self.steps_done + 1
            # One call into C++ (no Batch or StepSettings objects): about a tenth
            # of a tiny model's step went to building them.
            result = engine.run_whole_batch(x_batch, targets, self.optimizer.settings(), step)
            return self._accept(result, step, None, x_batch, None)[0]

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, epochs: int = 1,
            callbacks: Iterable[Callback] | None = (), shuffle: bool = True,
            verbose: bool | None = None, *, checkpoint: PathLike | None = None,
            checkpoint_every: int = 1) -> History:
        """Train for ``epochs`` passes over (x, y), reshuffled each epoch from the seed.

        Returns the trainer's ``History`` (it accumulates across calls).
        Callbacks (None: none) get ``on_train_begin``, ``on_epoch_end`` and
        ``on_train_end``.
        ``verbose``: a progress bar (tqdm, optional) with the loss and the number
        of hidden units silent so far in the epoch; None shows it only when
        stderr is a terminal, False never.

        ``checkpoint``: a path; the trainer and ``callbacks`` are saved there
        (``save_checkpoint``) after every epoch whose number (counted over the
        trainer's life) is a multiple of ``checkpoint_every``, and, if training
        diverges, once more with the last finite state before
        ``TrainingDiverged`` propagates. Every callback must then be one a
        checkpoint can hold: this is checked before the first step.
        """
        self.model.check_layers(writeable=True)
        x = as_features(x, "x", self.model.n_features)
        targets = self.loss.prepare_targets(y, x.shape[0], self.model.n_outputs)
        epochs = positive_int(epochs, "epochs")
        callbacks = callback_list(callbacks)
        if checkpoint is not None:
            from .checkpoint import check_savable, save_checkpoint

            checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
            check_savable(self, callbacks)
        step_callbacks = [c for c in callbacks
                          if type(c).on_step_end is not Callback.on_step_end]
        self.fit_inputs = x
        n = x.shape[0]
        bar = _progress_bar(verbose, epochs * -(-n // self.batch_size))
        batch = self._batch(x, targets)
        for callback in callbacks:
            callback.on_train_begin(self)
        try:
            for _ in range(epochs):
                # Callbacks run between epochs and may have changed the layers.
                self.model.check_layers(writeable=True)
                epoch = self.epochs_done + 1
                order = self.rng.permutation(n) if shuffle else np.arange(n)
                self.reset_firing_counts()
                loss_sum, correct = 0.0, 0
                for start in range(0, n, self.batch_size):
                    rows = order[start:start + self.batch_size]
                    loss, batch_correct = self._run_step(batch, x, rows, epoch)
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
                logs = {"loss": loss_sum / n}
                if self.loss.is_classification:
                    logs["accuracy"] = correct / n
                with self._step_lock:  # a checkpoint from another thread sees all or none
                    self.epochs_done = epoch
                    self.flush_last_firing()
                    self.history.loss.append(logs["loss"])
                    if self.loss.is_classification:
                        # History(accuracy=[]) for a classification loss (see __init__).
                        assert self.history.accuracy is not None
                        self.history.accuracy.append(logs["accuracy"])
                for callback in callbacks:
                    callback.on_epoch_end(self, epoch, logs)
                if checkpoint is not None and epoch % checkpoint_every == 0:
                    save_checkpoint(self, checkpoint, callbacks,
                                    reason=f"every {checkpoint_every} epochs")
        except TrainingDiverged as diverged:
            if checkpoint is not None:
                # The model kept its parameters from before the failed step. A save
                # that fails must not hide the divergence: it is noted on it.
                try:
                    save_checkpoint(self, checkpoint, callbacks, reason="diverged")
                except Exception as error:  # noqa: BLE001 (reported with the divergence)
                    _add_note(diverged, f"the checkpoint of the last finite state could not "
                                        f"be written: {type(error).__name__}: {error}")
            raise
        finally:
            if bar is not None:
                bar.close()
            for callback in callbacks:
                callback.on_train_end(self)
            self.fit_inputs = None  # the data is the caller's; callbacks are done with it
        return self.history

    def save_checkpoint(self, path: PathLike, callbacks: Iterable[Callback] | None = ()) -> str:
        """Save this trainer, its model and optimizer, and ``callbacks`` to ``path``.

        ``Trainer.load_checkpoint(path)`` gives them back; ``fit`` then goes on
        exactly as this run would have (give it the same data). The file is an
        .npz archive with a JSON manifest (``reluscope.checkpoint``), written
        atomically. Pending last-firing rows are flushed first. Each callback
        must be one a checkpoint can hold (``DeadUnitMonitor``, ``ReDo``, or a
        registered class); any other raises a TypeError naming it. Returns the path.

        ``fit`` resumes from the start of an epoch: a checkpoint saved in the
        middle of one (from a callback's ``on_step_end``, or after a divergence)
        resumes with the next epoch. A fit that ends runs its callbacks'
        ``on_train_end`` (ReDo scores its recycled units then), so two fits of 2
        epochs are not one fit of 4 with ReDo; ``fit(..., checkpoint=path)``
        saves without ending the fit, and resuming from it is the uninterrupted run.
        """
        from .checkpoint import save_checkpoint

        # Between two steps: another thread's step would otherwise write the
        # arrays while they are being saved, and the file would match no step.
        with self._step_lock:
            return save_checkpoint(self, path, callbacks)

    @classmethod
    def load_checkpoint(cls, path: PathLike) -> tuple[Trainer, list[Callback]]:
        """``(trainer, callbacks)`` from a checkpoint written by ``save_checkpoint``.

        Nothing in the file is unpickled, imported or run. A truncated,
        corrupted or foreign file, or one from a newer reluscope, raises
        ``reluscope.CheckpointError`` naming the file and what is wrong.
        """
        from .checkpoint import load_checkpoint

        return load_checkpoint(path)

    def __getstate__(self) -> dict:
        """Pickle without the C++ step, the lock and a running fit's data."""
        # The C++ step does not pickle: flush what it holds pending into
        # last_firing, and let the copy build its own at its first step.
        self.flush_last_firing()
        state = self.__dict__.copy()
        state["_engine"] = state["_engine_key"] = None
        state["fit_inputs"] = None  # a running fit's data, not the trainer's
        del state["_step_lock"]  # a lock does not pickle; the copy gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore a pickled trainer, with a new lock."""
        self.__dict__.update(state)
        self._step_lock = threading.RLock()

    def _silent_units(self) -> int:
        """Hidden units that have not fired yet in this epoch (with track_firing)."""
        return int(sum(np.count_nonzero(c == 0) for c in self.firing_counts))

    def evaluate(self, x: npt.ArrayLike, y: npt.ArrayLike) -> dict:
        """Mean loss (and accuracy, for cross-entropy) on (x, y) without updating.

        The forward pass streams x in chunks (``MLP.forward``) and raises
        ``NonFiniteActivations`` as it does.
        """
        self.model.check_layers()
        x = as_features(x, "x", self.model.n_features)
        targets = self.loss.prepare_targets(y, x.shape[0], self.model.n_outputs)
        outputs = self.model.forward(x)
        grad_unused = np.empty_like(outputs)
        result = {"loss": float(self.loss(outputs, targets, grad_unused))}
        if self.loss.is_classification:
            result["accuracy"] = float(np.mean(outputs.argmax(axis=1) == targets))
        return result

    def _divergence_cause(self, x: np.ndarray) -> str | None:
        """Why a step on x went non-finite when a smaller learning rate would not help.

        A NaN or Inf parameter, or a forward that overflows float32; else None.
        """
        bad_parameter = nonfinite_parameter(self.model.layers)
        if bad_parameter is not None:
            return bad_parameter
        try:
            for _ in stream_layers(self.model.layers, x):
                pass
        except NonFiniteActivations as error:
            return str(error)
        return None

    def _arrays_unchanged(self, params=None) -> bool:
        """Whether the model holds the very arrays the C++ step was built on."""
        if self._engine_key is None:
            return False
        params = self.model.parameters() if params is None else params
        built_on = self._engine_key[3]
        return len(params) == len(built_on) and all(map(operator.is_, params, built_on))

    def _training_step(self):
        """Return the C++ step for the model, optimizer and tracking now (rebuilt on a change)."""
        params = self.model.parameters()
        tracking = (self.track_firing, self.track_gradients, self.track_deaths)
        cached = self._engine_key
        if (cached is not None and cached[0] is self.optimizer
                and cached[1] == self.optimizer.version and cached[2] == tracking
                and self._arrays_unchanged(params)):
            return self._engine
        if self._engine is not None:
            # The old step's pending rows and medians, before it goes.
            self._engine.flush_last_firing()
        self.optimizer.bind(self.model)  # the model may have been replaced since
        # New arrays (a callback may have assigned some): checked before C++ sees them.
        self.model.check_layers(writeable=True)
        state = self.optimizer.state_for(params)
        layers = self.model.layers
        self.unit_stats = stats_for(self.unit_stats, [layer.fan_out for layer in layers[:-1]])
        no_units = _core.UnitBuffers()
        specs = [_core.LayerSpec(
            layer.weight, layer.bias, layer.activation.kind, layer.activation.negative_slope,
            weight_state=state[2 * i].to_core(), bias_state=state[2 * i + 1].to_core(),
            units=(self.unit_stats[i].buffers(*tracking) if i < len(self.unit_stats)
                   else no_units))
            for i, layer in enumerate(layers)]
        self._engine = _core.TrainStep(specs, self.loss.kind)
        self._engine_key = (self.optimizer, self.optimizer.version, tracking, params)
        return self._engine

    def _batch(self, x: np.ndarray, targets: np.ndarray):
        """Return the C++ step's view of (x, targets), all rows; ``rows`` picks a batch of them."""
        if self.loss.is_classification:
            return _core.Batch.labelled(x, targets)
        return _core.Batch.with_targets(x, targets)

    def _run_step(self, batch, features: np.ndarray, rows, epoch: int | None):
        """One step on the rows ``rows`` of the batch (all when None); returns (loss, n_correct).

        ``features`` is the batch's x, read only to explain a failed step.
        """
        with self._step_lock:
            engine = self._training_step()
            step = self.steps_done + 1
            batch.rows = rows
            result = engine.run(batch, _core.StepSettings(self.optimizer.settings(), step))
            return self._accept(result, step, epoch, features, rows)

    def _accept(self, result, step: int, epoch: int | None, features: np.ndarray, rows):
        """Take a finished C++ step as step number ``step``: count it, or raise for its failure.

        Returns (loss, n_correct). ``features[rows]`` (all of ``features``
        when ``rows`` is None) was the step's x, read only to explain a failed step.
        """
        if not result.applied:
            _raise_for(result, step, epoch, lambda: self._divergence_cause(
                features if rows is None else features[rows]))
        self.optimizer.update_applied()
        self.steps_done = step
        self.last_grad_norm = result.grad_norm
        return result.loss, result.correct


def _add_note(error: BaseException, note: str) -> None:
    """``error.add_note`` where Python has it (3.11), else the note joins the message."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.args = (f"{error.args[0] if error.args else ''}; {note}",) + error.args[1:]


def _raise_for(result, step: int, epoch: int | None, find_cause) -> None:
    """Raise the error a step's status stands for (nothing was written).

    ``find_cause()`` explains a non-finite loss or update that the learning
    rate did not cause (None when it may have), on this error path only.
    """
    status = result.status
    if status == _core.StepStatus.x_not_finite:
        raise ValueError("x_batch contains NaN or Inf (after conversion to float32)")
    if status == _core.StepStatus.targets_not_finite:
        raise ValueError("y_batch contains NaN or Inf (after conversion to float32)")
    cause = find_cause()
    advice = "try a smaller learning rate" if cause is None else cause
    if status == _core.StepStatus.loss_not_finite:
        raise TrainingDiverged(
            f"loss became {result.loss} at step {step}; the model keeps its parameters from "
            f"before this step ({advice})", step=step, epoch=epoch)
    raise TrainingDiverged(
        f"the update at step {step} would make a parameter NaN or Inf; it was not "
        f"applied ({advice})", step=step, epoch=epoch)


def _progress_bar(verbose: bool | None, total: int):
    """Return a tqdm bar on stderr, or None when quiet or when tqdm is not installed."""
    if verbose is False or (verbose is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="batch", file=sys.stderr)
