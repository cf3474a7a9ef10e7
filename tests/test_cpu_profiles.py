"""CPU profiles: the mapping from CPUID to a profile, forcing one by name, and the
kernels under every profile this CPU can run, against the numpy reference."""

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import reference

import reluscope as rs
from reluscope import _core

PROFILES = rs.cpu_profiles()
AVX2 = ["avx2", "fma"]
AVX512 = AVX2 + ["avx512f", "avx512dq", "avx512bw", "avx512vl"]
# (n_rows, inner, columns): odd sizes, and an inner dimension of several KC blocks.
ODD_SHAPES = list(itertools.product((1, 3, 17), repeat=3)) + [
    (1000, 1000, 17), (17, 1000, 1000), (1000, 3, 1000), (1, 1000, 3)]


def tolerance(inner):
    # float32 accumulation of `inner` products of unit-scale numbers (as test_dense_kernels).
    return dict(rtol=2e-5, atol=2e-6 * inner + 1e-6)


def target_of(name):
    """The SIMD target the profile runs on here (None in the table: the best one)."""
    return PROFILES[name]["simd_target"] or _core.best_target()


def runnable(name):
    return target_of(name) in _core.supported_targets()


@pytest.fixture(params=[
    pytest.param(name, marks=pytest.mark.skipif(
        not runnable(name), reason=f"this CPU cannot run the {target_of(name)} target"))
    for name in PROFILES])
def cpu_profile(request):
    """Runs the test once per profile this CPU can run, restoring profile and target after."""
    previous_profile, previous_target = rs.get_cpu_profile(), _core.selected_target()
    rs.set_cpu_profile(request.param)
    yield request.param
    rs.set_cpu_profile(previous_profile)
    rs.set_simd_target(previous_target)


def run_python(code, **env):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=120)


# --- the kernels under each profile -------------------------------------------------

def test_profile_selects_its_target_and_tuning(cpu_profile):
    info = rs.build_info()
    assert info["cpu_profile"] == cpu_profile
    assert info["selected_target"] == target_of(cpu_profile)
    if PROFILES[cpu_profile]["gemm_tuning"] is not None:
        assert info["gemm_tuning"] == PROFILES[cpu_profile]["gemm_tuning"]


def test_gemm_matches_reference(cpu_profile, num_threads, rng):
    for m, k, n in ODD_SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.full((m, n), np.nan, np.float32)
        _core.gemm(a, b, c, False, False)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, **tolerance(k),
                                   err_msg=str((m, k, n)))


def test_dense_forward_and_backward_match_reference(cpu_profile, num_threads, rng):
    for n, fan_in, fan_out in ODD_SHAPES:
        x = rng.standard_normal((n, fan_in)).astype(np.float32)
        weight = rng.standard_normal((fan_in, fan_out)).astype(np.float32)
        bias = rng.standard_normal(fan_out).astype(np.float32)
        pre, out = np.empty((n, fan_out), np.float32), np.empty((n, fan_out), np.float32)
        counts = np.zeros(fan_out, np.int64)
        maxima = np.full(fan_out, -np.inf, np.float32)
        _core.dense_forward(x, weight, bias, pre, out, _core.Activation.relu, 0.0, counts,
                            maxima)
        ref_pre, _ = reference.dense_forward(x, weight, bias, "relu")
        shape = str((n, fan_in, fan_out))
        np.testing.assert_allclose(pre, ref_pre, **tolerance(fan_in), err_msg=shape)
        np.testing.assert_array_equal(out, np.maximum(pre, 0))
        np.testing.assert_array_equal(counts, (pre > 0).sum(axis=0))

        grad_out = rng.standard_normal((n, fan_out)).astype(np.float32)
        grad_pre, grad_weight = np.empty_like(grad_out), np.empty_like(weight)
        grad_bias, grad_x = np.empty_like(bias), np.empty_like(x)
        _core.dense_backward(x, weight, pre, grad_out, grad_pre, grad_weight, grad_bias, grad_x,
                             _core.Activation.relu, 0.0)
        ref = reference.dense_backward(x, weight, pre, grad_out, "relu")
        np.testing.assert_allclose(grad_pre, ref[0], rtol=1e-6, err_msg=shape)
        np.testing.assert_allclose(grad_weight, ref[1], **tolerance(n), err_msg=shape)
        np.testing.assert_allclose(grad_bias, ref[2], **tolerance(n), err_msg=shape)
        np.testing.assert_allclose(grad_x, ref[3], **tolerance(fan_out), err_msg=shape)


