"""Dense forward, dense backward and a whole training step: reluscope against numpy.

Run (see docs/performance.md, Benchmarks):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench -p no:randomly \
        --benchmark-group-by=group
"""

import numpy as np
import numpy_baseline
import pytest

import reluscope as rs
from reluscope import _core

DENSE_SHAPES = [(32, 64, 64), (256, 784, 1024), (256, 1024, 1024), (1000, 257, 17)]
STEP_CONFIGS = {
    "tiny": (32, [64, 64, 64, 10]),
    "medium": (256, [784, 1024, 1024, 1024, 10]),
    "deep-narrow": (256, [100] + [128] * 10 + [10]),
}
IMPLEMENTATIONS = ["reluscope", "numpy"]


def dense_inputs(rng, n, fan_in, fan_out):
    x = rng.standard_normal((n, fan_in)).astype(np.float32)
    weight = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
    bias = rng.standard_normal(fan_out).astype(np.float32) * 0.1
    return x, weight, bias


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dense_forward(benchmark, rng, shape, impl):
    n, fan_in, fan_out = shape
    benchmark.group = f"dense forward n={n} {fan_in}->{fan_out}"
    x, weight, bias = dense_inputs(rng, *shape)
    pre = np.empty((n, fan_out), np.float32)
    out = np.empty_like(pre)
    counts = np.zeros(fan_out, np.int64)
    maxima = np.full(fan_out, -np.inf, np.float32)
    if impl == "reluscope":
        benchmark(
            _core.dense_forward, x, weight, bias, pre, out, _core.Activation.relu, 0.0, counts,
            maxima,
        )
    else:
        benchmark(numpy_baseline.dense_forward, x, weight, bias, pre, out, counts, maxima)
    expected = np.maximum(x.astype(np.float64) @ weight + bias, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(maxima, pre.max(axis=0))
    # The counts accumulated over an unknown number of rounds; check one fresh call.
    counts[:] = 0
    _core.dense_forward(x, weight, bias, pre, out, _core.Activation.relu, 0.0, counts, None)
    np.testing.assert_array_equal(counts, np.count_nonzero(pre > 0, axis=0))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dense_backward(benchmark, rng, shape, impl):
    n, fan_in, fan_out = shape
    benchmark.group = f"dense backward n={n} {fan_in}->{fan_out}"
    x, weight, bias = dense_inputs(rng, *shape)
    pre = x @ weight + bias
    grad_out = rng.standard_normal((n, fan_out)).astype(np.float32)
    if impl == "reluscope":
        grads = (np.empty_like(grad_out), np.empty_like(weight), np.empty_like(bias),
                 np.empty_like(x))
        benchmark(
            _core.dense_backward, x, weight, pre, grad_out, *grads, _core.Activation.relu, 0.0
        )
        result = grads[1:]
    else:
        result = benchmark(numpy_baseline.dense_backward, x, weight, pre, grad_out)
    expected = numpy_baseline.dense_backward(x.astype(np.float64), weight.astype(np.float64),
                                             pre, grad_out.astype(np.float64))
    for got, want in zip(result, expected):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("config", list(STEP_CONFIGS))
def test_training_step(benchmark, rng, config, impl):
    batch, sizes = STEP_CONFIGS[config]
    benchmark.group = f"training step {config}: batch {batch}, {'-'.join(map(str, sizes))}"
    x = rng.random((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)
    model = rs.MLP(sizes, init="he_normal", seed=0)
    reference = numpy_baseline.MLPStep(model.get_weights(), lr=0.01, momentum=0.9)
    if impl == "reluscope":
        trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.01, momentum=0.9), batch_size=batch)
        benchmark(trainer.step, x, y)
        steps = trainer.steps_done
    else:
        calls = []
        benchmark(lambda: calls.append(reference(x, y)))
        steps = len(calls)
    # Both sides must compute the same thing: replay the same number of steps
    # on the other implementation and compare the weights.
    other = rs.MLP.from_weights(rs.MLP(sizes, init="he_normal", seed=0).get_weights())
    check_trainer = rs.Trainer(other, optimizer=rs.SGD(lr=0.01, momentum=0.9),
                               batch_size=batch)
    check_reference = numpy_baseline.MLPStep(other.get_weights(), lr=0.01, momentum=0.9)
    for _ in range(min(steps, 5)):
        check_trainer.step(x, y)
        check_reference(x, y)
    for got, want in zip(other.parameters(), check_reference.params):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
