"""Experiments: the born-dead kernel and Monte Carlo, the init study, sweeps, determinism."""

import gzip
import json

import numpy as np
import pytest
from clusters import local_dask_cluster

import reluscope as rs
from reluscope import datasets
from reluscope.experiments import born_dead, initialization, learning_rate, remedies
from reluscope.experiments.sweep import expand_grid, sweep
from reluscope.experiments.training import train_trial

# ---- born dead: the C++ kernel against a plain numpy forward ----------------------------

def numpy_first_layers(x, first, weights, biases, reference_point):
    """The kernel's three answers for each network, computed the slow way (float64)."""
    n_networks, depth = biases.shape[:2]
    answers = np.full((3, n_networks), depth + 1)
    for r in range(n_networks):
        h = x.astype(np.float64)
        for layer in range(depth):
            w = first[r] if layer == 0 else weights[r, layer - 1]
            pre = h @ w + biases[r, layer]
            h = np.maximum(pre, 0.0)
            events = (not (pre > 0).any() and (pre < 0).any(), bool((h == h[0]).all()),
                      not (pre[reference_point] > 0).any() and (pre[reference_point] < 0).any())
            for i, happened in enumerate(events):
                if happened and answers[i, r] == depth + 1:
                    answers[i, r] = layer + 1
            if events[0]:
                break
    return answers


@pytest.mark.parametrize("width,depth,n_points,n_inputs", [
    (1, 1, 2, 1), (2, 7, 1001, 1), (3, 10, 17, 3), (17, 4, 33, 5), (5, 12, 1, 2)])
def test_random_networks_kernel_matches_numpy(width, depth, n_points, n_inputs, simd_target):
    rng = np.random.default_rng(width * 100 + depth)
    x = rng.uniform(-1, 1, (n_points, n_inputs)).astype(np.float32)
    params = born_dead.draw_networks(width, depth, 60, n_inputs, rng, bias=0.0)
    biases = params[2] + rng.normal(0, 0.3, params[2].shape).astype(np.float32) * (width > 3)
    got = np.array(born_dead.run_networks(x, params[0], params[1], biases, n_points - 1))
    expected = numpy_first_layers(x, params[0], params[1], biases, n_points - 1)
    # float32 against float64 sums may disagree on a value within rounding of 0.
    assert np.mean(got != expected) <= 0.02


def test_random_networks_kernel_refuses_bad_shapes():
    x = np.zeros((5, 1), np.float32)
    first = np.zeros((2, 1, 3), np.float32)
    with pytest.raises(ValueError, match="weights"):
        rs._core.random_networks(x, first, np.zeros((2, 1, 3, 4), np.float32),
                                 np.zeros((2, 2, 3), np.float32), 0)
    with pytest.raises(ValueError, match="reference_point"):
        rs._core.random_networks(x, first, np.zeros((2, 1, 3, 3), np.float32),
                                 np.zeros((2, 2, 3), np.float32), 5)


def test_pointwise_monte_carlo_matches_the_closed_form():
    n = 8000
    result = born_dead.born_dead_study(abs_fit_networks=0,
                                       widths=(2, 3, 5), max_depth=10, n_networks=n, seed=0)
    depths = [0, 4, 9]  # H = 1, 5, 10
    for column in result["columns"]:
        p = np.asarray(column["pointwise_death"])
        closed = np.asarray(column["pointwise_closed_form"])
        se = np.sqrt(closed * (1 - closed) / n)
        assert np.all(np.abs(p - closed)[depths] <= 3 * se[depths]), column["width"]
        # Death on the whole grid needs death at the point: never more likely.
        assert np.all(np.asarray(column["mask_death"]) <= p + 1e-12)
        assert np.all(np.asarray(column["signal_collapse"]) >= column["mask_death"])


def test_depth_10_column_matches_a_slow_numpy_simulation():
    n, depth = 150, 10
    result = born_dead.born_dead_study(abs_fit_networks=0,
                                       widths=(3,), max_depth=depth, n_networks=n, seed=4)
    rng = np.random.default_rng([4, 3])  # the study seeds each width from (seed, width)
    params = born_dead.draw_networks(3, depth, n, 1, rng)
    grid = born_dead.default_grid()
    dead_at = numpy_first_layers(grid, *params, len(grid) - 1)[0]
    expected = np.mean(dead_at <= depth)
    assert result["columns"][0]["mask_death"][depth - 1] == pytest.approx(expected, abs=2 / n)
    assert expected > 0.3  # width 3 at depth 10 dies often: the check is not vacuous