@pytest.mark.parametrize("target", _core.supported_targets())
def test_profiles_on_one_target_agree_bit_for_bit(target, rng):
    # Every profile keeps KC, the one parameter that sets the summation order,
    # so forcing a profile changes speed, never results (for the same target).
    on_target = [name for name in PROFILES if runnable(name) and target_of(name) == target]
    if len(on_target) < 2:
        pytest.skip(f"fewer than two profiles this CPU can run use {target}")
    a = rng.standard_normal((300, 1000)).astype(np.float32)
    b = rng.standard_normal((1000, 170)).astype(np.float32)
    grad_out = rng.standard_normal((300, 170)).astype(np.float32)
    previous_profile, previous_target = rs.get_cpu_profile(), _core.selected_target()
    results = {}
    try:
        for name in on_target:
            rs.set_cpu_profile(name)
            c = np.empty((300, 170), np.float32)
            _core.gemm(a, b, c, False, False)
            grads = [np.empty_like(grad_out), np.empty_like(b), np.empty(170, np.float32),
                     np.empty_like(a)]
            _core.dense_backward(a, b, c, grad_out, *grads, _core.Activation.relu, 0.0)
            results[name] = [c] + grads
    finally:
        rs.set_cpu_profile(previous_profile)
        rs.set_simd_target(previous_target)
    first, *others = on_target
    for name in others:
        for got, expected in zip(results[name], results[first]):
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} vs {first}")


# --- detection ----------------------------------------------------------------------

@pytest.mark.parametrize("vendor,family,model,flags,expected", [
    ("AuthenticAMD", 25, 0x01, AVX2, "zen3"),     # EPYC 7003 (Milan)
    ("AuthenticAMD", 25, 0x21, AVX2, "zen3"),     # Ryzen 5000 (Vermeer)
    ("AuthenticAMD", 25, 0x11, AVX512, "zen4"),   # EPYC 9004 (Genoa)
    ("AuthenticAMD", 25, 0x61, AVX512, "zen4"),   # Ryzen 7000 (Raphael)
    ("AuthenticAMD", 25, 0x11, AVX2, "zen3"),     # a Zen 4 whose AVX-512 is hidden: avx2
    ("AuthenticAMD", 26, 0x02, AVX512, "zen5"),   # EPYC 9005 (Turin)
    ("AuthenticAMD", 26, 0x44, AVX512, "zen5"),   # Ryzen 9000 (Granite Ridge)
    ("AuthenticAMD", 26, 0x24, AVX512, "zen4"),   # Ryzen AI 300 (Strix Point): half width
    ("AuthenticAMD", 26, 0x44, AVX2, "generic"),  # AVX-512 hidden: no zen5 without it
    ("AuthenticAMD", 23, 0x31, AVX2, "generic"),  # Zen 2
    ("GenuineIntel", 6, 0x55, AVX512, "intel-avx512"),  # Skylake-SP / Cascade Lake
    ("GenuineIntel", 6, 0x8F, AVX512, "intel-avx512"),  # Sapphire Rapids, L2 not given
    ("GenuineIntel", 6, 0x97, AVX2, "generic"),   # Alder Lake: no AVX-512
    ("GenuineIntel", 6, 0x55, [], "generic"),     # AVX-512 CPU whose OS saves no wide registers
    ("", 0, 0, [], "generic"),                    # not x86
])
def test_known_cpus_map_to_their_profiles(vendor, family, model, flags, expected):
    assert rs.cpu_profile_for(vendor, family, model, flags) == expected


