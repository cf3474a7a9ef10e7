"""build_info, SIMD target selection, and thread settings."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import reluscope as rs
from reluscope import _core


def run_python(code, **env):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_build_info_describes_the_build():
    info = rs.build_info()
    assert info["version"] == rs.__version__
    assert info["compiled_targets"][0] == "portable"
    assert set(info["supported_targets"]) <= set(info["compiled_targets"])
    assert info["selected_target"] in info["supported_targets"]
    assert info["num_threads"] == rs.get_num_threads() >= 1
    assert info["idle_spin_us"] == rs.get_idle_spin_us() >= 0
    assert info["workers_started"] >= 0


def test_best_supported_target_is_chosen_at_import():
    result = run_python("import reluscope, json; print(json.dumps(reluscope.build_info()))",
                        RELUSCOPE_SIMD="")
    info = json.loads(result.stdout)
    assert info["selected_target"] == info["supported_targets"][-1]


@pytest.mark.parametrize("target", _core.supported_targets())
def test_environment_variable_forces_a_target(target):
    result = run_python("import reluscope; print(reluscope.build_info()['selected_target'])",
                        RELUSCOPE_SIMD=target)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == target


def test_environment_variable_with_unknown_target_fails_clearly():
    result = run_python("import reluscope", RELUSCOPE_SIMD="neon9000")
    assert result.returncode != 0
    assert "RELUSCOPE_SIMD=neon9000: unknown SIMD target 'neon9000'" in result.stderr


def test_target_the_cpu_lacks_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(_core, "supported_targets", lambda: ["portable"])
    with pytest.raises(RuntimeError, match="'avx2' is compiled in but this CPU cannot run it"):
        rs.set_simd_target("avx2")


def test_core_refuses_an_unknown_target():
    with pytest.raises(ValueError, match="unknown SIMD target"):
        _core.select_target("sse1")


def test_set_num_threads_round_trips():
    previous = rs.get_num_threads()
    available = rs.build_info()["available_processors"]
    try:
        assert rs.set_num_threads(1) == 1
        assert rs.get_num_threads() == 1 == rs.build_info()["num_threads"]
        assert rs.set_num_threads(available) == available == rs.get_num_threads()
    finally:
        rs.set_num_threads(previous)


def test_thread_count_is_capped_at_the_processors_with_a_warning():
    # Threads beyond the processors only take turns, and each is a thread the
    # operating system may refuse.
    previous = rs.get_num_threads()
    available = rs.build_info()["available_processors"]
    try:
        with pytest.warns(RuntimeWarning, match=f"asked for 4096 threads.*uses {available}"):
            assert rs.set_num_threads(4096) == available
        assert rs.get_num_threads() == available
        x = np.ones((64, 5), np.float32)
        assert rs.MLP([5, 7, 2], seed=0).forward(x).shape == (64, 2)
    finally:
        rs.set_num_threads(previous)


def test_omp_num_threads_is_respected_up_to_the_processors():
    result = run_python("import reluscope; print(reluscope.get_num_threads())",
                        OMP_NUM_THREADS="1")
    assert result.stdout.strip() == "1"
    available = rs.build_info()["available_processors"]
    code = ("import numpy as np, reluscope as rs\n"
            "rs.MLP([5, 7, 2], seed=0).forward(np.ones((512, 5), np.float32))\n"
            "print(rs.get_num_threads())")
    result = run_python(code, OMP_NUM_THREADS="100000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(available)
    assert "OMP_NUM_THREADS asked for 100000 threads" in result.stderr


@pytest.mark.parametrize("value", ["", " ", "0", "-3", "2.5", "two", "4x", "nan"])
def test_an_omp_num_threads_that_is_no_count_leaves_the_processors(value):
    # libgomp's reading: a positive integer, or a list whose first entry is one.
    code = "import reluscope; print(reluscope.get_num_threads())"
    result = run_python(code, OMP_NUM_THREADS=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(rs.build_info()["available_processors"])
    said = "is not a thread count" in result.stderr
    assert said == bool(value.strip()), result.stderr  # blank is as good as unset


@pytest.mark.parametrize("value", ["1,4", " 1 ", "1 ,2"])
def test_an_omp_num_threads_list_counts_its_first_entry(value):
    result = run_python("import reluscope; print(reluscope.get_num_threads())",
                        OMP_NUM_THREADS=value)
    assert result.stdout.strip() == "1", result.stderr
    assert "not a thread count" not in result.stderr


def test_importing_does_not_set_flush_to_zero():
    # A module built with -ffast-math switches the whole process to flush-to-zero
    # when it loads; then products that should be subnormal become 0.
    import numpy as np

    _core.get_num_threads()  # the module is loaded
    subnormal_float32 = np.array([1e-38], np.float32) * np.float32(1e-3)
    assert subnormal_float32[0] > 0
    assert sys.float_info.min / 2 > 0
