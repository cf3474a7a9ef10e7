"""Checks of the experiments' arguments, made before any trial runs.

An experiment can run for minutes, in worker processes: a bad argument found
there (or not at all: ``n_samples=0`` gave NaN statistics) costs that time. The
functions here check up front and name the argument and its value.
"""

from __future__ import annotations

import numbers
import os

from .._validation import float32_hyperparameter, nonnegative_int, positive_int


def positive_ints(values, name: str) -> list[int]:
    """A non-empty list of ints >= 1 (layer widths, hidden sizes)."""
    checked = [positive_int(v, f"each of {name}") for v in _sequence(values, name)]
    if not checked:
        raise ValueError(f"{name} must hold at least one value")
    return checked


def seeds(values, name: str = "seeds") -> list[int]:
    """A non-empty list of seeds, ints >= 0 (what numpy's generators accept)."""
    checked = [nonnegative_int(v, f"each of {name}") for v in _sequence(values, name)]
    if not checked:
        raise ValueError(f"{name} must hold at least one seed")
    return checked


def learning_rate(value, name: str = "lr") -> float:
    """A learning rate: finite and > 0, also as the float32 the training step uses."""
    return float32_hyperparameter(value, name, low=0.0, low_open=True)


def learning_rates(values, name: str = "lrs") -> list[float]:
    """A non-empty list of learning rates, sorted."""
    checked = sorted(learning_rate(v, f"each of {name}") for v in _sequence(values, name))
    if not checked:
        raise ValueError(f"{name} must hold at least one learning rate")
    return checked


def optional_positive_int(value, name: str) -> int | None:
    return None if value is None else positive_int(value, name)


def n_jobs(value) -> int:
    """joblib's worker count: >= 1, or negative for "all cores but |n_jobs| - 1"; not 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"n_jobs must be an integer, got {value!r}")
    if value == 0:
        raise ValueError("n_jobs must be >= 1, or negative (-1: every core), got 0")
    return int(value)


def output_prefix(out_prefix) -> str:
    """``out_prefix`` if PREFIX.json and PREFIX.png can be written there, else a ValueError.

    Checked before the experiment runs, not after: a prefix that ends in a
    folder separator ("results/") would write the hidden files "results/.json"
    and "results/.png"; a prefix below a regular file cannot be written at all.
    """
    if not isinstance(out_prefix, (str, os.PathLike)):
        raise TypeError(f"out_prefix must be a path, got {out_prefix!r}")
    prefix = os.fspath(out_prefix)
    if not os.path.basename(prefix):
        raise ValueError(f"out_prefix {prefix!r} has no file name: it would write the hidden "
                         f"files {prefix}.json and {prefix}.png; give a prefix such as "
                         f"{os.path.join(prefix, 'result')!r}")
    folder = os.path.dirname(os.path.abspath(prefix))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"cannot write {prefix}.json: {existing} is a file, not a folder")
    for suffix in (".json", ".png"):
        if os.path.isdir(prefix + suffix):
            raise ValueError(f"cannot write {prefix}{suffix}: it is a folder")
    return prefix


def _sequence(values, name: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of values, got {values!r}")
    return list(values)
