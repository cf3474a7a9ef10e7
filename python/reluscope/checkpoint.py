"""Checkpoints: a training run saved whole, to be resumed bit for bit, in this process or another.

``trainer.save_checkpoint(path, callbacks=[...])`` writes, and
``trainer, callbacks = Trainer.load_checkpoint(path)`` reads, one archive
(``reluscope._archive``: arrays and a JSON manifest in an .npz) holding

- the model (as in a model file, see ``reluscope.model_file``), under ``model``;
- the optimizer: its kind, hyper-parameters, updates applied (``steps``, which
  places clipping's and warmup's schedules), per-parameter state (momentum,
  Adam's moments and moment cohorts) and Adam's ``cohort_start``;
- the trainer: loss, batch size, tracking flags, the shuffling generator's
  state, epochs and steps done, the history, ``last_grad_norm`` and the
  death-tracking buffers (``unit_stats``, flushed first);
- each callback's state, under the name its class is registered with.

Manifest fields: ``format`` ("reluscope.checkpoint"), ``schema_version`` (1),
``reluscope_version``, ``saved_at`` (``epoch``, ``step``, ``reason``:
"requested", "every N epochs" or "diverged"), ``model``, ``optimizer``,
``trainer`` and ``callbacks`` (a list of ``{"kind", "settings"}``). The arrays
are named ``model/...``, ``optimizer/...``, ``trainer/...`` and
``callbacks/<i>/...``.

Only the callback classes in the registry can be saved and rebuilt, looked up
by the name stored in the file: loading never imports or calls code that the
file names. A callback outside the registry is an error, never dropped.

What is not saved: the training data (give ``fit`` the same x and y to go on
exactly) and the C++ step, which is rebuilt at the first step. ``fit`` saves
between epochs; the checkpoint of a diverged run is taken in the middle of an
epoch, and a ``fit`` resumed from it starts a new epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._archive import read_archive, translated_errors, write_archive
from ._rng_state import generator_from_state, generator_state
from .callbacks import Callback, CallbackState, callback_list
from .errors import CheckpointError
from .model_file import describe_model, rebuild_model
from .monitor import DeadUnitMonitor
from .optim import SGD, Adam, AdamState, Optimizer, SGDState
from .redo import ReDo
from .tracking import LAST_FIRING_FIELDS, UnitStats, stats_for
from .trainer import History, Trainer

if TYPE_CHECKING:
    from ._typing import PathLike

CHECKPOINT_FORMAT = "reluscope.checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1

# The callback classes a checkpoint may hold, by the name stored in the file.
# type[Any]: any class with state_dict() and from_state_dict(state) (see register_callback).
CALLBACK_KINDS: dict[str, type[Any]] = {"DeadUnitMonitor": DeadUnitMonitor, "ReDo": ReDo}

# The optimizers, by the name of their kind, and the state class of each.
OPTIMIZERS: dict[str, tuple[type[Optimizer], type]] = {
    "sgd": (SGD, SGDState), "adam": (Adam, AdamState),
}


def register_callback(name: str, cls: type) -> None:
    """Let checkpoints save and rebuild callbacks of class ``cls``, stored as ``name``.

    ``cls`` must define ``state_dict(self) -> CallbackState`` and the class
    method ``from_state_dict(cls, state)``. Loading a checkpoint that holds
    ``name`` needs the same registration in the loading process.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(cls, type) or not callable(getattr(cls, "state_dict", None)) \
            or not callable(getattr(cls, "from_state_dict", None)):
        raise TypeError(f"{cls!r} needs state_dict() and from_state_dict(state) to be saved")
    registered = CALLBACK_KINDS.get(name)
    if registered is not None and registered is not cls:
        raise ValueError(f"{name!r} is already the name of {registered.__qualname__}")
    CALLBACK_KINDS[name] = cls


def check_savable(trainer: Trainer, callbacks: Iterable[Callback]) -> list[str]:
    """Return each callback's registered name; raise a TypeError for one that cannot be saved."""
    names = []
    kinds = {cls: name for name, cls in CALLBACK_KINDS.items()}
    for i, callback in enumerate(callbacks):
        name = kinds.get(type(callback))
        if name is None:
            raise TypeError(
                f"callbacks[{i}] ({type(callback).__qualname__}) cannot be saved in a "
                f"checkpoint: checkpoints hold {', '.join(sorted(CALLBACK_KINDS))}; register "
                "its class with reluscope.checkpoint.register_callback, or leave it out")
        if isinstance(callback, ReDo) and callback.init is None and not (
                trainer.model.init is None or isinstance(trainer.model.init, str)):
            raise TypeError(
                f"callbacks[{i}] (ReDo) draws fresh weights from the model's initializer, the "
                "callable that a checkpoint cannot hold: give ReDo(init=...) by name")
        names.append(name)
    return names


