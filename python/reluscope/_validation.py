"""The one place where user input becomes what the kernels accept.

Every public entry point passes its arrays through these helpers once: they
return C-contiguous float32 (or int64 labels) and raise a ``ValueError`` or
``TypeError`` that names the argument and the problem. The C++ bindings accept
only arrays that are already right, so nothing is copied again on the hot path.
"""

from __future__ import annotations

import numbers

import numpy as np

# numpy dtype kinds, tested as characters: np.issubdtype costs about a
# microsecond per call, a tenth of a tiny training step. np.number is
# "iufcm" (timedelta64 counts as an integer), np.integer "ium", np.floating "f".
_NUMBER_KINDS = "iufcm"
_INTEGER_KINDS = "ium"


def as_features(x, name: str = "x", n_features: int | None = None,
                check_finite: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 array of shape (n_samples, n_features).

    ``check_finite=False`` leaves the NaN/Inf check to the caller (the C++
    training step checks its batch in one vectorized pass).

    Raises
    ------
    TypeError
        If ``x`` is not numeric.
    ValueError
        If ``x`` is not 2-D, is empty, holds NaN or Inf, or has a feature count
        other than ``n_features``.
    """
    array = np.asarray(x)
    kind = array.dtype.kind
    if kind not in _NUMBER_KINDS and kind != "b":
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if kind == "c":
        raise TypeError(f"{name} must be real, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-dimensional (n_samples, n_features), got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"{name} has {array.shape[1]} features but the first layer expects {n_features}"
        )
    return _as_float32(array, name, check_finite)


def _as_float32(array: np.ndarray, name: str, check_finite: bool) -> np.ndarray:
    """C-contiguous float32 (copied only when needed), optionally checked for NaN/Inf."""
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        with np.errstate(over="ignore"):  # an overflow becomes Inf, reported just below
            array = np.ascontiguousarray(array, dtype=np.float32)
    if check_finite and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf (after conversion to float32)")
    return array


def as_class_labels(y, n_samples: int, n_classes: int, name: str = "y",
                    check_range: bool = True) -> np.ndarray:
    """Return integer class labels as a C-contiguous int64 array of shape (n_samples,).

    Floats that hold whole numbers (``2.0``) are accepted; anything else is not.
    ``check_range=False`` leaves the range check to the caller (the C++ training
    step checks the labels of its batch).
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(
            f"{name} must be 1-dimensional class labels (n_samples,), got shape {labels.shape}"
        )
    _check_length(labels, n_samples, name)
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            raise ValueError(f"{name} contains NaN or Inf")
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
    elif labels.dtype.kind not in _INTEGER_KINDS and labels.dtype.kind != "b":
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.dtype != np.int64 or not labels.flags.c_contiguous:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
    if not check_range:
        return labels
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} has label {bad}, outside [0, {n_classes}) for a model with "
            f"{n_classes} outputs"
        )
    return labels


def as_regression_targets(y, n_samples: int, n_outputs: int, name: str = "y",
                          check_finite: bool = True) -> np.ndarray:
    """Return regression targets as C-contiguous float32 of shape (n_samples, n_outputs).

    A 1-D ``y`` is accepted for a model with one output.
    """
    targets = np.asarray(y)
    if targets.dtype.kind not in _NUMBER_KINDS and targets.dtype.kind != "b":
        raise TypeError(f"{name} must be numeric, got dtype {targets.dtype}")
    if targets.ndim == 1 and n_outputs == 1:
        targets = targets.reshape(-1, 1)
    if targets.ndim != 2:
        raise ValueError(
            f"{name} must be 2-dimensional (n_samples, n_outputs), got shape {targets.shape}"
        )
    _check_length(targets, n_samples, name)
    if targets.shape[1] != n_outputs:
        raise ValueError(
            f"{name} has {targets.shape[1]} columns but the model has {n_outputs} outputs"
        )
    return _as_float32(targets, name, check_finite)


def _check_length(y: np.ndarray, n_samples: int, name: str) -> None:
    if y.shape[0] != n_samples:
        raise ValueError(f"x has {n_samples} samples but {name} has {y.shape[0]}")


def positive_int(value, name: str) -> int:
    """Return ``value`` as an int >= 1, or raise naming ``name``."""
    return _int_at_least(value, name, 1)


def nonnegative_int(value, name: str) -> int:
    """Return ``value`` as an int >= 0, or raise naming ``name``."""
    return _int_at_least(value, name, 0)


def _int_at_least(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def finite_float(value, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float inside the given bounds, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def lookup(registry: dict, name, kind: str):
    """``registry[name]``, or a ValueError that lists the known names of this kind."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be given by name (a string), got {name!r}")
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} {name!r}; known: {known}") from None
