"""Property tests of the C++ kernels against a float64 numpy oracle.

Shapes are drawn at random (0 where it is legal, 1, odd sizes), and so are the
values: normal numbers of any scale, subnormals, values near the float32 limit,
zeros, NaN and Inf. Every compiled SIMD target this CPU runs is checked, with 1
and 2 threads.

The claim for a dot product of k float32 terms is the textbook one (Higham,
"Accuracy and Stability of Numerical Algorithms", 2nd ed., section 3.1): the
computed sum differs from the exact one by at most about k * u * sum |a_i b_i|,
u = 2**-24, plus the subnormal spacing 2**-149 per operation. Where that sum of
magnitudes could overflow float32, the summation order decides between Inf and a
finite value, and no claim is made. A NaN term makes the result NaN; an Inf term
among finite ones gives that Inf.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests import reference

import reluscope as rs
from reluscope import _core

UNIT_ROUNDOFF = 2.0 ** -24
SMALLEST_SUBNORMAL = 2.0 ** -149
# Below this sum of magnitudes no order of summation can overflow float32.
NO_OVERFLOW = 1e37
SPECIALS = np.array([0.0, -0.0, 1e-40, -3e-42, 1.4e-45, 1e-38, 3e38, -3e38, 1e30, -1e19,
                     np.inf, -np.inf, np.nan], dtype=np.float32)
TARGETS = [t for t in _core.compiled_targets() if t in _core.supported_targets()]
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def draw_values(rng, shape, special_fraction, scale_exponent):
    """Normal values at 10**scale_exponent with a fraction replaced by special ones."""
    values = (rng.standard_normal(shape) * 10.0 ** scale_exponent).astype(np.float32)
    if special_fraction and values.size:
        mask = rng.random(shape) < special_fraction
        values[mask] = rng.choice(SPECIALS, size=int(mask.sum()))
    return values


value_mix = st.sampled_from([0.0, 0.05, 0.3])
scale = st.sampled_from([-42, -20, 0, 0, 15])  # -42: results among the subnormals
# A dense layer's shapes (no rows is a legal batch), activation and values.
DENSE_LAYER_CASES = dict(
    rows=st.integers(0, 40), fan_in=st.integers(1, 40), fan_out=st.integers(1, 40),
    activation=st.sampled_from([("identity", 0.0), ("relu", 0.0), ("leaky_relu", 0.2)]),
    special=value_mix, exponent=scale, seed=st.integers(0, 2 ** 32 - 1))


def every_target_and_thread_count():
    """(target, threads) pairs; restores the selection afterwards."""
    previous_target, previous_threads = _core.selected_target(), rs.get_num_threads()
    try:
        for target in TARGETS:
            for threads in (1, min(2, rs.build_info()["available_processors"])):
                rs.set_simd_target(target)
                rs.set_num_threads(threads)
                yield target, threads
    finally:
        rs.set_simd_target(previous_target)
        rs.set_num_threads(previous_threads)


def assert_dot_products_match(computed, a, b, bias=None, context=""):
    """``computed`` against a @ b (+ bias) under the claim in the module docstring."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        exact = a64 @ b64
        finite_a = np.where(np.isfinite(a64), np.abs(a64), 0.0)
        finite_b = np.where(np.isfinite(b64), np.abs(b64), 0.0)
        magnitude = finite_a @ finite_b
        if bias is not None:
            exact = exact + bias.astype(np.float64)
            magnitude = magnitude + np.where(np.isfinite(bias), np.abs(bias), 0.0)
    terms = a.shape[1] + (bias is not None)
    claimed = magnitude < NO_OVERFLOW
    nan = np.isnan(exact) & claimed
    assert np.isnan(computed[nan]).all(), f"{context}: a NaN term did not give NaN"
    infinite = np.isinf(exact) & claimed
    np.testing.assert_array_equal(computed[infinite], exact[infinite].astype(np.float32),
                                  err_msg=f"{context}: an Inf term did not give that Inf")
    finite = np.isfinite(exact) & claimed
    bound = 1.01 * terms * (UNIT_ROUNDOFF * magnitude + 2 * SMALLEST_SUBNORMAL)
    error = np.abs(computed[finite].astype(np.float64) - exact[finite])
    assert (error <= bound[finite]).all(), (
        f"{context}: error {error.max()} beyond the bound {bound[finite][error.argmax()]}")


@PROPERTY_SETTINGS
@given(m=st.integers(0, 40), n=st.integers(0, 40), k=st.integers(0, 40),
       transpose_a=st.booleans(), transpose_b=st.booleans(), special=value_mix,
       exponent=scale, seed=st.integers(0, 2 ** 32 - 1))
