"""One training run with full death bookkeeping: the trial of lr-sweep and compare-remedies."""

from __future__ import annotations

import functools

import numpy as np

from ..callbacks import Callback
from ..errors import NonFiniteActivations, TrainingDiverged
from ..model import MLP
from ..monitor import DeadUnitMonitor
from ..optim import SGD, Adam, Optimizer
from ..redo import ReDo
from ..trainer import Trainer
from ._common import load_data


@functools.lru_cache(maxsize=4)
def cached_data(dataset: str, max_train: int | None, seed: int):
    """Return the data of a trial, loaded once per worker process."""
    return load_data(dataset, max_train=max_train, seed=seed)


def train_trial(lr: float, seed: int, dataset: str = "auto", hidden=(128, 128, 128),
                epochs: int = 10, batch_size: int = 32, optimizer: str = "sgd",
                momentum: float = 0.0, init: str = "he_normal", activation: str = "relu",
                clip_norm: float | None = None, warmup_steps: int = 0,
                redo_every: int | None = None, max_train: int | None = 4000,
                data_seed: int = 0) -> dict:
    """Train one MLP and report what happened to its ReLU units.

    The model's weights come from ``seed`` (so every learning rate starts from
    the same init for one seed), the batch order from ``seed`` too. A run that
    diverges is kept: ``diverged`` says at which step, and the statistics are
    those of the model's last finite state. When even that state overflows
    float32 on the data (its pre-activations are NaN or Inf, so no unit is
    dead or alive), ``final_scan_note`` says so, the final dead fractions are
    those of the latest scan the monitor could make, and the test loss and
    accuracy are NaN.
    """
    from .. import get_num_threads

    name, x, y, x_test, y_test, n_classes = cached_data(dataset, max_train, data_seed)
    # One output per class of the whole dataset: a small max_train may draw
    # subsets that lack its largest label.
    model = MLP([x.shape[1], *hidden, n_classes], activation=activation, init=init, seed=seed)
    opt: Optimizer
    if optimizer == "sgd":
        opt = SGD(lr=lr, momentum=momentum, clip_norm=clip_norm, warmup_steps=warmup_steps)
    elif optimizer == "adam":
        opt = Adam(lr=lr, clip_norm=clip_norm, warmup_steps=warmup_steps)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    # Gradient tracking shows whether units that never fired still got gradient
    # (exactly none for ReLU; some for leaky ReLU).
    trainer = Trainer(model, optimizer=opt, batch_size=batch_size, seed=seed,
                      track_gradients=True)
    monitor = DeadUnitMonitor(x)
    callbacks: list[Callback] = [monitor]
    redo = None
    if redo_every:
        redo = ReDo(every=redo_every, seed=seed)
        callbacks.append(redo)
    diverged = None
    try:
        trainer.fit(x, y, epochs=epochs, callbacks=callbacks, verbose=False)
    except TrainingDiverged as error:
        diverged = {"step": error.step, "epoch": error.epoch, "message": str(error)}
    except NonFiniteActivations as error:
        # Every step's loss and update were finite, but the monitor's scan after
        # the epoch overflows float32 on the data: the run diverged between steps.
        diverged = {"step": trainer.steps_done, "epoch": trainer.epochs_done,
                    "message": f"the scan after epoch {trainer.epochs_done} overflows: {error}"}
    sizes = [layer.fan_out for layer in model.hidden_layers]
    final, final_note = monitor.reports[-1], None
    if diverged is not None:
        try:
            final = _final_scan(model, x)
        except NonFiniteActivations as error:
            final_note = (f"the last finite state overflows float32 on the training data "
                          f"({error}); final dead fractions from the scan after epoch "
                          f"{monitor.epochs[-1]}")
    try:
        evaluation = trainer.evaluate(x_test, y_test)
    except NonFiniteActivations:
        evaluation = {"loss": float("nan"), "accuracy": float("nan")}
    certificates = [{**{key: getattr(c, key) for key in ("layer", "unit", "last_fired_step",
                                                         "confirmed_by_scan_after_epoch",
                                                         "relative_update", "conditions")},
                     "cause": c.cause_text}
                    for c in monitor.certificates if c.cause != "born dead"]
    causes: dict[str, int] = {}
    for certificate in certificates:
        causes[certificate["cause"]] = causes.get(certificate["cause"], 0) + 1
    return {
        "lr": float(lr), "seed": int(seed), "dataset": name, "layer_sizes": model.layer_sizes,
        "diverged": diverged,
        "epochs_run": trainer.epochs_done,
        "dead_fraction_init": [layer.dead_fraction for layer in monitor.reports[0].layers],
        "dead_fraction_final": [layer.dead_fraction for layer in final.layers],
        "final_scan_note": final_note,
        "dead_fraction_by_epoch": (np.asarray(monitor.dead_counts, dtype=float)
                                   / np.asarray(sizes)).tolist(),
        "revivals": len(monitor.revivals),
        "revivals_by_layer": np.bincount([layer for _, layer, _ in monitor.revivals],
                                         minlength=len(sizes)).tolist(),
        "test_accuracy": evaluation.get("accuracy"),
        "test_loss": evaluation["loss"],
        "train_loss": list(trainer.history.loss),
        "cause_counts": causes,
        "certificates": certificates,
        "redo": None if redo is None else {"recycled": redo.recycled,
                                           "stayed_alive": redo.stayed_alive},
        "silent_units_last_epoch": None if not monitor.silent_unit_gradients else sum(
            e["silent_units"] for e in monitor.silent_unit_gradients[-1][1]),
        "silent_units_get_gradient": None if not monitor.silent_unit_gradients else any(
            not e["silent_gradient_exactly_zero"] for e in monitor.silent_unit_gradients[-1][1]
            if e["silent_units"]),
        "threads": get_num_threads(),
    }


def _final_scan(model, x):
    from ..scan import scan

    return scan(model, x, dormancy=False)