def test_rai_makes_deep_narrow_networks_less_often_born_dead():
    he = born_dead.born_dead_study(abs_fit_networks=0,
                                   widths=(3,), max_depth=10, n_networks=800, seed=0)
    rai = born_dead.born_dead_study(abs_fit_networks=0,
                                    widths=(3,), max_depth=10, n_networks=800, init="rai",
                                    seed=0)
    assert rai["columns"][0]["mask_death"][-1] < he["columns"][0]["mask_death"][-1] - 0.2


def test_underflow_is_signal_collapse_not_mask_death():
    # std 0.01 at width 10 shrinks the signal about 40x per layer: by layer 30 every
    # pre-activation underflows fp32 to exactly 0, no mask is dead by sign.
    result = born_dead.born_dead_study(abs_fit_networks=0,
                                       widths=(10,), max_depth=40, n_networks=50,
                                       init="normal", seed=0)
    column = result["columns"][0]
    assert column["mask_death"][-1] < 0.2
    assert column["signal_collapse"][-1] == 1.0
    assert column["collapse_only"][-1] >= 0.8


def test_born_dead_networks_trained_on_abs_stay_constant():
    trials = [born_dead.abs_fit_trial(width=2, depth=10, seed=seed, steps=100)
              for seed in range(12)]
    assert any(t["born_dead"] for t in trials)
    for trial in trials:
        if trial["born_dead"]:
            # A dead mask passes no gradient below it: only the output bias learns.
            assert trial["constant_fp32"] and trial["collapsed"]
    summary = born_dead.abs_fit_collapse(n_networks=4, steps=50, n_jobs=1)
    assert summary["n_networks"] == 4 and 0.0 <= summary["collapsed"] <= 1.0


def test_born_dead_accepts_user_data_and_refuses_bad_input():
    x = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    result = born_dead.born_dead_study(abs_fit_networks=0,
                                       widths=(4,), max_depth=5, n_networks=50, x=x)
    assert result["parameters"]["data"].startswith("user data, 40 points x 4")
    with pytest.raises(ValueError, match="NaN"):
        born_dead.born_dead_study(abs_fit_networks=0, widths=(2,), max_depth=2, n_networks=2,
                                  x=np.array([[np.nan], [1.0]]))
    with pytest.raises(ValueError, match="widths"):
        born_dead.born_dead_study(abs_fit_networks=0, widths=(0,), max_depth=2, n_networks=2)


# ---- init study ----------------------------------------------------------------------------

def test_init_study_statistics_match_numpy():
    result, _ = initialization.init_study(dataset="digits", n_samples=120, seed=3)
    x = datasets.load_digits(seed=3)[0]
    rng = np.random.default_rng(3)
    x = x[np.sort(rng.choice(x.shape[0], 120, replace=False))].astype(np.float64)
    for index, (label, init, params) in enumerate(initialization.DEFAULT_INITS):
        layers = initialization.stack(x.shape[1], init, params, np.random.default_rng([3, index]))
        h = x
        row = result["inits"][index]
        assert row["label"] == label
        for i, layer in enumerate(layers):
            h = h @ layer.weight.astype(np.float64) + layer.bias
            if i > 0:
                h = np.maximum(h, 0.0)
            stats = row["layers"][i]
            assert stats["mean"] == pytest.approx(h.mean(), rel=1e-4, abs=1e-6)
            assert stats["std"] == pytest.approx(h.std(), rel=1e-4)
            assert stats["zero_fraction"] == pytest.approx(np.mean(h == 0), abs=1e-3)
            if i > 0:
                assert stats["dead_units"] == np.count_nonzero(~(h > 0).any(axis=0))


def test_init_study_shows_shrinking_holding_and_exploding():
    result, _ = initialization.init_study(dataset="digits", n_samples=300, seed=0)
    verdicts = {row["label"]: line for row, line in zip(result["inits"], result["findings"])}
    assert "shrinks" in verdicts["N(0, 0.10)"]
    assert "holds" in verdicts["N(0, 0.14)"]
    assert "explodes" in verdicts["N(0, 0.28)"]