def test_gemm_property(m, n, k, transpose_a, transpose_b, special, exponent, seed):
    rng = np.random.default_rng(seed)
    a = draw_values(rng, (m, k), special, exponent)
    b = draw_values(rng, (k, n), special, exponent)
    stored_a = np.ascontiguousarray(a.T) if transpose_a else a
    stored_b = np.ascontiguousarray(b.T) if transpose_b else b
    for target, threads in every_target_and_thread_count():
        c = np.full((m, n), 12345.0, np.float32)
        _core.gemm(stored_a, stored_b, c, transpose_a, transpose_b)
        assert_dot_products_match(c, a, b, context=f"gemm on {target}, {threads} threads")


@PROPERTY_SETTINGS
@given(**DENSE_LAYER_CASES)
def test_dense_forward_property(rows, fan_in, fan_out, activation, special, exponent, seed):
    name, slope = activation
    rng = np.random.default_rng(seed)
    x = draw_values(rng, (rows, fan_in), special, exponent)
    weight = draw_values(rng, (fan_in, fan_out), special, exponent)
    bias = draw_values(rng, fan_out, special, exponent)
    for target, threads in every_target_and_thread_count():
        context = f"dense_forward {name} on {target}, {threads} threads"
        pre = np.empty((rows, fan_out), np.float32)
        out = np.empty((rows, fan_out), np.float32)
        counts = np.zeros(fan_out, np.int64)
        maxima = np.full(fan_out, -np.inf, np.float32)
        _core.dense_forward(x, weight, bias, pre, out, reference.activation_kind(name), slope,
                            counts, maxima)
        assert_dot_products_match(pre, x, weight, bias, context)
        # The epilogue against the kernel's own pre-activations, exactly.
        with np.errstate(invalid="ignore", over="ignore"):
            expected_out = reference.activation(pre, name, slope).astype(np.float32)
        np.testing.assert_array_equal(out, expected_out, err_msg=context)
        np.testing.assert_array_equal(counts, (pre > 0).sum(axis=0), err_msg=context)
        clean = ~np.isnan(pre).any(axis=0)
        if rows:
            np.testing.assert_array_equal(maxima[clean], pre.max(axis=0)[clean], err_msg=context)


@PROPERTY_SETTINGS
@given(**DENSE_LAYER_CASES)
def test_dense_backward_property(rows, fan_in, fan_out, activation, special, exponent, seed):
    name, slope = activation
    rng = np.random.default_rng(seed)
    x = draw_values(rng, (rows, fan_in), special, exponent)
    weight = draw_values(rng, (fan_in, fan_out), special, exponent)
    pre = draw_values(rng, (rows, fan_out), special, 0)
    grad_out = draw_values(rng, (rows, fan_out), special, exponent)
    with np.errstate(invalid="ignore", over="ignore"):
        expected_grad_pre = (grad_out * reference.activation_derivative(pre, name, slope)
                             ).astype(np.float32)
    for target, threads in every_target_and_thread_count():
        context = f"dense_backward {name} on {target}, {threads} threads"
        grad_pre = np.empty_like(grad_out)
        grad_weight = np.empty_like(weight)
        grad_bias = np.empty(fan_out, np.float32)
        grad_input = np.empty_like(x)
        _core.dense_backward(x, weight, pre, grad_out, grad_pre, grad_weight, grad_bias,
                             grad_input, reference.activation_kind(name), slope)
        np.testing.assert_array_equal(grad_pre, expected_grad_pre, err_msg=context)
        assert_dot_products_match(grad_weight, x.T, grad_pre, context=context + " (weight)")
        assert_dot_products_match(grad_bias[None, :], np.ones((1, rows), np.float32), grad_pre,
                                  context=context + " (bias)")
        assert_dot_products_match(grad_input, grad_pre, weight.T, context=context + " (input)")


