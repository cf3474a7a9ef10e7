"""The training-callback protocol of ``Trainer.fit``, and the state a callback saves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .trainer import Trainer


class Callback:
    """Override what you need. Epochs are numbered from 1; epoch 0 is the initial model.

    A callback can be saved in a checkpoint (``Trainer.save_checkpoint``) when
    its class defines ``state_dict(self) -> CallbackState`` and the class method
    ``from_state_dict(cls, state) -> callback``, and is registered under a name
    with ``reluscope.checkpoint.register_callback`` (``DeadUnitMonitor`` and
    ``ReDo`` are). Any other callback given to a checkpoint is an error.
    """

    def on_train_begin(self, trainer: Trainer) -> None:
        """Act once before the first epoch of ``fit`` (here: nothing)."""

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        """Act after each applied update (here: nothing); ``step`` counts updates from 1.

        Only callbacks that override it are called, so the others cost
        nothing per step. ``trainer.fit_inputs`` holds the inputs of the
        running ``fit``.
        """

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        """Act after each epoch (here: nothing); ``logs`` has its "loss" (and "accuracy")."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Act once after the last epoch, also when training diverged (here: nothing)."""


def callback_list(callbacks: Iterable[Callback] | None) -> list[Callback]:
    """``callbacks`` as a list (None: none); a TypeError for anything but callbacks.

    A lone callback (not in a list) gets an error that says to wrap it.
    """
    if isinstance(callbacks, Callback):
        raise TypeError("callbacks must be a list of callbacks; wrap a single one: "
                        f"callbacks=[{type(callbacks).__name__}(...)]")
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a list of reluscope.Callback, got {callbacks!r}")
    listed = list(callbacks)
    for i, callback in enumerate(listed):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{i}] must be a reluscope.Callback, "
                            f"got {type(callback).__name__}")
    return listed


@dataclass
class CallbackState:
    """What a callback keeps in a checkpoint.

    Attributes
    ----------
    settings : dict
        JSON values (dicts with string keys, lists, strings, ints, floats,
        booleans, None); floats come back bit for bit, NaN and infinities
        included. Tuples come back as lists.
    arrays : dict of str to ndarray
        Numeric arrays by name (any "/"-separated name); they come back with
        their dtype and shape. Object arrays cannot be saved.
    """

    settings: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def nested(self, prefix: str) -> CallbackState:
        """Return the arrays named ``prefix/...``, without the prefix, and ``settings[prefix]``."""
        start = prefix + "/"
        return CallbackState(self.settings[prefix],
                             {name[len(start):]: array for name, array in self.arrays.items()
                              if name.startswith(start)})


def __getattr__(name: str) -> Any:
    # TensorBoard lives in its own module, loaded on first use: it needs the scans
    # (which import this module) and, when built, tensorboardX.
    if name == "TensorBoard":
        from .tensorboard_log import TensorBoard

        return TensorBoard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
