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
# microsecond per call, a tenth of a tiny training step. Data is real numbers:
# bool, signed and unsigned integers, floats. Complex ("c") would lose its
# imaginary part in the cast to float32, and timedelta64 ("m"), which numpy
# counts as an integer, and datetime64 ("M") are times, not data.
_REAL_KINDS = "biuf"
_INTEGER_KINDS = "iu"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# The dtypes the kernels take, made once: comparing an array's dtype with
# np.float32 builds a dtype from the type at every call. numpy's built-in
# dtypes are singletons, so the fast paths below test identity; an equal dtype
# that is another object (a byte-swapped one is not equal) takes the general path.
_FLOAT32 = np.dtype(np.float32)
_INT64 = np.dtype(np.int64)


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
    if (not check_finite and type(x) is np.ndarray and x.dtype is _FLOAT32 and x.ndim == 2
            and x.shape[0] > 0 and x.flags.c_contiguous
            and (n_features is None or x.shape[1] == n_features)):
        # Already what the kernels take, and nothing to check (the training
        # step's case): the general path below cost about 5 us of a 70 us tiny step.
        return x
    array = as_numpy(x)
    if array.dtype.kind not in _REAL_KINDS:
        _refuse_dtype(array, name)
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


def _refuse_dtype(array: np.ndarray, name: str, what: str = "a numeric array") -> None:
    """Raise the TypeError for data whose dtype is not real numbers, saying why."""
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {array.dtype} (the cast to "
                        f"float32 would drop the imaginary part)")
    if kind in "mM":
        raise TypeError(f"{name} must be {what}, got {array.dtype}: times and durations are "
                        f"not data (convert them to numbers first)")
    raise TypeError(f"{name} must be {what}, got dtype {array.dtype}")


def as_numpy(value):
    """``value`` as numpy sees it; a PyTorch tensor first detached and brought to the CPU.

    Recognized by its class's module, so torch is never imported here. A tensor
    that requires grad refuses ``np.asarray``, and bfloat16 has no numpy dtype.
    """
    if type(value).__module__.partition(".")[0] == "torch" and hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def as_float32_parameter(value, name: str) -> np.ndarray:
    """A C-contiguous float32 copy of a weight or bias, refused if not real or not finite."""
    array = as_numpy(value)
    if array.dtype.kind not in _REAL_KINDS:
        _refuse_dtype(array, name)
    with np.errstate(over="ignore"):  # an overflow becomes Inf, reported by the caller
        return np.array(array, dtype=np.float32, order="C", copy=True)


def _as_float32(array: np.ndarray, name: str, check_finite: bool) -> np.ndarray:
    """C-contiguous float32 (copied only when needed), optionally checked for NaN/Inf."""
    if array.dtype != _FLOAT32 or not array.flags.c_contiguous:
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
    if (not check_range and type(y) is np.ndarray and y.dtype is _INT64 and y.ndim == 1
            and y.flags.c_contiguous):
        # Already int64 and nothing to range-check: only the length, as below.
        _check_length(y, n_samples, name)
        return y
    labels = as_numpy(y)
    if labels.ndim != 1:
        raise ValueError(
            f"{name} must be 1-dimensional class labels (n_samples,), got shape {labels.shape}"
        )
    _check_length(labels, n_samples, name)
    kind = labels.dtype.kind
    if kind == "f":
        if not np.isfinite(labels).all():
            raise ValueError(f"{name} contains NaN or Inf")
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
    elif kind not in _INTEGER_KINDS and kind != "b":
        if kind in "cmM":
            _refuse_dtype(labels, name, "an array of integer class labels")
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if kind == "f" or (kind == "u" and labels.dtype.itemsize == 8):
        # Float and uint64 labels can hold values that int64 cannot: they are
        # range-checked before the cast, which would wrap them (2**63 became
        # "label -9223372036854775808").
        _check_label_range(labels, n_classes, name, int64_only=not check_range)
    if labels.dtype != _INT64 or not labels.flags.c_contiguous:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
    if check_range:
        _check_label_range(labels, n_classes, name)
    return labels