@pytest.mark.parametrize("model,flags,l2_kib,expected", [
    (0x55, AVX512, 1024, "intel-avx512"),         # Skylake-SP: 1 MiB
    (0x6A, AVX512, 1280, "intel-avx512"),         # Ice Lake-SP: 1.25 MiB
    (0x8F, AVX512, 2048, "intel-avx512-l2-2m"),   # Sapphire Rapids
    (0xA7, AVX512, 2048, "intel-avx512-l2-2m"),   # the model number a hypervisor reported
    (0xAD, AVX512, 2048, "intel-avx512-l2-2m"),   # Granite Rapids
    (0x8F, AVX512, 0, "intel-avx512"),            # L2 unknown
    (0x97, AVX2, 2048, "generic"),                # no AVX-512, whatever the L2
])
def test_intel_avx512_parts_are_told_apart_by_their_l2(model, flags, l2_kib, expected):
    assert rs.cpu_profile_for("GenuineIntel", 6, model, flags, l2_kib) == expected


def test_the_l2_size_does_not_move_amd_profiles():
    assert rs.cpu_profile_for("AuthenticAMD", 25, 0x11, AVX512, 1024) == "zen4"
    assert rs.cpu_profile_for("AuthenticAMD", 25, 1, AVX2, 4096) == "zen3"


@pytest.mark.parametrize("args,error,message", [
    ((None, 25, 1, AVX2), TypeError, "vendor must be a CPUID vendor string"),
    (("AuthenticAMD", "25h", 1, AVX2), TypeError, "family must be an integer"),
    (("AuthenticAMD", 25, -1, AVX2), ValueError, "model must be >= 0"),
    (("AuthenticAMD", 2**40, 1, AVX2), ValueError, "family must be at most 65535"),
    (("AuthenticAMD", 25, 1, "avx2"), TypeError, "not one string"),
    (("AuthenticAMD", 25, 1, ["avx2", 3]), TypeError, "flags must be strings"),
    (("GenuineIntel", 6, 0x8F, AVX512, -1), ValueError, "l2_kib must be >= 0"),
    (("GenuineIntel", 6, 0x8F, AVX512, 2**31), ValueError, "l2_kib must be at most 65535"),
    (("GenuineIntel", 6, 0x8F, AVX512, 2.5), TypeError, "l2_kib must be an integer"),
])
def test_a_bad_cpu_description_is_named(args, error, message):
    with pytest.raises(error, match=message):
        rs.cpu_profile_for(*args)


def test_family_and_model_may_be_given_as_proc_cpuinfo_shows_them():
    assert rs.cpu_profile_for("AuthenticAMD", "25", "1", AVX2) == "zen3"


def test_every_profile_named_by_detection_exists():
    assert list(PROFILES)[0] == "generic"
    assert {"generic", "zen3", "zen4", "zen5", "intel-avx512", "intel-avx512-l2-2m"} <= set(
        PROFILES)
    for name, profile in PROFILES.items():
        assert profile["description"], name
        if profile["gemm_tuning"] is not None:
            assert profile["gemm_tuning"]["kc"] == 256, name  # results as before profiles
            assert profile["gemm_tuning"]["nc"] % 32 == 0, name  # whole panels of every target


def test_build_info_reports_the_detected_and_selected_profile():
    info = rs.build_info()
    cpu = _core.detect_cpu()
    assert info["cpu"] == {"vendor": cpu.vendor, "family": cpu.family, "model": cpu.model,
                           "l2_kib": cpu.l2_kib}
    assert info["detected_cpu_profile"] == rs.cpu_profile_for(cpu.vendor, cpu.family, cpu.model,
                                                              cpu.flags, cpu.l2_kib)
    assert info["cpu_profile"] == rs.get_cpu_profile()
    assert set(info["gemm_tuning"]) == {"kc", "blocks_per_pass", "mc_panels", "nc",
                                        "prefetch_distance"}