@PROPERTY_SETTINGS
@given(size=st.integers(0, 300), momentum=st.sampled_from([0.0, 0.9]),
       nesterov=st.booleans(), special=value_mix, exponent=st.sampled_from([-42, 0, 15, 37]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_sgd_update_property(size, momentum, nesterov, special, exponent, seed):
    rng = np.random.default_rng(seed)
    param = draw_values(rng, size, special / 3, 0)
    grad = draw_values(rng, size, special, exponent)
    velocity = draw_values(rng, size, 0.0, 0)
    nesterov = nesterov and momentum > 0
    with np.errstate(invalid="ignore", over="ignore"):
        new_param, new_velocity = reference.sgd(param.astype(np.float64), grad.astype(np.float64),
                                                velocity.astype(np.float64), 0.1, momentum,
                                                1e-3, nesterov)
    with np.errstate(over="ignore"):
        expect_finite = bool(np.isfinite(new_param.astype(np.float32)).all()
                             and np.isfinite(new_velocity.astype(np.float32)).all())
    for target, threads in every_target_and_thread_count():
        context = f"sgd_update on {target}, {threads} threads"
        p, v = param.copy(), velocity.copy()
        finite = _core.sgd_update(p, grad, v, 0.1, momentum, 1e-3, nesterov, False)
        # A check changes nothing; it says whether the update stays finite.
        np.testing.assert_array_equal(p, param, err_msg=context)
        np.testing.assert_array_equal(v, velocity, err_msg=context)
        if np.isfinite(new_param).all() and np.abs(new_param).max(initial=0) < 1e37:
            assert finite and expect_finite, context
            assert _core.sgd_update(p, grad, v, 0.1, momentum, 1e-3, nesterov, True)
            # A few float32 roundings, each relative to the terms it combines.
            w, g, v0 = (np.abs(a.astype(np.float64)) for a in (param, grad, velocity))
            magnitude = w + 0.1 * (g + 1e-3 * w + momentum * v0) * (1 + momentum)
            error = np.abs(p.astype(np.float64) - new_param)
            assert (error <= 8 * UNIT_ROUNDOFF * magnitude + 4 * SMALLEST_SUBNORMAL).all(), context
        elif not np.isfinite(new_param).all():
            assert not finite, context


@PROPERTY_SETTINGS
@given(size=st.integers(0, 300), step=st.integers(1, 5), special=value_mix,
       exponent=st.sampled_from([-42, 0, 15]), seed=st.integers(0, 2 ** 32 - 1))
def test_adam_update_property(size, step, special, exponent, seed):
    rng = np.random.default_rng(seed)
    param = draw_values(rng, size, special / 3, 0)
    grad = draw_values(rng, size, special, exponent)
    first = draw_values(rng, size, 0.0, -2)
    second = np.abs(draw_values(rng, size, 0.0, -4))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # The kernel computes with float32 hyper-parameters: 1 - float32(0.999) is
        # 1.3e-5 away from 0.001, which the bias correction divides by.
        beta1, beta2, lr, eps = (float(np.float32(v)) for v in (0.9, 0.999, 1e-3, 1e-8))
        new_param, _, _ = reference.adam(param.astype(np.float64), grad.astype(np.float64),
                                         first.astype(np.float64), second.astype(np.float64),
                                         step, lr, beta1, beta2, eps)
    for target, threads in every_target_and_thread_count():
        context = f"adam_update on {target}, {threads} threads"
        p, m, v = param.copy(), first.copy(), second.copy()
        finite = _core.adam_update(p, grad, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, step, False)
        np.testing.assert_array_equal(p, param, err_msg=context)
        if (np.isfinite(grad).all() and np.isfinite(param).all()
                and np.abs(grad).max(initial=0) < 1e18):
            assert finite, context
            assert _core.adam_update(p, grad, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, step, True)
            # Adam's step is at most about lr per element: the error scale is lr.
            np.testing.assert_allclose(p, new_param, rtol=1e-6, atol=1e-8, err_msg=context)
        elif np.isnan(grad).any() or not np.isfinite(param).all():
            assert not finite, context


@PROPERTY_SETTINGS
@given(rows=st.integers(1, 40), classes=st.integers(1, 12),
       exponent=st.sampled_from([-42, -3, 0, 3, 20, 37]), seed=st.integers(0, 2 ** 32 - 1))
def test_softmax_cross_entropy_is_stable_for_any_finite_logits(rows, classes, exponent, seed):
    rng = np.random.default_rng(seed)
    logits = np.clip(rng.standard_normal((rows, classes)) * 10.0 ** exponent,
                     -3e38, 3e38).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    expected_loss, expected_grad = reference.softmax_cross_entropy(logits, labels)
    for target, threads in every_target_and_thread_count():
        context = f"softmax_cross_entropy on {target}, {threads} threads"
        grad = np.empty_like(logits)
        loss = _core.softmax_cross_entropy(logits, labels, grad)
        if np.isfinite(expected_loss):
            assert loss == pytest.approx(expected_loss, rel=1e-5, abs=1e-6), context
        else:
            # The true loss exceeds float64's range of exp only by a huge logit gap;
            # it must then be Inf, never a finite wrong value or NaN.
            assert np.isposinf(loss), context
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6, err_msg=context)


ODD_LAYOUTS = {
    "every other column": lambda x: np.repeat(x, 2, axis=1)[:, ::2],
    "Fortran order": np.asfortranarray,
    "reversed rows": lambda x: x[::-1].copy()[::-1],
    "float64": lambda x: x.astype(np.float64),
    "a transposed view": lambda x: np.ascontiguousarray(x.T).T,
}


@pytest.mark.parametrize("layout", list(ODD_LAYOUTS))
@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 50), seed=st.integers(0, 2 ** 32 - 1))
def test_the_python_layer_gives_the_same_bits_for_any_layout(layout, rows, seed):
    rng = np.random.default_rng(seed)
    model = rs.MLP([7, 13, 3], seed=seed % 1000)
    x = rng.standard_normal((rows, 7)).astype(np.float32)
    arranged = ODD_LAYOUTS[layout](x)
    np.testing.assert_array_equal(arranged, x)
    np.testing.assert_array_equal(model.forward(arranged), model.forward(x))
    report, arranged_report = rs.scan(model, x), rs.scan(model, arranged)
    np.testing.assert_array_equal(report.layers[0].firing_counts,
                                  arranged_report.layers[0].firing_counts)
