"""The dense forward and backward kernels against the numpy reference, on every
compiled SIMD target, with 1 and 2 threads, on awkward shapes."""

import itertools

import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope import _core

ODD_SIZES = (1, 3, 17, 100, 257)
ODD_SHAPES = list(itertools.product(ODD_SIZES, repeat=3))  # (n_rows, fan_in, fan_out)
# Inner dimensions past one and several cache blocks (KC = 256).
DEEP_SHAPES = [(33, 1000, 45), (300, 513, 70), (1000, 31, 1)]
ACTIVATIONS = [("identity", 0.0), ("relu", 0.0), ("leaky_relu", 0.1)]


def tolerance(fan_in):
    # float32 accumulation of fan_in products of unit-scale numbers.
    return dict(rtol=2e-5, atol=2e-6 * fan_in + 1e-6)


def random_layer(rng, n, fan_in, fan_out):
    x = rng.standard_normal((n, fan_in)).astype(np.float32)
    weight = rng.standard_normal((fan_in, fan_out)).astype(np.float32)
    bias = rng.standard_normal(fan_out).astype(np.float32)
    return x, weight, bias


def run_forward(x, weight, bias, name, slope, with_stats=True):
    n, fan_out = x.shape[0], weight.shape[1]
    pre = np.full((n, fan_out), np.nan, dtype=np.float32)
    out = np.full((n, fan_out), np.nan, dtype=np.float32)
    counts = np.zeros(fan_out, dtype=np.int64) if with_stats else None
    maxima = np.full(fan_out, -np.inf, dtype=np.float32) if with_stats else None
    _core.dense_forward(x, weight, bias, pre, out, reference.activation_kind(name), slope,
                        counts, maxima)
    return pre, out, counts, maxima


def check_forward(rng, shape, name, slope):
    x, weight, bias = random_layer(rng, *shape)
    pre, out, counts, maxima = run_forward(x, weight, bias, name, slope)
    ref_pre, _ = reference.dense_forward(x, weight, bias, name, slope)
    np.testing.assert_allclose(pre, ref_pre, **tolerance(shape[1]), err_msg=str(shape))
    # The fused epilogue must agree exactly with what it computed from pre.
    np.testing.assert_array_equal(out, reference.activation(pre, name, np.float32(slope)))
    np.testing.assert_array_equal(counts, (pre > 0).sum(axis=0))
    np.testing.assert_array_equal(maxima, pre.max(axis=0))


@pytest.mark.parametrize("name,slope", ACTIVATIONS)
def test_forward_matches_reference_on_odd_shapes(simd_target, num_threads, rng, name, slope):
    for shape in ODD_SHAPES + DEEP_SHAPES:
        check_forward(rng, shape, name, slope)


def test_forward_without_statistics_matches_with(simd_target, rng):
    x, weight, bias = random_layer(rng, 257, 17, 100)
    with_stats = run_forward(x, weight, bias, "relu", 0.0)
    without = run_forward(x, weight, bias, "relu", 0.0, with_stats=False)
    np.testing.assert_array_equal(with_stats[0], without[0])
    np.testing.assert_array_equal(with_stats[1], without[1])


def test_statistics_accumulate_across_calls(simd_target, rng):
    x, weight, bias = random_layer(rng, 100, 17, 33)
    counts = np.full(33, 5, dtype=np.int64)
    maxima = np.full(33, 1.5, dtype=np.float32)
    pre = np.empty((100, 33), np.float32)
    out = np.empty_like(pre)
    _core.dense_forward(x, weight, bias, pre, out, _core.Activation.relu, 0.0, counts, maxima)
    np.testing.assert_array_equal(counts, 5 + (pre > 0).sum(axis=0))
    np.testing.assert_array_equal(maxima, np.maximum(1.5, pre.max(axis=0)))


def test_zero_pre_activation_does_not_fire(simd_target):
    # A unit with a zero weight column and zero bias has pre-activation exactly 0.
    x = np.ones((4, 3), np.float32)
    weight = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], np.float32)
    bias = np.zeros(2, np.float32)
    pre, out, counts, maxima = run_forward(x, weight, bias, "relu", 0.0)
    assert counts.tolist() == [0, 4]
    assert maxima.tolist() == [0.0, 3.0]