def test_detected_profile_and_its_target_are_used_at_import():
    result = run_python("import reluscope, json; print(json.dumps(reluscope.build_info()))",
                        RELUSCOPE_CPU_PROFILE="", RELUSCOPE_SIMD="")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["cpu_profile"] == info["detected_cpu_profile"]
    assert info["selected_target"] == target_of(info["detected_cpu_profile"])


# --- forcing ------------------------------------------------------------------------

@pytest.mark.parametrize("name", [name for name in PROFILES if runnable(name)])
def test_environment_variable_forces_a_profile(name):
    result = run_python("import reluscope, json; print(json.dumps(reluscope.build_info()))",
                        RELUSCOPE_CPU_PROFILE=name, RELUSCOPE_SIMD="")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["cpu_profile"], info["selected_target"]) == (name, target_of(name))


def test_forced_target_runs_with_its_own_defaults():
    # RELUSCOPE_SIMD wins over the profile's target; the profile's tuning is
    # for its own target only, so the forced target keeps its defaults.
    code = ("import reluscope, json\n"
            "print(json.dumps(reluscope.build_info()['gemm_tuning']))\n")
    alone = run_python(code, RELUSCOPE_CPU_PROFILE="generic", RELUSCOPE_SIMD="portable")
    profiled = [name for name in PROFILES if PROFILES[name]["gemm_tuning"] and runnable(name)]
    if not profiled:
        pytest.skip("this CPU runs no profile with a tuning of its own")
    forced = run_python(code, RELUSCOPE_CPU_PROFILE=profiled[0], RELUSCOPE_SIMD="portable")
    assert alone.returncode == forced.returncode == 0, alone.stderr + forced.stderr
    assert json.loads(forced.stdout) == json.loads(alone.stdout)


def test_unknown_profile_is_a_value_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown CPU profile 'zen9'; known profiles: "
                                         "generic, zen3, zen4, zen5, intel-avx512, "
                                         "intel-avx512-l2-2m"):
        rs.set_cpu_profile("zen9")
    with pytest.raises(TypeError, match="CPU profile must be a string"):
        rs.set_cpu_profile(4)


def test_environment_variable_with_unknown_profile_fails_clearly():
    result = run_python("import reluscope", RELUSCOPE_CPU_PROFILE="zen9")
    assert result.returncode != 0
    assert "RELUSCOPE_CPU_PROFILE=zen9: unknown CPU profile 'zen9'" in result.stderr


def test_profile_the_cpu_cannot_run_is_a_runtime_error():
    beyond = [name for name in PROFILES if not runnable(name)]
    if not beyond:
        pytest.skip("this CPU runs every profile")
    before = (rs.get_cpu_profile(), _core.selected_target())
    target = PROFILES[beyond[0]]["simd_target"]
    with pytest.raises(RuntimeError, match=f"CPU profile '{beyond[0]}' uses the {target} SIMD "
                                           "target, which this CPU cannot run"):
        rs.set_cpu_profile(beyond[0])
    assert (rs.get_cpu_profile(), _core.selected_target()) == before  # nothing changed


# --- the blocking is a run-time parameter -------------------------------------------

@pytest.mark.parametrize("kc,mc_panels,nc,prefetch_distance,blocks_per_pass", [
    (1, 1, 32, 0, 1), (100, 1, 64, 4, 1), (257, 3, 96, 0, 1), (1000, 40, 4096, 16, 1),
    (1, 1, 32, 0, 7), (100, 2, 64, 4, 3), (64, 40, 4096, 0, 4)])
