"""rs.scan over an iterator of chunks: the statistics of the concatenated rows, one chunk
in memory at a time, and bad chunks refused by number."""

import numpy as np
import pytest
from scan_equality import assert_same_scan, data

import reluscope as rs


def test_a_generator_of_chunks_scans_as_the_concatenated_rows():
    model = rs.MLP([12, 40, 30, 3], seed=3)
    model.layers[0].bias[:6] = -100.0  # 6 dead units: counts of 0 are compared too
    x = data(3000, 12)
    expected = rs.scan(model, x, chunk_size=256)
    assert expected.layers[0].n_dead >= 6
    # Chunks of a multiple of chunk_size rows: the same blocks, summed in the same
    # order, so the float sums are bit for bit the local scan's too.
    aligned = (x[start:start + 512] for start in range(0, 3000, 512))
    assert_same_scan(expected, rs.scan(model, aligned, chunk_size=256), exact_sums=True)
    ragged = (x[start:start + 333] for start in range(0, 3000, 333))
    assert_same_scan(expected, rs.scan(model, ragged, chunk_size=256), exact_sums=False)


def test_chunks_may_be_lists_float64_or_empty():
    model = rs.MLP([3, 5, 2], seed=0)
    x = data(10, 3)
    chunks = iter([x[:4].tolist(), np.empty((0, 3)), x[4:].astype(np.float64)])
    assert_same_scan(rs.scan(model, x), rs.scan(model, chunks), exact_sums=False)
    no_dormancy = rs.scan(model, iter([x]), dormancy=False)
    assert all(layer.mean_abs_activation is None for layer in no_dormancy.layers)


def test_bad_chunks_are_refused_by_number():
    model = rs.MLP([4, 6, 2], seed=0)
    good = data(5, 4)
    with pytest.raises(ValueError, match="chunk 1 of x has 3 features but the first layer "
                                         "expects 4"):
        rs.scan(model, iter([good, data(5, 3)]))
    with pytest.raises(ValueError, match=r"chunk 0 of x must be 2-dimensional .* shape \(4,\); "
                                         r"a single sample is array.reshape\(1, -1\)"):
        rs.scan(model, iter([good[0]]))
    with pytest.raises(ValueError, match="chunk 2 of x has 5 features"):
        rs.scan(model, iter([good, good, np.empty((0, 5))]))
    with pytest.raises(ValueError, match="chunk 1 of x contains NaN or Inf"):
        rs.scan(model, iter([good, np.full((2, 4), np.nan)]))
    huge = np.full((3, 4), 3e38, np.float32)
    with pytest.raises(rs.NonFiniteActivations, match=r"in chunk 1 of x \(samples numbered "
                                                      r"within the chunk\): layer 0 .* sample 0"):
        rs.scan(rs.MLP.from_weights([(np.full((4, 6), 10.0), np.zeros(6)),
                                     (np.ones((6, 2)), np.zeros(2))]), iter([good, huge]))
    with pytest.raises(ValueError, match="x is an empty iterator: it yielded no chunks"):
        rs.scan(model, iter([]))
    with pytest.raises(ValueError, match=r"x is empty: its 2 chunk\(s\) hold 0 samples"):
        rs.scan(model, iter([np.empty((0, 4)), np.empty((0, 4))]))


def test_lists_and_tuples_stay_rows_not_chunks():
    model = rs.MLP([2, 3, 1], seed=0)
    assert rs.scan(model, [[1.0, 2.0], [3.0, 4.0]]).n_samples == 2
    with pytest.raises(ValueError, match="must be 2-dimensional"):
        rs.scan(model, [np.ones((2, 2)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        rs.scan(model, range(4))
    with pytest.raises(TypeError, match="x must be a numeric array"):
        rs.scan(model, {"a": 1})
