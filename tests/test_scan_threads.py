"""The local scan with its chunks side by side (reluscope.scan_threads): the same bits as the
scan on one thread, errors that count samples from x's first row, and no thread count
changed for anyone else."""

import threading

import numpy as np
import pytest

import reluscope as rs
from reluscope import _core
from reluscope.scan_threads import worth_threading

two_processors = pytest.mark.skipif(rs.build_info()["available_processors"] < 2,
                                    reason="needs 2 processors for a second kernel thread")


def assert_same_bits(a, b):
    assert a.n_samples == b.n_samples
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.firing_counts, lb.firing_counts)
        np.testing.assert_array_equal(la.max_pre_activation, lb.max_pre_activation)
        np.testing.assert_array_equal(la.mean_abs_activation, lb.mean_abs_activation)


@two_processors
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("rows, chunk", [(1001, 100), (17, 3), (5000, 4999)])
def test_side_by_side_chunks_give_the_one_thread_bits(rows, chunk, activation):
    x = np.random.default_rng(rows).standard_normal((rows, 13)).astype(np.float32)
    model = rs.MLP([13, 40, 17, 3], activation=activation, seed=1)
    model.layers[0].bias[:3] = -50.0  # dead units, counts of 0 compared too
    assert worth_threading(rows, chunk, 2)
    previous = rs.get_num_threads()
    try:
        rs.set_num_threads(1)
        alone = rs.scan(model, x, chunk_size=chunk)
        rs.set_num_threads(2)
        side_by_side = rs.scan(model, x, chunk_size=chunk)
    finally:
        rs.set_num_threads(previous)
    assert_same_bits(alone, side_by_side)
    assert side_by_side.layers[0].n_dead >= 3


@two_processors
def test_a_nonfinite_activation_is_told_from_the_first_row_of_x():
    x = np.ones((900, 4), np.float32)
    x[701] = 3e38  # finite, but the first layer's products overflow: in the eighth chunk
    model = rs.MLP([4, 8, 2], seed=0)
    with pytest.raises(rs.NonFiniteActivations, match="first: sample 701"):
        rs.scan(model, x, chunk_size=100)


def test_a_threads_own_count_leaves_the_others_alone():
    before = rs.get_num_threads()
    seen = {}

    def worker():
        _core.set_threads_for_this_thread(1)
        seen["worker"] = _core.get_num_threads()
        _core.set_threads_for_this_thread(0)
        seen["worker after"] = _core.get_num_threads()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"worker": 1, "worker after": before}
    assert rs.get_num_threads() == before
    with pytest.raises(ValueError, match=">= 0"):
        _core.set_threads_for_this_thread(-1)


def test_small_scans_stay_on_the_shared_kernels():
    assert not worth_threading(100, 8192, 2)
    assert not worth_threading(100_000, 8192, 1)


def test_a_thread_bound_to_one_cpu_stays_on_the_shared_kernels(monkeypatch):
    # Under OMP_PROC_BIND PyTorch's libgomp binds the thread that loads it to one core; the
    # pool's threads would inherit that mask and take turns on it.
    from reluscope import scan_threads

    monkeypatch.setattr(scan_threads, "cpus_for_this_thread", lambda: 1)
    assert not worth_threading(100_000, 8192, 2)
    monkeypatch.setattr(scan_threads, "cpus_for_this_thread", lambda: 2)
    assert worth_threading(100_000, 8192, 2)
