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
rai             see ``rai`` (sets the biases too)          Lu et al., 2020
==============  =========================================  ===========================

The normal initializers draw from the plain (untruncated) normal distribution.
An initializer may also return a pair ``(weight, bias)``, with bias of shape
(fan_out,): the layer then starts from that bias instead of the constant one.
"""

from __future__ import annotations

import numpy as np

from ._validation import finite_float, lookup


def zeros(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Zero weights (every unit of the layer computes the same thing: for tests)."""
    return np.zeros((fan_in, fan_out), dtype=np.float32)


def constant(fan_in: int, fan_out: int, rng: np.random.Generator,
             value: float = 0.0) -> np.ndarray:
    """Every weight equal to ``value``."""
    value = finite_float(value, "value")
    return np.full((fan_in, fan_out), value, dtype=np.float32)


def normal(fan_in: int, fan_out: int, rng: np.random.Generator, std: float = 0.01) -> np.ndarray:
    """Draw from N(0, std**2)."""
    std = finite_float(std, "std", low=0.0)
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(np.float32)


def uniform(fan_in: int, fan_out: int, rng: np.random.Generator,
            limit: float = 0.05) -> np.ndarray:
    """Draw from U(-limit, limit)."""
    limit = finite_float(limit, "limit", low=0.0)
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


def glorot_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Draw from N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    return normal(fan_in, fan_out, rng, std=np.sqrt(2.0 / (fan_in + fan_out)))


def glorot_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Draw from U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    return uniform(fan_in, fan_out, rng, limit=np.sqrt(6.0 / (fan_in + fan_out)))


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Draw from N(0, 2 / fan_in) (He et al., 2015): the variance ReLU layers keep."""
    return normal(fan_in, fan_out, rng, std=np.sqrt(2.0 / fan_in))


def he_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Draw from U(-a, a), a = sqrt(6 / fan_in) (He et al., 2015)."""
    return uniform(fan_in, fan_out, rng, limit=np.sqrt(6.0 / fan_in))


def lecun_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Draw from N(0, 1 / fan_in) (LeCun et al., 1998)."""
    return normal(fan_in, fan_out, rng, std=np.sqrt(1.0 / fan_in))


def orthogonal(fan_in: int, fan_out: int, rng: np.random.Generator,
               gain: float = 1.0) -> np.ndarray:
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


# sigma * sqrt(fan_in) of RAI's symmetric part (see ``rai``).
RAI_STD_SCALE = 0.6007


def rai(fan_in: int, fan_out: int, rng: np.random.Generator, beta_a: float = 2.0,
        beta_b: float = 1.0, std_scale: float = RAI_STD_SCALE):
    """Randomized asymmetric initialization (RAI) of Lu, Shin, Su & Karniadakis.

    "Dying ReLU and Initialization: Theory and Numerical Examples", Commun.
    Comput. Phys. 28 (2020), arXiv:1903.06733, section "Randomized asymmetric
    initialization". For each unit j, its parameters v_j = (w_1j, ..., w_nj, b_j)
    (incoming weights and bias, n = fan_in) are drawn as follows:

    1. every entry from the symmetric N(0, sigma^2), sigma = std_scale / sqrt(fan_in);
    2. then one entry, chosen uniformly among the n + 1, is replaced by a draw
       from the positive distribution Beta(beta_a, beta_b).

    The positive entry makes the unit fire on a half-space that contains the
    inputs pushing that coordinate up, which is what keeps deep narrow networks
    from being born dead. Defaults: Beta(2, 1) and std_scale = 0.6007 (so
    sigma^2 = 0.3608 / fan_in), the values we use for the paper's design; we
    could not check them against the paper's text from here, so both are
    parameters. Returns ``(weight, bias)``.
    """
    beta_a = finite_float(beta_a, "beta_a", low=0.0, low_open=True)
    beta_b = finite_float(beta_b, "beta_b", low=0.0, low_open=True)
    std_scale = finite_float(std_scale, "std_scale", low=0.0)
    params = rng.standard_normal((fan_in + 1, fan_out)) * (std_scale / np.sqrt(fan_in))
    chosen = rng.integers(0, fan_in + 1, size=fan_out)
    params[chosen, np.arange(fan_out)] = rng.beta(beta_a, beta_b, size=fan_out)
    params = params.astype(np.float32)
    return params[:fan_in], params[fan_in]


INITIALIZERS = {
    fn.__name__: fn
    for fn in (zeros, constant, normal, uniform, glorot_normal, glorot_uniform, he_normal,
               he_uniform, lecun_normal, orthogonal, rai)
}


def get_initializer(name):
    """Return the initializer called ``name``, or ``name`` itself when it is callable."""
    if callable(name):
        return name
    return lookup(INITIALIZERS, name, "init")


def initialize(init, fan_in: int, fan_out: int, rng: np.random.Generator,
               params: dict | None = None):
    """Draw (weight, bias) with the initializer ``init``.

    weight is (fan_in, fan_out) float32; bias is (fan_out,) float32, or None
    when the initializer sets only weights. Checks what a custom init returned.
    """
    drawn = get_initializer(init)(fan_in, fan_out, rng, **(params or {}))
    bias = None
    if isinstance(drawn, tuple):
        if len(drawn) != 2:
            raise ValueError("an init that returns a tuple must return (weight, bias)")
        drawn, bias = drawn
        bias = np.ascontiguousarray(bias, dtype=np.float32)
        if bias.shape != (fan_out,):
            raise ValueError(f"init returned a bias of shape {bias.shape}, expected ({fan_out},)")
        if not np.isfinite(bias).all():
            raise ValueError("init returned NaN or Inf biases")
    weight = np.asarray(drawn)
    if weight.shape != (fan_in, fan_out):
        raise ValueError(
            f"init returned shape {weight.shape}, expected (fan_in, fan_out) = "
            f"({fan_in}, {fan_out})"
        )
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    if not np.isfinite(weight).all():
        raise ValueError("init returned NaN or Inf weights")
    return weight, bias