def save_checkpoint(trainer: Trainer, path: PathLike, callbacks: Iterable[Callback] | None = (), *,
                    reason: str = "requested") -> str:
    """Write ``trainer`` and ``callbacks`` to ``path`` (atomically); return the path."""
    callbacks = callback_list(callbacks)
    names = check_savable(trainer, callbacks)
    trainer.flush_last_firing()
    model, arrays = describe_model(trainer.model, "model/")
    optimizer, optimizer_arrays = _describe_optimizer(trainer.optimizer,
                                                      trainer.model.parameters())
    trainer_entry, trainer_arrays = _describe_trainer(trainer)
    callback_entries = []
    for i, (name, callback) in enumerate(zip(names, callbacks)):
        # check_savable found each one registered, so with a state_dict method.
        state = callback.state_dict()  # type: ignore[attr-defined]
        if not isinstance(state, CallbackState):
            raise TypeError(f"callbacks[{i}] ({name}).state_dict() must return a "
                            f"reluscope.callbacks.CallbackState, got {type(state).__name__}")
        callback_entries.append({"kind": name, "settings": state.settings})
        for key, array in state.arrays.items():
            array = np.asarray(array)
            if array.dtype.hasobject:
                raise TypeError(f"callbacks[{i}] ({name}) array {key!r} holds Python objects")
            arrays[f"callbacks/{i}/{key}"] = array
    arrays.update(optimizer_arrays)
    arrays.update(trainer_arrays)
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "schema_version": CHECKPOINT_SCHEMA_VERSION,
        "saved_at": {"epoch": trainer.epochs_done, "step": trainer.steps_done, "reason": reason},
        "model": model,
        "optimizer": optimizer,
        "trainer": trainer_entry,
        "callbacks": callback_entries,
    }
    return write_archive(path, manifest, arrays)


def load_checkpoint(path: PathLike) -> tuple[Trainer, list[Callback]]:
    """(trainer, callbacks) as ``save_checkpoint`` wrote them to ``path``.

    A truncated, corrupted or foreign file, or one from a newer reluscope,
    raises CheckpointError naming the file and what is wrong.
    """
    name = str(path)
    manifest, arrays = read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_SCHEMA_VERSION)
    with translated_errors(name):
        model = rebuild_model(manifest["model"], arrays, name, "model/")
        optimizer = _rebuild_optimizer(manifest["optimizer"], arrays, model, name)
        trainer = _rebuild_trainer(manifest["trainer"], arrays, model, optimizer, name)
        callbacks = [_rebuild_callback(entry, arrays, i, name)
                     for i, entry in enumerate(manifest["callbacks"])]
    return trainer, callbacks


def read_manifest(path: PathLike) -> dict:
    """Return the manifest of the checkpoint at ``path``, without rebuilding anything.

    The manifest says what the checkpoint holds, when and why it was saved.
    """
    return read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_SCHEMA_VERSION)[0]


def _describe_optimizer(optimizer, params: list[np.ndarray]) -> tuple[dict, dict]:
    kind = optimizer.kind.name
    if kind not in OPTIMIZERS or type(optimizer) is not OPTIMIZERS[kind][0]:
        raise TypeError(f"a {type(optimizer).__qualname__} optimizer cannot be saved; "
                        "checkpoints hold reluscope.SGD and reluscope.Adam")
    state_class = OPTIMIZERS[kind][1]
    arrays = {}
    # State kept from layers that have since changed shape is state the next
    # step would replace with zeros (Optimizer.state_for): the file holds none
    # instead, which loads as that same fresh start.
    states = optimizer.state if optimizer.state_matches(params) else None
    for i, state in enumerate(states or []):
        for field in dataclasses.fields(state):
            value = getattr(state, field.name)
            if value is not None:  # Adam's cohorts exist once units were recycled
                arrays[f"optimizer/state/{i}/{field.name}"] = value
    if isinstance(optimizer, Adam):
        arrays["optimizer/cohort_start"] = optimizer.cohort_start
    entry = {
        "kind": kind,
        "hyperparameters": optimizer.hyperparameters(),
        "steps": optimizer.steps,
        "has_state": states is not None,
        "state_fields": [field.name for field in dataclasses.fields(state_class)],
    }
    return entry, arrays


