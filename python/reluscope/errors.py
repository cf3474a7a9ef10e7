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
    """A model or checkpoint file cannot be read.

    It is truncated, corrupted, of another kind, or written by a newer
    reluscope. The message names the file and what is wrong with it.
    """


class NonFiniteActivations(ValueError):
    """A layer's pre-activation overflowed float32 or met a NaN or Inf parameter.

    A ReLU maps NaN to 0, so such a pre-activation would pass for a unit that
    does not fire: reluscope refuses it instead of computing with it. ``layer``
    is the index in ``model.layers`` of the first layer affected, ``n_samples``
    and ``n_units`` how many samples and units of that layer are affected,
    ``first_sample`` the index of the first such sample, and ``cause``
    ``"non-finite weights"`` (a NaN or Inf weight or bias), or, when every
    parameter is finite, ``"inputs too large"`` or ``"weights too large"``
    (whichever of the largest |x| and the largest |weight| is larger).
    """

    def __init__(self, message: str, *, layer: int, n_samples: int, n_units: int,
                 first_sample: int, cause: str):
        super().__init__(message)
        self.layer = layer
        self.n_samples = n_samples
        self.n_units = n_units
        self.first_sample = first_sample
        self.cause = cause
