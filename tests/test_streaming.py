"""forward, predict, predict_proba and born_dead stream the data in chunks of rows,
bit for bit as the unchunked computation; the trainer gives its workspaces back."""

import os
import tracemalloc

import numpy as np
import pytest

import reluscope as rs
from reluscope import _core

CHUNK_SIZES = (1, 3, 17, 100, 8192)


def wide_data(n, n_features, seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_features)).astype(np.float32)


def unchunked_outputs(model, x):
    """All rows at once, through the same kernels (the reference of the streamed forward)."""
    return model.forward_layers(x)[-1][1]


@pytest.mark.parametrize("layer_sizes", [[5, 3, 1], [17, 33, 17, 4], [300, 100, 19, 3]])
def test_forward_is_bitwise_the_same_whatever_the_chunk_size(simd_target, num_threads,
                                                           layer_sizes):
    # 1000 x 300 is past the size from which the GEMM packs A instead of reading
    # it in place (256 Ki floats): whole and chunked take different paths.
    model = rs.MLP(layer_sizes, seed=1)
    x = wide_data(1000, layer_sizes[0])
    expected = unchunked_outputs(model, x)
    for chunk_size in CHUNK_SIZES:
        outputs = model.forward(x, chunk_size=chunk_size)
        assert outputs.shape == (1000, layer_sizes[-1]) and outputs.dtype == np.float32
        np.testing.assert_array_equal(outputs, expected, err_msg=f"chunk_size={chunk_size}")


def test_predict_and_predict_proba_match_the_unchunked_formulas():
    model = rs.MLP([6, 20, 20, 5], seed=2)
    x = wide_data(500, 6)
    logits = unchunked_outputs(model, x)
    shifted = logits.astype(np.float64) - logits.astype(np.float64).max(axis=1, keepdims=True)
    expected = (np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)).astype(np.float32)
    for chunk_size in (7, 64, 8192):
        np.testing.assert_array_equal(model.predict(x, chunk_size=chunk_size),
                                      logits.argmax(axis=1))
        np.testing.assert_array_equal(model.predict_proba(x, chunk_size=chunk_size), expected)


def born_dead_unchunked(model, x):
    """The born_dead figures computed from all of x at once."""
    activations = model.forward_layers(x)
    spreads = [float(np.ptp(out, axis=0).max()) for _, out in activations]
    negative = [bool((pre < 0).any()) for pre, _ in activations[:-1]]
    return spreads, negative


@pytest.mark.parametrize("init,bias_init", [("he_normal", 0.0), ("he_normal", -0.5),
                                            ("normal", 0.0)])
def test_born_dead_is_the_same_whatever_the_chunk_size(simd_target, init, bias_init):
    params = {"std": 0.05} if init == "normal" else None
    model = rs.MLP([8, 30, 30, 30, 3], init=init, init_params=params, bias_init=bias_init, seed=3)
    x = wide_data(700, 8)
    spreads, negative = born_dead_unchunked(model, x)
    whole = rs.scan(model, x, chunk_size=10_000, dormancy=False)
    reports = [rs.born_dead(model, x, chunk_size=c) for c in CHUNK_SIZES]
    for report in reports:
        assert report.activation_spread == spreads[:-1]
        assert report.output_spread == spreads[-1]
        assert report.to_dict() == reports[-1].to_dict()
        for layer, expected in zip(report.scan.layers, whole.layers):
            np.testing.assert_array_equal(layer.firing_counts, expected.firing_counts)
            np.testing.assert_array_equal(layer.max_pre_activation, expected.max_pre_activation)
    assert any(negative)


def test_born_dead_still_finds_mask_death():
    weights = [(np.ones((2, 3)), -np.full(3, 10.0)), (np.ones((3, 2)), np.zeros(2))]
    model = rs.MLP.from_weights(weights)
    x = np.random.default_rng(0).random((40, 2))
    report = rs.born_dead(model, x, chunk_size=16)
    assert report.verdict == "mask death" and report.fully_dead_layers == [0]