def test_init_findings_call_an_overflowed_std_exploding():
    def row(stds):
        return {"label": "wide", "layers": [{"std": 1.0, "dead_units": None}]
                + [{"std": std, "dead_units": 0} for std in stds]}

    assert "explodes past float32" in initialization.findings([row([1.0, 1e30, np.inf])])[0]
    assert "std shrinks" in initialization.findings([row([1.0, 0.1, 0.01])])[0]


# ---- Fashion-MNIST reader -----------------------------------------------------------------

def _write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(str(path) + (".gz" if compress else ""), "wb") as stream:
        stream.write(data)


@pytest.mark.parametrize("compress", [False, True])
def test_load_fashion_mnist_reads_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28))
    labels = rng.integers(0, 10, 7)
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images, compress)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels, compress)
    assert datasets.fashion_mnist_available(tmp_path)
    x, y, x_test, y_test = datasets.load_fashion_mnist(tmp_path)
    assert x.shape == (7, 784) and x.dtype == np.float32
    np.testing.assert_allclose(x, images.reshape(7, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(y_test, labels)
    assert x_test.shape == (7, 784)


def test_load_fashion_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist(tmp_path)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((2, 3)), False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header says"):
        datasets.read_idx(tmp_path / "short")


# ---- training trials, lr sweep, remedies ---------------------------------------------------

def _without_timestamp(result):
    return {k: v for k, v in result.items() if k != "created"}


def test_lr_sweep_marks_diverged_runs_and_is_deterministic():
    kwargs = {"lrs": [0.05, 1e30], "seeds": [0], "dataset": "digits", "hidden": (16, 16),
              "epochs": 2, "n_jobs": 1}
    first = learning_rate.lr_sweep(**kwargs)
    second = learning_rate.lr_sweep(**kwargs)
    assert json.dumps(_without_timestamp(first), default=str) == \
        json.dumps(_without_timestamp(second), default=str)
    assert len(first["trials"]) == 2
    calm, wild = first["trials"]
    assert calm["diverged"] is None and wild["diverged"] is not None
    assert len(wild["dead_fraction_final"]) == 2  # statistics of its last finite state
    assert first["by_lr"][1]["diverged"] == 1
    assert any("diverged" in line for line in first["findings"])
    assert first["schema_version"] == 1 and first["parameters"]["seeds"] == [0]


def test_leaky_units_still_get_gradient_and_relu_units_do_not():
    common = {"lr": 0.5, "seed": 0, "dataset": "digits", "hidden": (32, 32), "epochs": 2}
    relu = train_trial(**common)
    leaky = train_trial(activation="leaky_relu", **common)
    assert relu["silent_units_last_epoch"] > 0 and relu["silent_units_get_gradient"] is False
    assert leaky["silent_units_last_epoch"] > 0 and leaky["silent_units_get_gradient"] is True


def test_compare_remedies_runs_each_remedy():
    result = remedies.compare_remedies(lr=0.5, seeds=[0], dataset="digits", hidden=(16, 16),
                                       epochs=2, n_jobs=1)
    names = [row["remedy"] for row in result["remedies"]]
    assert names == list(remedies.DEFAULT_REMEDIES)
    redo = next(row for row in result["remedies"] if row["remedy"].startswith("ReDo"))
    assert redo["redo_recycled"] is not None
    assert "remedy" in remedies.table(result)


# ---- sweeps -----------------------------------------------------------------------------------

def square_plus(a, b=0):
    """A trial for the sweep tests (module level: the workers import it)."""
    return {"value": a * a + b, "threads": rs.get_num_threads()}


def test_expand_grid():
    assert expand_grid({"a": [1, 2], "b": [0, 5]}) == [
        {"a": 1, "b": 0}, {"a": 1, "b": 5}, {"a": 2, "b": 0}, {"a": 2, "b": 5}]
    assert expand_grid([{"a": 3}]) == [{"a": 3}]
    with pytest.raises(TypeError, match="list of values"):
        expand_grid({"a": 3})


def test_sweep_in_processes_matches_the_sequential_run():
    grid = {"a": [1, 2, 3], "b": [10, 20]}
    local = sweep(square_plus, grid, n_jobs=2)
    assert [r["value"] for r in local] == [r["value"] for r in sweep(square_plus, grid, n_jobs=1)]


def test_sweep_refuses_forking_backends():
    from joblib import parallel_config

    with parallel_config(backend="multiprocessing"), pytest.raises(RuntimeError, match="fork"):
        sweep(square_plus, {"a": [1, 2]}, n_jobs=2)


def test_sweep_on_a_dask_local_cluster_matches_local():
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    grid = [{"lr": lr, "seed": 0, "dataset": "digits", "hidden": (8,), "epochs": 1}
            for lr in (0.01, 0.1)]
    local = sweep(train_trial, grid, n_jobs=2)
    with local_dask_cluster(distributed) as cluster, distributed.Client(cluster), \
            parallel_config(backend="dask"):
        remote = sweep(train_trial, grid)
    for a, b in zip(local, remote):
        a, b = dict(a), dict(b)
        assert a.pop("threads") >= 1 and b.pop("threads") >= 1
        assert a == b


def test_sweep_on_a_ray_local_cluster_matches_local():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]')")
    from joblib import parallel_config
    from ray.util.joblib import register_ray

    grid = [{"lr": lr, "seed": 0, "dataset": "digits", "hidden": (8,), "epochs": 1}
            for lr in (0.01, 0.1)]
    local = sweep(train_trial, grid, n_jobs=2)
    ray.init(address="local", include_dashboard=False, num_cpus=2,
             _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        register_ray()
        with parallel_config(backend="ray"):
            remote = sweep(train_trial, grid)
    finally:
        ray.shutdown()
    for a, b in zip(local, remote):
        a, b = dict(a), dict(b)
        assert a.pop("threads") >= 1 and b.pop("threads") >= 1
        assert a == b


def test_lr_sweep_trend_leaves_out_learning_rates_where_every_run_diverged(tmp_path):
    # At lr 1e30 and 1e31 every run diverges on its first step: their last finite
    # state is the init, fewer dead than at lr 1, which read as a "fall" before.
    result = learning_rate.lr_sweep(lrs=[0.05, 1.0, 1e30, 1e31], seeds=[0], dataset="digits",
                                    hidden=(16, 16), epochs=2, n_jobs=1)
    assert [row["diverged"] for row in result["by_lr"]] == [0, 0, 1, 1]
    assert result["by_lr"][2]["dead_total_mean"] < result["by_lr"][1]["dead_total_mean"]
    text = "\n".join(result["findings"])
    assert "not monotonic" not in text
    assert "Every run diverged at lr 1e+30, 1e+31" in text
    trend = [line for line in result["findings"] if line.startswith("lr ")]
    assert trend and not any("1e+30" in line for line in trend)
    pytest.importorskip("matplotlib")
    learning_rate.figure(result).savefig(tmp_path / "sweep.png")


def test_a_small_max_train_keeps_an_output_for_every_class():
    trial = train_trial(0.1, 0, dataset="digits", hidden=(4,), epochs=1, max_train=20)
    assert trial["layer_sizes"] == [64, 4, 10]
    assert np.isfinite(trial["test_loss"])
    assert train_trial(0.1, 0, dataset="digits", hidden=(4,), epochs=1,
                       max_train=1)["layer_sizes"] == [64, 4, 10]
    with pytest.raises(ValueError, match="max_train must be >= 1"):
        train_trial(0.1, 0, dataset="digits", hidden=(4,), epochs=1, max_train=0)


def test_a_run_whose_scan_overflows_between_steps_is_marked_diverged():
    # Every step is finite, but the weights after the second epoch overflow float32
    # on the data at the monitor's scan.
    trial = train_trial(1e8, 0, dataset="digits", hidden=(32, 32), epochs=3, batch_size=4000,
                        max_train=None)
    assert trial["diverged"] is not None
    assert "the scan after epoch" in trial["diverged"]["message"]
    assert trial["epochs_run"] == trial["diverged"]["epoch"]


def test_init_study_table_names_its_own_stack_and_refuses_no_inits():
    result, _ = initialization.init_study(inits=[("he", "he_normal", {})], dataset="digits",
                                          n_samples=5, width=3, relu_layers=1)
    assert "linear 3 then 1 ReLU layer of 3" in initialization.table(result).splitlines()[0]
    with pytest.raises(ValueError, match="inits must name at least one initializer"):
        initialization.init_study(inits=[], dataset="digits", n_samples=5)


def test_compare_remedies_refuses_no_remedies():
    with pytest.raises(ValueError, match="remedies must name at least one remedy"):
        remedies.compare_remedies(seeds=[0], remedies={}, dataset="digits", hidden=[2],
                                  epochs=1, n_jobs=1)
