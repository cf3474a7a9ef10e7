"""Data and the comparison of two scans, for the tests of scans split into chunks."""

import numpy as np


def data(n, n_features, seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_features)).astype(np.float32)


def assert_same_scan(expected, got, *, exact_sums):
    assert got.n_samples == expected.n_samples
    assert len(got.layers) == len(expected.layers)
    for a, b in zip(expected.layers, got.layers):
        np.testing.assert_array_equal(b.firing_counts, a.firing_counts)
        np.testing.assert_array_equal(b.max_pre_activation, a.max_pre_activation)
        if exact_sums:
            np.testing.assert_array_equal(b.mean_abs_activation, a.mean_abs_activation)
        else:
            # float64 sums of the same float32 terms, grouped differently: rounding only.
            np.testing.assert_allclose(b.mean_abs_activation, a.mean_abs_activation,
                                       rtol=1e-12, atol=0)