@pytest.mark.parametrize("name,slope", ACTIVATIONS)
def test_nonfinite_counts_match_reference_on_odd_shapes(simd_target, num_threads, rng, name,
                                                          slope):
    # Every odd row is huge: with weights >= 1.5 each product 3e38 * w overflows
    # float32 on its own, whatever the summation order. Unit 0 gets a NaN
    # weight and the last unit a bias of -Inf: non-finite on every row.
    for n, fan_in, fan_out in itertools.product((1, 3, 17), repeat=3):
        x = rng.random((n, fan_in)).astype(np.float32)
        x[1::2] = 3e38
        weight = rng.uniform(1.5, 2.0, (fan_in, fan_out)).astype(np.float32)
        bias = rng.standard_normal(fan_out).astype(np.float32)
        weight[0, 0] = np.nan
        bias[-1] = -np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            ref_pre, _ = reference.dense_forward(x, weight, bias, name, slope)
            expected = (~np.isfinite(ref_pre.astype(np.float32))).sum(axis=0)
        pre, out = np.empty((n, fan_out), np.float32), np.empty((n, fan_out), np.float32)
        nonfinite = np.full(fan_out, 2, dtype=np.int64)  # accumulates
        _core.dense_forward(x, weight, bias, pre, out, reference.activation_kind(name), slope,
                            None, None, nonfinite)
        shape = (n, fan_in, fan_out)
        np.testing.assert_array_equal(nonfinite, 2 + expected, err_msg=str(shape))
        np.testing.assert_array_equal(nonfinite, 2 + (~np.isfinite(pre)).sum(axis=0),
                                      err_msg=str(shape))


def test_maximum_skips_nan_rows_in_any_order_and_column(simd_target, num_threads):
    # A NaN pre-activation is counted as non-finite and never taken as a unit's
    # maximum, in the tile's whole vectors and in its ragged right edge alike
    # (37 units: the edge holds the last 5 or 21), wherever the NaN row falls.
    n_units = 37
    weight = np.ones((2, n_units), np.float32)
    bias = np.zeros(n_units, np.float32)
    for nan_row in range(3):
        x = np.ones((3, 2), np.float32)
        x[nan_row, 0] = np.nan
        pre, out = np.empty((3, n_units), np.float32), np.empty((3, n_units), np.float32)
        maxima = np.full(n_units, -np.inf, np.float32)
        nonfinite = np.zeros(n_units, np.int64)
        _core.dense_forward(x, weight, bias, pre, out, _core.Activation.relu, 0.0, None, maxima,
                            nonfinite)
        np.testing.assert_array_equal(maxima, np.full(n_units, 2.0, np.float32),
                                      err_msg=f"NaN in row {nan_row}")
        np.testing.assert_array_equal(nonfinite, np.ones(n_units, np.int64))


def test_nonfinite_counts_are_zero_and_change_nothing_on_finite_data(simd_target, rng):
    x, weight, bias = random_layer(rng, 257, 17, 100)
    plain = run_forward(x, weight, bias, "relu", 0.0, with_stats=False)
    pre, out = np.empty_like(plain[0]), np.empty_like(plain[1])
    nonfinite = np.zeros(100, dtype=np.int64)
    _core.dense_forward(x, weight, bias, pre, out, _core.Activation.relu, 0.0, None, None,
                        nonfinite)
    assert not nonfinite.any()
    np.testing.assert_array_equal(pre, plain[0])
    np.testing.assert_array_equal(out, plain[1])


@pytest.mark.parametrize("name,slope", ACTIVATIONS)
def test_backward_matches_reference_on_odd_shapes(simd_target, num_threads, rng, name, slope):
    for n, fan_in, fan_out in ODD_SHAPES + DEEP_SHAPES:
        x, weight, bias = random_layer(rng, n, fan_in, fan_out)
        pre = (x.astype(np.float64) @ weight + bias).astype(np.float32)
        grad_out = rng.standard_normal((n, fan_out)).astype(np.float32)
        grad_pre = np.empty_like(grad_out)
        grad_weight = np.empty_like(weight)
        grad_bias = np.empty_like(bias)
        grad_x = np.empty_like(x)
        _core.dense_backward(x, weight, pre, grad_out, grad_pre, grad_weight, grad_bias, grad_x,
                             reference.activation_kind(name), slope)
        ref = reference.dense_backward(x, weight, pre, grad_out, name, np.float32(slope))
        shape = (n, fan_in, fan_out)
        np.testing.assert_array_equal(grad_pre, ref[0].astype(np.float32), err_msg=str(shape))
        np.testing.assert_allclose(grad_weight, ref[1], **tolerance(n), err_msg=str(shape))
        np.testing.assert_allclose(grad_bias, ref[2], **tolerance(n), err_msg=str(shape))
        np.testing.assert_allclose(grad_x, ref[3], **tolerance(fan_out), err_msg=str(shape))


