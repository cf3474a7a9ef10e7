"""Losses, by name. Each returns the mean loss and d loss / d outputs.

``prepare_targets(..., check_values=False)`` skips the checks that read every
value (label range, NaN/Inf): the C++ training step makes them on its batch.

- ``cross_entropy``: softmax cross-entropy of the logits against integer class
  labels, mean over the batch; computed as log-sum-exp minus the true logit,
  shifted by the row maximum so it never overflows.
- ``mse``: mean over all elements of (output - target)**2.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validation import as_class_labels, as_regression_targets, lookup


class CrossEntropy:
    """Softmax cross-entropy of the logits against integer class labels."""

    name = "cross_entropy"
    kind = _core.Loss.cross_entropy
    is_classification = True

    @staticmethod
    def prepare_targets(y, n_samples: int, n_outputs: int, check_values: bool = True):
        """Check the class labels ``y`` and return them as the loss takes them."""
        return as_class_labels(y, n_samples, n_outputs, check_range=check_values)

    @staticmethod
    def __call__(outputs: np.ndarray, targets: np.ndarray, grad: np.ndarray) -> float:
        """Return the mean loss and write d loss / d outputs into ``grad``."""
        return _core.softmax_cross_entropy(outputs, targets, grad)


class MeanSquaredError:
    """Mean over all elements of (output - target)**2."""

    name = "mse"
    kind = _core.Loss.mse
    is_classification = False

    @staticmethod
    def prepare_targets(y, n_samples: int, n_outputs: int, check_values: bool = True):
        """Check the regression targets ``y`` and return them as the loss takes them."""
        return as_regression_targets(y, n_samples, n_outputs, check_finite=check_values)

    @staticmethod
    def __call__(outputs: np.ndarray, targets: np.ndarray, grad: np.ndarray) -> float:
        """Return the mean loss and write d loss / d outputs into ``grad``."""
        return _core.mean_squared_error(outputs, targets, grad)


LOSSES = {"cross_entropy": CrossEntropy(), "mse": MeanSquaredError()}


def get_loss(name: str):
    """Return the loss called ``name`` ("cross_entropy" or "mse")."""
    return lookup(LOSSES, name, "loss")