def _check_label_range(labels: np.ndarray, n_classes: int, name: str,
                       int64_only: bool = False) -> None:
    """Every label in [0, n_classes) (or, with ``int64_only``, representable in int64).

    The message gives the offending label as the user wrote it, not as a cast made it.
    """
    if labels.size == 0:
        return
    low, high = labels.min(), labels.max()
    low_bound, high_bound = (_INT64_MIN, _INT64_MAX) if int64_only else (0, n_classes - 1)
    # Exact comparisons: a Python int from a float label is its exact value.
    if _exact(low) < low_bound or _exact(high) > high_bound:
        bad = low if _exact(low) < low_bound else high
        raise ValueError(
            f"{name} has label {_label_text(bad)}, outside [0, {n_classes}) for a model with "
            f"{n_classes} outputs"
        )


def _exact(value) -> int | float:
    value = value.item()
    return int(value) if isinstance(value, float) else value


def _label_text(value) -> str:
    """A label as an exact integer (a list [0, 2**63] arrives as float64), or 1e+300."""
    value = value.item()
    if isinstance(value, float) and abs(value) >= 2.0**64:
        return repr(value)
    return str(int(value))


def as_regression_targets(y, n_samples: int, n_outputs: int, name: str = "y",
                          check_finite: bool = True) -> np.ndarray:
    """Return regression targets as C-contiguous float32 of shape (n_samples, n_outputs).

    A 1-D ``y`` is accepted for a model with one output.
    """
    targets = as_numpy(y)
    if targets.dtype.kind not in _REAL_KINDS:
        _refuse_dtype(targets, name, "numeric")
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


def generator(seed, name: str = "seed") -> np.random.Generator:
    """``np.random.default_rng(seed)``, with an error that names ``name`` when numpy refuses it."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"{name} must be None, an int >= 0, a sequence of such ints, or a numpy "
            f"SeedSequence, BitGenerator or Generator; got {seed!r} ({error})") from None


def index_into(value, length: int, name: str, what: str) -> int:
    """``value`` as an index into ``length`` items (negative ones from the end), normalised to >= 0.

    Raises a TypeError for a non-integer and a ValueError, naming ``name`` and
    ``what`` the items are, for an index out of range.
    """
    index = integer(value, name)
    if not -length <= index < length:
        raise ValueError(f"{name} {index} is out of range for {length} {what}")
    return index % length


def nonnegative_int(value, name: str) -> int:
    """Return ``value`` as an int >= 0, or raise naming ``name``."""
    return _int_at_least(value, name, 0)


def integer(value, name: str) -> int:
    """Return ``value`` as an int (numpy integers too, not bools), or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _int_at_least(value, name: str, low: int) -> int:
    value = integer(value, name)
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


# The C++ training step computes in float32: a hyper-parameter is checked again
# as the float32 it becomes, where 1e-46 is 0, 1 - 1e-9 is 1 and 1e39 is Inf.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_hyperparameter(value, name: str, *, low: float | None = None,
                           high: float | None = None, low_open: bool = False,
                           high_open: bool = False) -> float:
    """``finite_float``, then the same bounds checked on the value's float32 rounding.

    Returns the value as given (a float; -0.0 as 0.0), so that a repr shows what
    the user wrote. A value that rounds to a tiny subnormal is accepted as long
    as it is still inside the bounds.
    """
    value = finite_float(value, name, low=low, high=high, low_open=low_open,
                         high_open=high_open) + 0.0
    with np.errstate(over="ignore"):
        single = float(np.float32(value))
    if not np.isfinite(single):
        raise ValueError(f"{name}={value!r} overflows float32, in which reluscope computes "
                         f"(largest finite float32: {_FLOAT32_MAX:.8g})")
    if value != 0.0 and single == 0.0:
        # Asked for something and would silently get nothing (weight_decay=1e-46).
        raise ValueError(f"{name}={value!r} becomes 0.0 in float32, in which reluscope "
                         f"computes; give 0 for none, or a value of at least "
                         f"{float(np.finfo(np.float32).smallest_subnormal):.3g}")
    if low is not None and (single < low or (low_open and single == low)):
        raise ValueError(f"{name}={value!r} becomes {single!r} in float32, in which reluscope "
                         f"computes; {name} must be {'>' if low_open else '>='} {low}")
    if high is not None and (single > high or (high_open and single == high)):
        raise ValueError(f"{name}={value!r} becomes {single!r} in float32, in which reluscope "
                         f"computes; {name} must be {'<' if high_open else '<='} {high}")
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