def peak_traced_bytes(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_forward_memory_does_not_grow_with_every_layer():
    # numpy reports its allocations to tracemalloc. Unchunked, the hidden
    # activations of 200,000 rows are 200,000 x 64 x 4 B = 51 MB per array.
    model = rs.MLP([10, 64, 64, 2], seed=0)
    x = wide_data(200_000, 10)
    outputs_bytes = 200_000 * 2 * 4
    chunk_buffers = 2 * 8192 * 64 * 4
    for call in (model.forward, model.predict, model.predict_proba,
                 lambda x: rs.born_dead(model, x)):
        peak = peak_traced_bytes(lambda call=call: call(x))
        assert peak < 2 * outputs_bytes + 3 * chunk_buffers + 2**20, (call, peak)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.skipif(os.environ.get("RELUSCOPE_SANITIZED") == "1",
                    reason="AddressSanitizer keeps freed memory in quarantine")
def test_release_gives_the_workspaces_back():
    def resident_bytes():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    # 40,000 rows x (3 x 258 + 20 + 2 x 128) floats: about 170 MB of workspaces.
    model = rs.MLP([20, 128, 128, 2], seed=0)
    x = wide_data(40_000, 20)
    y = np.arange(40_000) % 2
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=1e-3))
    trainer.step(x, y)
    held = resident_bytes()
    trainer.release()
    assert held - resident_bytes() > 100e6


@pytest.mark.parametrize("optimizer", [lambda: rs.SGD(lr=0.05, momentum=0.9),
                                       lambda: rs.Adam(lr=0.01)])
def test_training_is_bitwise_the_same_across_a_release(optimizer):
    x = wide_data(300, 6, seed=4)
    y = np.random.default_rng(4).integers(0, 3, 300)
    runs = []
    for release in (False, True):
        model = rs.MLP([6, 16, 16, 3], seed=5)
        trainer = rs.Trainer(model, optimizer=optimizer(), batch_size=32, seed=6)
        monitor = rs.DeadUnitMonitor(x)
        trainer.fit(x, y, epochs=2, callbacks=[monitor], verbose=False)
        if release:
            trainer.release()
        trainer.step(x, y)  # a batch far larger than batch_size
        if release:
            trainer.release()  # writes the pending last-firing rows, as a flush does
        else:
            trainer.flush_last_firing()
        after_step = [s.last_firing.copy() for s in trainer.unit_stats]
        trainer.fit(x, y, epochs=2, callbacks=[monitor], verbose=False)
        trainer.flush_last_firing()
        runs.append((model.get_weights(), trainer.history.to_dict(),
                     after_step + [s.last_firing.copy() for s in trainer.unit_stats],
                     [c.to_dict() for c in monitor.certificates]))
    (weights_a, history_a, last_a, certificates_a), (weights_b, history_b, last_b,
                                                     certificates_b) = runs
    for (wa, ba), (wb, bb) in zip(weights_a, weights_b):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    assert history_a == history_b
    for a, b in zip(last_a, last_b):
        np.testing.assert_array_equal(a.view(np.float64), b.view(np.float64))
    assert certificates_a == certificates_b


def test_release_before_any_step_and_twice_is_harmless():
    trainer = rs.Trainer(rs.MLP([3, 4, 2], seed=0))
    trainer.release()
    trainer.release()
    x = np.ones((4, 3), np.float32)
    assert np.isfinite(trainer.step(x, np.array([0, 1, 0, 1])))


def test_the_kernel_threads_do_not_change_streamed_results():
    model = rs.MLP([40, 64, 3], seed=0)
    x = wide_data(2000, 40)
    previous = rs.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            _core.set_num_threads(threads)
            results.append(model.forward(x, chunk_size=333))
    finally:
        rs.set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])