def _rebuild_optimizer(entry: dict, arrays: dict, model, name: str):
    kind = entry["kind"]
    if kind not in OPTIMIZERS:
        raise CheckpointError(f"{name} holds an optimizer of kind {kind!r}; this reluscope "
                              f"knows {', '.join(OPTIMIZERS)}")
    optimizer_class, state_class = OPTIMIZERS[kind]
    optimizer = optimizer_class(**entry["hyperparameters"])
    if _flag(entry, "has_state", name):
        state = []
        for i, param in enumerate(model.parameters()):
            buffers = {field: _c_order(arrays.get(f"optimizer/state/{i}/{field}"))
                       for field in entry["state_fields"]}
            _check_state_buffers(buffers, optimizer.new_state(param), f"{name}: optimizer "
                                 f"state of parameter {i}")
            state.append(state_class(**buffers))
        optimizer.state = state
    if isinstance(optimizer, Adam):
        optimizer.cohort_start = arrays["optimizer/cohort_start"].astype(np.int64, copy=True)
        starts = optimizer.cohort_start
        if starts.ndim != 1 or not len(starts) or starts[0] != 0 or (np.diff(starts) <= 0).any():
            raise CheckpointError(f"{name}: optimizer/cohort_start is not an increasing list "
                                  f"of update counts starting at 0: {starts!r}")
    optimizer.steps = _count(entry, "steps", name, "optimizer")
    if isinstance(optimizer, Adam):
        if optimizer.cohort_start[-1] > optimizer.steps:
            raise CheckpointError(f"{name}: a moment cohort starts after update "
                                  f"{optimizer.cohort_start[-1]}, beyond the optimizer's "
                                  f"{optimizer.steps} updates")
        for i, state in enumerate(optimizer.state or []):
            if state.cohort is not None and state.cohort.max(initial=0) >= len(
                    optimizer.cohort_start):
                raise CheckpointError(f"{name}: the optimizer state of parameter {i} names a "
                                      f"moment cohort beyond cohort_start")
    optimizer.version += 1
    return optimizer