def test_backward_skips_grad_input_when_not_asked(simd_target, rng):
    x, weight, bias = random_layer(rng, 17, 3, 100)
    pre = x @ weight + bias
    grad_out = rng.standard_normal(pre.shape).astype(np.float32)
    results = []
    for grad_x in (None, np.empty_like(x)):
        grad_weight, grad_bias = np.empty_like(weight), np.empty_like(bias)
        _core.dense_backward(x, weight, pre, grad_out, np.empty_like(grad_out), grad_weight,
                             grad_bias, grad_x, _core.Activation.relu, 0.0)
        results.append((grad_weight, grad_bias))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_gemm_transposes(simd_target, num_threads, rng, transpose_a, transpose_b):
    for m, n, k in [(1, 1, 1), (3, 17, 100), (257, 3, 17), (100, 257, 1000)]:
        a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        _core.gemm(a, b, c, transpose_a, transpose_b)
        expected = (a.T if transpose_a else a).astype(np.float64) @ (b.T if transpose_b else b)
        np.testing.assert_allclose(c, expected, **tolerance(k))


@pytest.mark.parametrize("transpose_a", [False, True])
def test_small_a_read_in_place_gives_the_packed_bits(simd_target, num_threads, rng, transpose_a):
    # An A of at most 256K floats is read in place, row- or column-major; a
    # larger one is packed. Row i of C sums the same products in the same order
    # either way, so a small A and the same rows at the top of a large one give
    # the same bits (m = 125: a ragged last row panel; k = 300 crosses KC; with
    # n = 64 the small product is large enough for 2 threads to split its columns).
    m, big_m, n, k = 125, 1000, 64, 300
    assert m * k <= 256 * 1024 < big_m * k
    big = rng.standard_normal((k, big_m) if transpose_a else (big_m, k)).astype(np.float32)
    small = np.ascontiguousarray(big[:, :m] if transpose_a else big[:m])
    b = rng.standard_normal((k, n)).astype(np.float32)
    c_small, c_big = np.empty((m, n), np.float32), np.empty((big_m, n), np.float32)
    _core.gemm(small, b, c_small, transpose_a, False)
    _core.gemm(big, b, c_big, transpose_a, False)
    np.testing.assert_array_equal(c_small, c_big[:m])


def test_results_do_not_depend_on_thread_count(simd_target, rng):
    # Reductions over the batch combine partials in a fixed order. On 2 threads
    # the backward's two products run side by side, one on each thread.
    x, weight, bias = random_layer(rng, 1000, 257, 100)
    grad_out = rng.standard_normal((1000, 100)).astype(np.float32)
    results = []
    for threads in (1, 2):
        _core.set_num_threads(threads)
        pre, out, counts, maxima = run_forward(x, weight, bias, "relu", 0.0)
        grads = [np.empty_like(grad_out), np.empty_like(weight), np.empty_like(bias),
                 np.empty_like(x)]
        _core.dense_backward(x, weight, pre, grad_out, *grads, _core.Activation.relu, 0.0)
        results.append([pre, out, counts, maxima] + grads)
    for first, second in zip(*results):
        np.testing.assert_array_equal(first, second)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), fan_in=st.integers(1, 70), fan_out=st.integers(1, 70),
       seed=st.integers(0, 2**32 - 1))
def test_forward_property_any_shape(n, fan_in, fan_out, seed):
    check_forward(np.random.default_rng(seed), (n, fan_in, fan_out), "leaky_relu", 0.2)


def _views(buffer, offset, *shapes):
    """Consecutive C-contiguous arrays of the given shapes in one buffer, from offset."""
    arrays = []
    for shape in shapes:
        count = int(np.prod(shape))
        arrays.append(buffer[offset:offset + count].reshape(shape))
        offset += count
    return arrays


