import warnings

import numpy as np
import pytest

import reluscope as rs
from reluscope import _core


def _runnable(target):
    return pytest.param(target, marks=pytest.mark.skipif(
        target not in _core.supported_targets(), reason=f"this CPU cannot run {target}"))


@pytest.fixture(params=[_runnable(t) for t in _core.compiled_targets()])
def simd_target(request):
    """Runs the test once per compiled SIMD target, restoring the selection after."""
    previous = _core.selected_target()
    rs.set_simd_target(request.param)
    yield request.param
    rs.set_simd_target(previous)


@pytest.fixture(params=[1, 2])
def num_threads(request):
    """Runs the test with 1 and with 2 kernel threads (1 where one processor is all there is)."""
    previous = rs.get_num_threads()
    with warnings.catch_warnings():
        # The count is capped at the processors, with a warning, on a 1-CPU machine.
        warnings.simplefilter("ignore", RuntimeWarning)
        rs.set_num_threads(request.param)
    yield request.param
    rs.set_num_threads(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
