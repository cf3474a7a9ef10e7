"""Loss and optimizer kernels against the numpy reference, on every SIMD target."""

import numpy as np
import pytest
import reference

from reluscope import _core

SHAPES = [(1, 1), (1, 3), (3, 17), (17, 10), (257, 3), (1000, 100)]


def test_softmax_cross_entropy_matches_reference(simd_target, num_threads, rng):
    for n, c in SHAPES:
        logits = (3 * rng.standard_normal((n, c))).astype(np.float32)
        labels = rng.integers(0, c, n)
        grad = np.empty_like(logits)
        loss = _core.softmax_cross_entropy(logits, labels, grad)
        ref_loss, ref_grad = reference.softmax_cross_entropy(logits, labels)
        assert loss == pytest.approx(ref_loss, rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-7 / n)


def test_softmax_cross_entropy_is_stable_for_huge_logits(simd_target):
    logits = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 1.0]], np.float32)
    grad = np.empty_like(logits)
    loss = _core.softmax_cross_entropy(logits, np.array([1, 1]), grad)
    # Row 0 misses by 2e4; row 1 is right with certainty: mean loss is 1e4.
    assert loss == pytest.approx(1e4)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_cross_entropy_binding_refuses_out_of_range_labels():
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="label 3 at row 1"):
        _core.softmax_cross_entropy(logits, np.array([0, 3]), np.empty_like(logits))


def test_mean_squared_error_matches_reference(simd_target, num_threads, rng):
    for n, c in SHAPES:
        out = rng.standard_normal((n, c)).astype(np.float32)
        target = rng.standard_normal((n, c)).astype(np.float32)
        grad = np.empty_like(out)
        loss = _core.mean_squared_error(out, target, grad)
        ref_loss, ref_grad = reference.mean_squared_error(out, target)
        assert loss == pytest.approx(ref_loss, rel=1e-6)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("momentum,nesterov,weight_decay",
                         [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 1e-2),
                          (0.5, False, 0.1)])