def _check_state_buffers(buffers: dict, fresh, where: str) -> None:
    """Check that the saved buffers have the shapes and dtypes of a fresh state, all there.

    A fresh state holds None where a buffer is optional (Adam's cohorts, int32).
    """
    for field in dataclasses.fields(fresh):
        expected = getattr(fresh, field.name)
        array = buffers.get(field.name)
        if array is None:
            if expected is not None:
                raise CheckpointError(f"{where} has no {field.name}")
            continue
        dtype = np.int32 if expected is None else expected.dtype
        shape = np.shape(getattr(fresh, dataclasses.fields(fresh)[0].name))
        if array.dtype != dtype or array.shape != shape:
            raise CheckpointError(f"{where}: {field.name} is {array.dtype} {array.shape}, "
                                  f"expected {np.dtype(dtype)} {shape}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise CheckpointError(f"{where}: {field.name} holds NaN or Inf")
        if array.dtype.kind == "i" and (array < 0).any():
            raise CheckpointError(f"{where}: {field.name} holds negative cohort ids")


def _c_order(array):
    """Return a C-contiguous copy when the file stored the array in Fortran order."""
    return None if array is None else np.ascontiguousarray(array)


def _count(entry: dict, key: str, name: str, where: str) -> int:
    """``entry[key]`` as a count: a non-negative integer, else CheckpointError."""
    value = entry[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 62:
        raise CheckpointError(f"{name}: {where} {key} must be a count (an integer >= 0), "
                              f"got {value!r}")
    return value


def _flag(entry: dict, key: str, name: str) -> bool:
    value = entry[key]
    if not isinstance(value, bool):
        raise CheckpointError(f"{name}: {key} must be true or false, got {value!r}")
    return value


def _numbers(values, key: str, name: str) -> list:
    """Return a history list: numbers, or null where a value was not finite."""
    if not isinstance(values, list) or not all(
            value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
            for value in values):
        raise CheckpointError(f"{name}: history {key} must be a list of numbers")
    return [float("nan") if value is None else float(value) for value in values]


def _describe_trainer(trainer: Trainer) -> tuple[dict, dict]:
    arrays: dict[str, np.ndarray] = {}
    # As the next step would keep them: a hidden layer whose width changed since
    # the last step starts its statistics afresh (tracking.stats_for).
    unit_stats = stats_for(trainer.unit_stats,
                           [layer.fan_out for layer in trainer.model.hidden_layers])
    for i, stats in enumerate(unit_stats):
        prefix = f"trainer/unit_stats/{i}/"
        arrays[prefix + "firing_counts"] = stats.firing_counts
        arrays[prefix + "gradient_magnitude"] = stats.gradient_magnitude
        arrays[prefix + "last_firing"] = stats.last_firing.view(np.float64).reshape(
            stats.n_units, len(LAST_FIRING_FIELDS))
    entry = {
        "loss": trainer.loss.name,
        "batch_size": trainer.batch_size,
        "track_firing": trainer.track_firing,
        "track_gradients": trainer.track_gradients,
        "track_deaths": trainer.track_deaths,
        "rng": generator_state(trainer.rng),
        "epochs_done": trainer.epochs_done,
        "steps_done": trainer.steps_done,
        "history": trainer.history.to_dict(),
        "last_grad_norm": trainer.last_grad_norm,
        "unit_stats_layers": len(unit_stats),
        "last_firing_fields": list(LAST_FIRING_FIELDS),
    }
    return entry, arrays


def _rebuild_trainer(entry: dict, arrays: dict, model, optimizer, name: str) -> Trainer:
    if not isinstance(entry["loss"], str):
        raise CheckpointError(f"{name}: the trainer's loss must be a name, got {entry['loss']!r}")
    trainer = Trainer(model, entry["loss"], optimizer=optimizer, batch_size=entry["batch_size"],
                      track_firing=_flag(entry, "track_firing", name),
                      track_gradients=_flag(entry, "track_gradients", name),
                      track_deaths=_flag(entry, "track_deaths", name))
    trainer.rng = generator_from_state(entry["rng"])
    trainer.epochs_done = _count(entry, "epochs_done", name, "trainer")
    trainer.steps_done = _count(entry, "steps_done", name, "trainer")
    history = entry["history"]
    loss = _numbers(history["loss"], "loss", name)
    accuracy = None if history["accuracy"] is None else _numbers(history["accuracy"],
                                                                  "accuracy", name)
    if len(loss) != trainer.epochs_done or (accuracy is not None
                                            and len(accuracy) != len(loss)):
        raise CheckpointError(f"{name}: the history holds {len(loss)} epochs, the trainer "
                              f"{trainer.epochs_done}")
    trainer.history = History(loss=loss, accuracy=accuracy)
    trainer.last_grad_norm = float(entry["last_grad_norm"])
    if list(entry["last_firing_fields"]) != list(LAST_FIRING_FIELDS):
        raise CheckpointError(f"{name} records the last firing of each unit with the fields "
                              f"{entry['last_firing_fields']}; this reluscope uses "
                              f"{list(LAST_FIRING_FIELDS)}")
    if _count(entry, "unit_stats_layers", name, "trainer") != len(model.hidden_layers):
        raise CheckpointError(f"{name}: the trainer holds unit statistics of "
                              f"{entry['unit_stats_layers']} layers, the model has "
                              f"{len(model.hidden_layers)} hidden layers")
    unit_stats = []
    for i in range(int(entry["unit_stats_layers"])):
        prefix = f"trainer/unit_stats/{i}/"
        stats = UnitStats(model.hidden_layers[i].fan_out)
        records = stats.last_firing.view(np.float64).reshape(stats.n_units, -1)
        for key, target in (("firing_counts", stats.firing_counts),
                            ("gradient_magnitude", stats.gradient_magnitude),
                            ("last_firing", records)):
            saved = arrays[prefix + key]
            if saved.dtype != target.dtype or saved.shape != target.shape:
                raise CheckpointError(f"{name}: {prefix}{key} is {saved.dtype} {saved.shape}, "
                                      f"expected {target.dtype} {target.shape}")
            target[...] = saved
        unit_stats.append(stats)
    trainer.unit_stats = unit_stats
    return trainer


def _rebuild_callback(entry: dict, arrays: dict, index: int, name: str):
    kind = entry["kind"]
    cls = CALLBACK_KINDS.get(kind)
    if cls is None:
        raise CheckpointError(
            f"{name} holds a callback of kind {kind!r}, which is not registered in this "
            f"process (registered: {', '.join(sorted(CALLBACK_KINDS))}); register it with "
            "reluscope.checkpoint.register_callback before loading")
    prefix = f"callbacks/{index}/"
    state = CallbackState(entry["settings"], {key[len(prefix):]: array
                                              for key, array in arrays.items()
                                              if key.startswith(prefix)})
    try:
        return cls.from_state_dict(state)
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{name}: callbacks[{index}] ({kind}) could not be rebuilt from "
                              f"its saved state: {type(error).__name__}: {error}") from error
