"""Exceptions raised by reluscope."""

from __future__ import annotations


class TrainingDiverged(FloatingPointError):
    """The loss or an updated parameter became NaN or Inf.

    The model keeps the parameters it had before the step that diverged (its
    last finite state). ``step`` is the 1-based number of the failed step
    within this trainer and ``epoch`` the 1-based epoch, or None outside fit.
    """

    def __init__(self, message: str, *, step: int, epoch: int | None = None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch


class CheckpointError(ValueError):
    """A model or checkpoint file cannot be read: truncated, corrupted, of another
    kind, or written by a newer reluscope. The message names the file and what is
    wrong with it."""