def test_sgd_matches_reference_over_steps(simd_target, num_threads, rng, momentum, nesterov,
                                          weight_decay):
    for size in (1, 17, 100_003):
        w = rng.standard_normal(size).astype(np.float32)
        velocity = np.zeros_like(w) if momentum else None
        ref_w, ref_v = w.astype(np.float64), np.zeros(size)
        for _ in range(3):
            g = rng.standard_normal(size).astype(np.float32)
            assert _core.sgd_update(w, g, velocity, 0.1, momentum, weight_decay, nesterov, True)
            ref_w, ref_v = reference.sgd(ref_w, g, ref_v, 0.1, momentum, weight_decay, nesterov)
        np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-6)
        if momentum:
            np.testing.assert_allclose(velocity, ref_v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_reference_over_steps(simd_target, num_threads, rng, weight_decay):
    for size in (1, 17, 100_003):
        w = rng.standard_normal(size).astype(np.float32)
        m, v = np.zeros_like(w), np.zeros_like(w)
        ref = (w.astype(np.float64), np.zeros(size), np.zeros(size))
        for t in range(1, 4):
            g = rng.standard_normal(size).astype(np.float32)
            assert _core.adam_update(w, g, m, v, 1e-2, 0.9, 0.999, 1e-8, weight_decay, t, True)
            ref = reference.adam(*ref[:1], g, *ref[1:], t, 1e-2, weight_decay=weight_decay)
        np.testing.assert_allclose(w, ref[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m, ref[1], rtol=1e-5, atol=1e-7)
        # (1 - beta2) rounds to float32 with a relative error of about 1e-5.
        np.testing.assert_allclose(v, ref[2], rtol=1e-4, atol=1e-9)


SMALLEST_NORMAL = np.finfo(np.float32).tiny


def flushed(x):
    """x with every subnormal replaced by a zero of its sign, as the optimizers store state."""
    x = np.asarray(x, np.float32)
    return np.where(np.abs(x) < SMALLEST_NORMAL, np.copysign(np.float32(0), x), x)


def state_values(size):
    """Velocities and moments around the subnormal range, both signs, every lane position."""
    base = np.array([4e-45, 1e-42, 1.1e-38, SMALLEST_NORMAL, 1.2e-38, 2e-38, 1e-30, 1e-3, 0.0],
                    np.float32)
    return np.resize(np.concatenate([base, -base]), size)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_velocity_below_the_smallest_normal_is_stored_as_zero(simd_target, num_threads,
                                                                    nesterov):
    for size in (1, 18, 100_003):
        velocity = state_values(size)
        w = np.full(size, 0.5, np.float32)
        g = np.zeros(size, np.float32)
        expected_v = flushed(np.float32(0.9) * velocity + g)
        assert _core.sgd_update(w, g, velocity, 0.1, 0.9, 0.0, nesterov, True)
        np.testing.assert_array_equal(velocity, expected_v)
        assert np.array_equal(np.signbit(velocity), np.signbit(expected_v))
        step = np.float32(0.9) * expected_v if nesterov else expected_v
        np.testing.assert_array_equal(w, np.float32(0.5) - np.float32(0.1) * step)


def test_the_step_that_flushes_a_velocity_still_applies_it(simd_target):
    # Only the stored state is flushed: this step's weights come from the
    # unflushed velocity (here it moves a zero weight by a subnormal amount).
    velocity = np.full(18, 1.1e-38, np.float32)
    w = np.zeros(18, np.float32)
    new_velocity = np.float32(0.9) * velocity
    assert np.all(np.abs(new_velocity) < SMALLEST_NORMAL) and np.all(new_velocity != 0)
    assert _core.sgd_update(w, np.zeros_like(w), velocity, 1.0, 0.9, 0.0, False, True)
    np.testing.assert_array_equal(w, -new_velocity)
    assert not np.any(velocity)


def test_a_velocity_whose_gradient_stopped_decays_to_zero(simd_target):
    # Under round-to-nearest 0.9 * v rounds back to v for v of 1 to 4 units in
    # the last place of the subnormals: without the flush these stay for good.
    velocity = np.linspace(-1e-3, 1e-3, 1001).astype(np.float32)
    w = np.ones_like(velocity)
    zero = np.zeros_like(velocity)
    for _ in range(1000):
        assert _core.sgd_update(w, zero, velocity, 1e-3, 0.9, 0.0, False, True)
    assert not np.any(velocity)
    stuck = np.float32(4 * 2.0 ** -149)
    assert np.float32(0.9) * stuck == stuck  # the fixed point the flush removes


def test_adam_moments_below_the_smallest_normal_are_stored_as_zero(simd_target, num_threads):
    for size in (1, 18, 100_003):
        first, second = state_values(size), np.abs(state_values(size)[::-1].copy())
        w = np.full(size, 0.5, np.float32)
        g = np.zeros(size, np.float32)
        expected_first = flushed(np.float32(0.9) * first + g)
        expected_second = flushed(np.float32(0.999) * second + g)
        assert _core.adam_update(w, g, first, second, 1e-2, 0.9, 0.999, 1e-8, 0.0, 5, True)
        np.testing.assert_array_equal(first, expected_first)
        np.testing.assert_array_equal(second, expected_second)
        assert np.array_equal(np.signbit(first), np.signbit(expected_first))
        assert np.all(np.isfinite(w))
        # The update uses the unflushed moments: where they are subnormal, it
        # rounds away against a weight of 0.5.
        assert np.all(w[expected_first == 0] == np.float32(0.5))
    # float32(0.999) keeps subnormals of up to 500 units in the last place.
    stuck = np.float32(500 * 2.0 ** -149)
    assert np.float32(0.999) * stuck == stuck


def test_dry_run_writes_nothing_and_reports_overflow(simd_target):
    w = np.array([1.0, 2.0, 3e38], np.float32)
    g = np.array([1.0, 1.0, -1e38], np.float32)
    velocity = np.ones_like(w)
    before = (w.copy(), velocity.copy())
    assert _core.sgd_update(w, g, velocity, 10.0, 0.9, 0.0, False, False) is False
    np.testing.assert_array_equal(w, before[0])
    np.testing.assert_array_equal(velocity, before[1])
    assert _core.sgd_update(w[:2].copy(), g[:2].copy(), None, 0.1, 0.0, 0.0, False, False)


def test_bindings_refuse_written_arrays_that_share_memory(rng):
    # Threads split the rows or elements: an output overlapping an input would
    # be read after another thread wrote it. In place, the cross-entropy would
    # also read the label's logit after overwriting it (a wrong loss).
    logits = rng.standard_normal((64, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    with pytest.raises(ValueError, match="grad shares memory with logits"):
        _core.softmax_cross_entropy(logits, labels, logits)
    buffer = rng.standard_normal(2 * 640 + 1).astype(np.float32)
    out, target = buffer[:640].reshape(64, 10), buffer[640:1280].reshape(64, 10)
    with pytest.raises(ValueError, match="grad shares memory with target"):
        _core.mean_squared_error(out, target, buffer[641:].reshape(64, 10))
    w, g = buffer[:640], buffer[1:641]  # param and grad one element apart
    with pytest.raises(ValueError, match="param shares memory with grad"):
        _core.sgd_update(w, g, None, 0.1, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="param shares memory with velocity"):
        _core.sgd_update(w, np.ones(640, np.float32), buffer[100:740], 0.1, 0.9, 0.0, False,
                         True)
    moments = np.zeros(1280, np.float32)
    with pytest.raises(ValueError, match="first_moment shares memory with second_moment"):
        _core.adam_update(np.ones(640, np.float32), np.ones(640, np.float32), moments[:640],
                          moments[320:960], 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, True)
    a = rng.standard_normal((8, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="counts shares memory with a"):
        _core.count_positive_columns(a, a.reshape(-1).view(np.int64)[:4])
    # What was refused wrote nothing.
    np.testing.assert_array_equal(moments, 0.0)


def test_sgd_and_adam_take_separate_arrays_as_before(rng):
    # The check refuses only shared memory: views of distinct parts of one buffer
    # pass, and update as separate arrays holding the same values do.
    buffer = rng.standard_normal(4 * 100).astype(np.float32)
    buffer[300:] = np.abs(buffer[300:])  # a second moment is not negative
    views = [buffer[i * 100:(i + 1) * 100] for i in range(4)]
    apart = [view.copy() for view in views]
    w_before = views[0].copy()
    for w, g, velocity, _ in (views, apart):
        assert _core.sgd_update(w, g, velocity, 0.1, 0.9, 0.0, False, True)
    for w, g, first, second in (views, apart):
        assert _core.adam_update(w, g, first, second, 1e-3, 0.9, 0.999, 1e-8, 0.0, 3, True)
    for view, separate in zip(views, apart):
        np.testing.assert_array_equal(view, separate)
    assert not np.array_equal(views[0], w_before)  # the updates did update