def test_bindings_refuse_arrays_that_partly_share_memory(num_threads, rng):
    # Threads would read elements that other threads have already overwritten:
    # the result would depend on timing (1 and 2 threads differed, before).
    n, fan_in, fan_out = 256, 128, 128
    x, weight, bias = random_layer(rng, n, fan_in, fan_out)
    pre = rng.standard_normal((n, fan_out)).astype(np.float32)
    buffer = rng.standard_normal(2 * n * fan_out + 1).astype(np.float32)
    grad_out, = _views(buffer, 0, (n, fan_out))
    shifted, = _views(buffer, 1, (n, fan_out))  # one element on: overlaps grad_out
    buffer_before, x_before = buffer.copy(), x.copy()
    grads = [np.empty((fan_in, fan_out), np.float32), np.empty(fan_out, np.float32),
             np.empty((n, fan_in), np.float32)]
    relu = _core.Activation.relu
    with pytest.raises(ValueError, match="grad_pre shares memory with grad_out without being"):
        _core.dense_backward(x, weight, pre, grad_out, shifted, *grads, relu, 0.0)
    grad_weight, = _views(np.empty(fan_in * fan_out + fan_out, np.float32), 0, (fan_in, fan_out))
    grad_bias_in_weight = grad_weight.reshape(-1)[:fan_out]
    with pytest.raises(ValueError, match="grad_weight shares memory with grad_bias"):
        _core.dense_backward(x, weight, pre, grad_out, np.empty_like(pre), grad_weight,
                             grad_bias_in_weight, grads[2], relu, 0.0)
    with pytest.raises(ValueError, match="pre shares memory with x; pass arrays that do not"):
        _core.dense_forward(x, weight, bias, x, np.empty_like(pre), relu, 0.0)
    with pytest.raises(ValueError, match="pre shares memory with out without being"):
        _core.dense_forward(x, weight, bias, grad_out, shifted, relu, 0.0)
    with pytest.raises(ValueError, match="c shares memory with a"):
        _core.gemm(x, weight, x, False, False)
    # A refused call writes nothing.
    np.testing.assert_array_equal(buffer, buffer_before)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("in_place", ["grad_pre=grad_out", "grad_x=grad_out", "grad_x=x"])
def test_backward_in_place_gives_the_bits_of_separate_arrays(num_threads, rng, in_place):
    # The in-place calls the kernel supports: the very same array, not a partial
    # overlap. Leaky ReLU, so a gradient masked twice would show.
    n, width = 1000, 120
    x, weight, _ = random_layer(rng, n, width, width)
    pre = rng.standard_normal((n, width)).astype(np.float32)
    grad_out = rng.standard_normal((n, width)).astype(np.float32)
    kind = _core.Activation.leaky_relu

    def backward(x, grad_out, shared=None):
        grad_pre = np.empty_like(grad_out) if shared != "grad_pre" else grad_out
        grad_x = {"grad_out": grad_out, "x": x}.get(shared, np.empty_like(x))
        grad_weight, grad_bias = np.empty_like(weight), np.empty(width, np.float32)
        _core.dense_backward(x, weight, pre, grad_out, grad_pre, grad_weight, grad_bias,
                             grad_x, kind, np.float32(0.1))
        return grad_pre, grad_weight, grad_bias, grad_x

    expected = backward(x, grad_out)
    written, _, shared = in_place.partition("=")
    got = backward(x.copy(), grad_out.copy(), shared if written == "grad_x" else "grad_pre")
    for name, want, have in zip(("grad_pre", "grad_weight", "grad_bias", "grad_x"), expected,
                                got):
        np.testing.assert_array_equal(have, want, err_msg=f"{name}, {in_place}")


def test_bindings_refuse_wrong_dtype_and_shape():
    x = np.ones((3, 4), np.float64)
    weight = np.ones((4, 2), np.float32)
    bias = np.ones(2, np.float32)
    pre = np.empty((3, 2), np.float32)
    with pytest.raises(TypeError):
        _core.dense_forward(x, weight, bias, pre, pre.copy(), _core.Activation.relu, 0.0)
    with pytest.raises(ValueError, match="x has 5 features but the weight expects 4"):
        _core.dense_forward(np.ones((3, 5), np.float32), weight, bias, pre, pre.copy(),
                            _core.Activation.relu, 0.0)
    with pytest.raises(ValueError, match="bias has shape"):
        _core.dense_forward(x.astype(np.float32), weight, np.ones(3, np.float32), pre,
                            pre.copy(), _core.Activation.relu, 0.0)
    # Activations are named by the enum; an integer is refused, not guessed at.
    with pytest.raises(TypeError, match="Activation"):
        _core.dense_forward(x.astype(np.float32), weight, bias, pre, pre.copy(), 7, 0.0)