def test_gemm_is_right_under_unusual_tunings(simd_target, num_threads, rng, kc, mc_panels, nc,
                                             prefetch_distance, blocks_per_pass):
    # Blocks smaller than the operands in every dimension: many KC, MC and NC
    # blocks, ragged last ones, passes of several blocks (a ragged last pass
    # too), through the fused dense epilogue too.
    try:
        _core.set_gemm_tuning(kc, mc_panels, nc, prefetch_distance, blocks_per_pass)
        assert _core.gemm_tuning_in_use().kc == kc
        assert _core.gemm_tuning_in_use().blocks_per_pass == blocks_per_pass
        for m, k, n in [(1, 1, 1), (17, 300, 130), (300, 1000, 17), (130, 257, 300)]:
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            c = np.full((m, n), np.nan, np.float32)
            _core.gemm(a, b, c, False, False)
            np.testing.assert_allclose(c, a.astype(np.float64) @ b, **tolerance(k),
                                       err_msg=str((m, k, n)))
            bias = rng.standard_normal(n).astype(np.float32)
            pre, out = np.empty_like(c), np.empty_like(c)
            _core.dense_forward(a, b, bias, pre, out, _core.Activation.relu, 0.0, None, None)
            np.testing.assert_allclose(pre, reference.dense_forward(a, b, bias, "relu")[0],
                                       **tolerance(k), err_msg=str((m, k, n)))
            grad_out = rng.standard_normal((m, n)).astype(np.float32)
            grads = [np.empty_like(grad_out), np.empty_like(b), np.empty_like(bias),
                     np.empty_like(a)]
            _core.dense_backward(a, b, pre, grad_out, *grads, _core.Activation.relu, 0.0)
            ref = reference.dense_backward(a, b, pre, grad_out, "relu")
            np.testing.assert_allclose(grads[1], ref[1], **tolerance(m), err_msg=str((m, k, n)))
            np.testing.assert_allclose(grads[3], ref[3], **tolerance(n), err_msg=str((m, k, n)))
    finally:
        _core.select_target(_core.selected_target())  # back to the profile's tuning


def test_threads_splitting_many_column_blocks_keep_their_packed_panels_apart(simd_target, rng):
    # Few rows and many column blocks of 4 panels (NC = 4 NR) with a ragged last
    # one: the threads split each block's panels and run through the blocks
    # unsynchronised. When a thread's share of the last block was packed into
    # slots another thread was still reading for the block before, products came
    # out wrong now and then; so many rounds, checked every time.
    nr = {"portable": 8, "avx2": 16, "avx512": 32}[simd_target]  # the targets' NR
    m, k = 20, 300  # two KC blocks at kc 256
    n = 31 * 4 * nr + nr // 2  # 31 full blocks and a half-panel one
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    expected = a.astype(np.float64) @ b
    previous = rs.get_num_threads()
    try:
        rs.set_num_threads(2)
        _core.set_gemm_tuning(256, 1, 4 * nr, 0)
        for attempt in range(40):
            c = np.full((m, n), np.nan, np.float32)
            _core.gemm(a, b, c, False, False)
            np.testing.assert_allclose(c, expected, **tolerance(k), err_msg=f"round {attempt}")
    finally:
        rs.set_num_threads(previous)
        _core.select_target(_core.selected_target())


def test_selecting_a_target_ends_a_tuning_set_by_hand():
    before = rs.build_info()["gemm_tuning"]
    try:
        _core.set_gemm_tuning(64, 2, 128, 3, 5)
        assert rs.build_info()["gemm_tuning"] == {"kc": 64, "blocks_per_pass": 5,
                                                  "mc_panels": 2, "nc": 128,
                                                  "prefetch_distance": 3}
    finally:
        _core.select_target(_core.selected_target())
    assert rs.build_info()["gemm_tuning"] == before


@pytest.mark.parametrize("kc,mc_panels,nc,prefetch_distance,blocks_per_pass", [
    (0, 1, 32, 0, 1), (1, 0, 32, 0, 1), (1, 1, 48, 0, 1), (1, 1, 0, 0, 1), (1, 1, 32, -1, 1),
    (1, 1, 32, 0, 0), (1, 1, 32, 0, -3), (2**12, 1, 32, 0, 2**12 + 1), (2**25, 1, 32, 0, 1),
    (1, 2**25, 32, 0, 1), (1, 1, 2**25, 0, 1), (1, 1, 32, 2**25, 1),
    (2**40, 1, 32, 0, 2**40)])
