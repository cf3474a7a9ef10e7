"""Weight initializers, by name.

Each initializer is ``fn(fan_in, fan_out, rng, **params)`` and returns a float32
array of shape (fan_in, fan_out), so that a layer computes ``x @ W + b``. All
draw from the numpy ``Generator`` they are given: the same seed gives the same
weights.

Scales (Var is the variance of each weight):

==============  =========================================  ===========================
name            distribution                               reference
==============  =========================================  ===========================
zeros           0
constant        ``value``
normal          N(0, std**2), std=0.01 unless given
uniform         U(-limit, limit), limit=0.05 unless given
glorot_normal   N(0, 2 / (fan_in + fan_out))               Glorot & Bengio, 2010
glorot_uniform  U(-a, a), a = sqrt(6 / (fan_in + fan_out))  Glorot & Bengio, 2010
he_normal       N(0, 2 / fan_in)                           He et al., 2015
he_uniform      U(-a, a), a = sqrt(6 / fan_in)             He et al., 2015
lecun_normal    N(0, 1 / fan_in)                           LeCun et al., 1998
orthogonal      ``gain`` times a (semi-)orthogonal matrix  Saxe et al., 2014
==============  =========================================  ===========================

The normal initializers draw from the plain (untruncated) normal distribution.
"""

from __future__ import annotations

import numpy as np

from ._validation import finite_float, lookup


def zeros(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    return np.zeros((fan_in, fan_out), dtype=np.float32)


def constant(fan_in: int, fan_out: int, rng: np.random.Generator, value: float = 0.0):
    value = finite_float(value, "value")
    return np.full((fan_in, fan_out), value, dtype=np.float32)


def normal(fan_in: int, fan_out: int, rng: np.random.Generator, std: float = 0.01):
    std = finite_float(std, "std", low=0.0)
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(np.float32)


def uniform(fan_in: int, fan_out: int, rng: np.random.Generator, limit: float = 0.05):
    limit = finite_float(limit, "limit", low=0.0)
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


def glorot_normal(fan_in: int, fan_out: int, rng: np.random.Generator):
    return normal(fan_in, fan_out, rng, std=np.sqrt(2.0 / (fan_in + fan_out)))


def glorot_uniform(fan_in: int, fan_out: int, rng: np.random.Generator):
    return uniform(fan_in, fan_out, rng, limit=np.sqrt(6.0 / (fan_in + fan_out)))


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator):
    return normal(fan_in, fan_out, rng, std=np.sqrt(2.0 / fan_in))


def he_uniform(fan_in: int, fan_out: int, rng: np.random.Generator):
    return uniform(fan_in, fan_out, rng, limit=np.sqrt(6.0 / fan_in))


def lecun_normal(fan_in: int, fan_out: int, rng: np.random.Generator):
    return normal(fan_in, fan_out, rng, std=np.sqrt(1.0 / fan_in))


def orthogonal(fan_in: int, fan_out: int, rng: np.random.Generator, gain: float = 1.0):
    """Orthonormal rows or columns (whichever are fewer), scaled by ``gain``.

    The QR factor's signs are fixed by the diagonal of R, so the result is
    uniformly distributed over orthogonal matrices (Mezzadri, 2007).
    """
    gain = finite_float(gain, "gain")
    rows, cols = max(fan_in, fan_out), min(fan_in, fan_out)
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    q *= np.sign(np.diag(r))
    if fan_in < fan_out:
        q = q.T
    return (gain * q).astype(np.float32)


INITIALIZERS = {
    fn.__name__: fn
    for fn in (zeros, constant, normal, uniform, glorot_normal, glorot_uniform, he_normal,
               he_uniform, lecun_normal, orthogonal)
}


def get_initializer(name):
    """The initializer called ``name``, or ``name`` itself when it is callable."""
    if callable(name):
        return name
    return lookup(INITIALIZERS, name, "init")


def initialize(init, fan_in: int, fan_out: int, rng: np.random.Generator,
               params: dict | None = None) -> np.ndarray:
    """Draw a (fan_in, fan_out) float32 weight matrix and check what a custom init returned."""
    weight = np.asarray(get_initializer(init)(fan_in, fan_out, rng, **(params or {})))
    if weight.shape != (fan_in, fan_out):
        raise ValueError(
            f"init returned shape {weight.shape}, expected (fan_in, fan_out) = "
            f"({fan_in}, {fan_out})"
        )
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    if not np.isfinite(weight).all():
        raise ValueError("init returned NaN or Inf weights")
    return weight
