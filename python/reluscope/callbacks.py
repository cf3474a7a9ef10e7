"""The training-callback protocol of ``Trainer.fit``."""

from __future__ import annotations


class Callback:
    """Override what you need. Epochs are numbered from 1; epoch 0 is the initial model."""

    def on_train_begin(self, trainer) -> None:
        """Called once before the first epoch of ``fit``."""

    def on_step_end(self, trainer, step: int) -> None:
        """Called after each applied update; ``step`` counts updates from 1.

        Only callbacks that override it are called, so the others cost
        nothing per step. ``trainer.fit_inputs`` holds the inputs of the
        running ``fit``.
        """

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """Called after each epoch; ``logs`` holds that epoch's "loss" (and "accuracy")."""

    def on_train_end(self, trainer) -> None:
        """Called once after the last epoch (also when training diverged)."""