def test_impossible_tunings_are_refused(kc, mc_panels, nc, prefetch_distance, blocks_per_pass):
    # Including sizes whose products would overflow the packing buffers' sizes.
    before = rs.build_info()["gemm_tuning"]
    with pytest.raises(ValueError, match="GEMM tuning needs"):
        _core.set_gemm_tuning(kc, mc_panels, nc, prefetch_distance, blocks_per_pass)
    assert rs.build_info()["gemm_tuning"] == before


# --- passes of several summation blocks -------------------------------------------

def _products_under(blocks_per_pass, a, b, bias, grad_out):
    """GEMM in every transposition, dense forward with statistics and dense
    backward, under KC = 64 and the given blocks per pass."""
    _core.set_gemm_tuning(64, 2, 96, 0, blocks_per_pass)
    m, k = a.shape
    n = b.shape[1]
    results = []
    for trans_a, trans_b in itertools.product((False, True), repeat=2):
        c = np.full((m, n), np.nan, np.float32)
        _core.gemm(np.ascontiguousarray(a.T) if trans_a else a,
                   np.ascontiguousarray(b.T) if trans_b else b, c, trans_a, trans_b)
        results.append(c)
    pre, out = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
    counts, maxima = np.zeros(n, np.int64), np.full(n, -np.inf, np.float32)
    _core.dense_forward(a, b, bias, pre, out, _core.Activation.relu, 0.0, counts, maxima)
    grads = [np.empty_like(grad_out), np.empty_like(b), np.empty_like(bias), np.empty_like(a)]
    _core.dense_backward(a, b, pre, grad_out, *grads, _core.Activation.relu, 0.0)
    return results + [pre, out, counts, maxima] + grads


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 65, 17), (17, 1000, 130), (300, 257, 3),
                                   (130, 2049, 40)])
def test_passes_of_several_blocks_give_the_same_bits(simd_target, num_threads, rng, m, k, n):
    # blocks_per_pass only moves where C is read and written: each KC block's
    # sum is added to the partial product in the same order, so every product
    # is the same bit for bit, for inner dimensions of one ragged pass, of
    # several, and of a last pass shallower than a block.
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    grad_out = rng.standard_normal((m, n)).astype(np.float32)
    try:
        one_block = _products_under(1, a, b, bias, grad_out)
        for blocks_per_pass in (2, 3, 5, 40):
            got = _products_under(blocks_per_pass, a, b, bias, grad_out)
            for index, (x, y) in enumerate(zip(got, one_block)):
                np.testing.assert_array_equal(
                    x.view(np.int32) if x.dtype == np.float32 else x,
                    y.view(np.int32) if y.dtype == np.float32 else y,
                    err_msg=f"result {index}, {blocks_per_pass} blocks per pass")
    finally:
        _core.select_target(_core.selected_target())


def test_training_is_the_same_with_passes_of_several_blocks(simd_target, num_threads, rng):
    # The training step's stacked forward and pipelined backward, and the
    # optimizer after them, under passes of one and of several KC blocks.
    x = rng.standard_normal((70, 300)).astype(np.float32)
    y = rng.integers(0, 5, 70)
    start = rs.MLP([300, 200, 90, 5], init="he_normal", seed=3).get_weights()
    weights = {}
    try:
        for blocks_per_pass in (1, 4):
            _core.set_gemm_tuning(32, 3, 64, 0, blocks_per_pass)
            model = rs.MLP.from_weights(start)
            trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.05, momentum=0.9), batch_size=35)
            for _ in range(3):
                trainer.step(x[:35], y[:35])
                trainer.step(x[35:], y[35:])
            weights[blocks_per_pass] = [p.copy() for p in model.parameters()]
    finally:
        _core.select_target(_core.selected_target())
    for got, expected in zip(weights[4], weights[1]):
        np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))
