"""Small datasets that ship with a dependency (no download)."""

from __future__ import annotations

import numpy as np


def _require_sklearn():
    try:
        import sklearn.datasets
    except ImportError:
        raise ImportError(
            "the digits dataset comes with scikit-learn; install it with "
            "pip install 'reluscope[examples]'"
        ) from None
    return sklearn.datasets


def load_digits(test_fraction: float = 0.25, seed: int = 0):
    """The 8x8 handwritten digits bundled with scikit-learn (1797 samples, 10 classes).

    Pixels (0..16) are scaled to [0, 1]. The split is a seeded permutation.

    Returns
    -------
    x_train, y_train, x_test, y_test : ndarrays
        x is (n, 64) float32, y is (n,) int64.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = _require_sklearn().load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]
