"""reluscope.sklearn: scikit-learn's checks and tools on the estimators, and their dead units."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_blobs, make_regression  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neural_network import MLPClassifier as ScikitMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import reluscope as rs  # noqa: E402
from reluscope.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def blobs(n_samples=120, n_features=4, centers=3, random_state=0):
    """Standardized, well separated classes: any sane fit gets them right."""
    x, y = make_blobs(n_samples, n_features=n_features, centers=centers,
                      random_state=random_state)
    return StandardScaler().fit_transform(x), y


# Enough steps to learn blobs in a few epochs: batch_size="auto" would be one
# step per epoch on so few rows.
QUICK = dict(batch_size=20, learning_rate_init=0.01)


# max_iter=100 as in scikit-learn's own run of these checks on its MLPs: enough
# for check_classifiers_train and check_regressors_train to pass their score
# thresholds, and it keeps the run short. No check is expected to fail.
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_reluscope_never_imports_sklearn_and_the_bridge_names_its_requirement():
    script = """if True:
        import sys
        import reluscope
        assert "sklearn" not in sys.modules, "import reluscope imported sklearn"
        sys.modules["sklearn"] = None  # as if scikit-learn were not installed
        try:
            import reluscope.sklearn
        except ImportError as error:
            print(error)
        """
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "reluscope.sklearn needs scikit-learn >= 1.6" in result.stdout


def test_in_a_pipeline_after_a_scaler():
    x, y = blobs()
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,),
                                                             max_iter=30, random_state=0))
    pipeline.fit(x * 100.0 + 7.0, y)  # the scaler undoes this
    assert pipeline.score(x * 100.0 + 7.0, y) > 0.95
    assert len(pipeline[-1].dead_units_) == 1


def test_grid_search_over_two_parameters():
    x, y = blobs()
    grid = {"hidden_layer_sizes": [(4,), (16, 16)], "learning_rate_init": [1e-3, 1e-2]}
    search = GridSearchCV(MLPClassifier(max_iter=20, random_state=0), grid, cv=2).fit(x, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["hidden_layer_sizes"] in grid["hidden_layer_sizes"]
    best = search.best_estimator_
    assert len(best.dead_units_) == len(best.hidden_layer_sizes)
    assert search.score(x, y) > 0.9


def test_clone_copies_the_parameters_and_nothing_fitted():
    x, y = blobs()
    fitted = MLPClassifier(hidden_layer_sizes=(8, 4), solver="sgd", alpha=0.0,
                           max_iter=5, random_state=3).fit(x, y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "model_") and not hasattr(copy, "dead_units_")
    copy.fit(x, y)  # the same random_state: the same fit, bit for bit
    for ours, theirs in zip(copy.model_.get_weights(), fitted.model_.get_weights()):
        assert_array_equal(ours[0], theirs[0])
        assert_array_equal(ours[1], theirs[1])


def test_random_state_decides_the_fit():
    x, y = blobs()
    first, second, other = (MLPRegressor(max_iter=3, random_state=seed).fit(x, y)
                            for seed in (1, 1, 2))
    assert_array_equal(first.predict(x), second.predict(x))
    assert first.loss_curve_ == second.loss_curve_
    assert not np.array_equal(first.predict(x), other.predict(x))


@pytest.mark.parametrize("names", [["cat", "dog", "emu"], ["no", "yes"]])
def test_string_labels_through_classes_(names):
    x, y = blobs(centers=len(names))
    labels = np.array(names)[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0,
                        **QUICK).fit(x, labels)
    assert_array_equal(clf.classes_, sorted(names))
    predicted = clf.predict(x)
    assert predicted.dtype == labels.dtype
    assert np.mean(predicted == labels) > 0.95
    probabilities = clf.predict_proba(x)
    assert probabilities.shape == (len(x), len(names))  # binary too: one column per class
    assert_allclose(probabilities.sum(axis=1), 1.0)
    assert_array_equal(clf.classes_[probabilities.argmax(axis=1)], predicted)


def test_partial_fit_classifier_one_epoch_per_call():
    x, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be given on the first call"):
        clf.partial_fit(x, y)
    assert not hasattr(clf, "model_")
    first_rows = y != 2  # a first batch without class 2: classes= announces it
    clf.partial_fit(x[first_rows], y[first_rows], classes=[0, 1, 2])
    assert clf.model_.n_outputs == 3 and clf.n_iter_ == 1
    for _ in range(9):
        clf.partial_fit(x, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]
    assert clf.score(x, y) > 0.9
    assert len(clf.monitor_.epochs) == 11  # the scan at the start, then one per call
    with pytest.raises(ValueError, match="previously unseen labels"):
        clf.partial_fit(x[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        clf.partial_fit(x, y, classes=[0, 1])
    assert clf.n_iter_ == 10  # the refused calls trained nothing


def test_partial_fit_continues_a_fit_and_fit_starts_anew():
    x, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0).fit(x, y)
    clf.partial_fit(x, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    clf.fit(x, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4


def test_regressor_targets_one_or_several_columns():
    x, y = make_regression(80, n_features=5, n_targets=2, random_state=0)
    y = StandardScaler().fit_transform(y)
    two = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=100,
                       random_state=0).fit(x, y)
    assert two.n_outputs_ == 2 and two.predict(x).shape == (80, 2)
    assert two.predict(x).dtype == np.float64
    assert two.score(x, y) > 0.9
    one = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(x, y[:, 0])
    assert one.n_outputs_ == 1 and one.predict(x).shape == (80,)
    one.partial_fit(x, y[:, :1])  # a single column is the same single target
    with pytest.raises(ValueError, match="y has 2 target columns but the model was trained on 1"):
        one.partial_fit(x, y)


def test_alpha_is_scikit_learns_alpha_over_the_batch_size():
    # One full-batch SGD step from the same weights in both: scikit-learn's
    # alpha=a and reluscope's alpha=a/B (B rows in the batch) move the weights
    # alike. The biases differ by reluscope's decay of them, which scikit-learn
    # does not apply.
    x, y = blobs(n_samples=60)
    x = x.astype(np.float32)
    n, lr, a = len(x), 0.1, 0.5
    ours = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0,
                         learning_rate_init=lr, alpha=a / n, batch_size=n, max_iter=3,
                         random_state=0).fit(x, y)
    theirs = ScikitMLPClassifier(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0,
                                 learning_rate_init=lr, alpha=a, batch_size=n, shuffle=False)
    theirs.partial_fit(x, y, classes=[0, 1, 2])  # builds its layers; then take ours
    before = ours.model_.get_weights()
    theirs.coefs_ = [weight.copy() for weight, _ in before]
    theirs.intercepts_ = [bias.copy() for _, bias in before]
    ours.partial_fit(x, y)
    theirs.partial_fit(x, y)
    for (weight, bias), (_, bias_before), their_weight, their_bias in zip(
            ours.model_.get_weights(), before, theirs.coefs_, theirs.intercepts_):
        assert_allclose(weight, their_weight, rtol=1e-5, atol=1e-6)
        assert_allclose(bias, their_bias - lr * (a / n) * bias_before, rtol=1e-5, atol=1e-6)


def test_a_bad_bias_init_is_dead_from_the_start():
    x, y = blobs()
    # Pre-activations of standardized inputs under He init stay far above -10.
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), bias_init=-10.0, max_iter=5,
                        random_state=0, **QUICK).fit(x, y)
    assert [units.tolist() for units in clf.dead_units_] == [list(range(16)), list(range(8))]
    assert clf.monitor_.died_in(0) == {0: list(range(16)), 1: list(range(8))}
    assert {c.cause for c in clf.monitor_.certificates} == {"born dead"}
    healthy = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0,
                            **QUICK).fit(x, y)
    assert sum(len(units) for units in healthy.dead_units_) <= 2
    assert healthy.score(x, y) > clf.score(x, y)


def test_a_bad_learning_rate_kills_units_and_the_monitor_names_the_steps(simd_target):
    # On every SIMD target: the counts below must not hang on one target's rounding.
    x, y = blobs(n_samples=200)
    settings = dict(hidden_layer_sizes=(32, 32), solver="sgd", batch_size=32, max_iter=20,
                    random_state=0)
    bad = MLPClassifier(learning_rate_init=1.0, **settings).fit(x, y)
    healthy = MLPClassifier(learning_rate_init=0.01, **settings).fit(x, y)
    n_dead = [sum(len(units) for units in clf.dead_units_) for clf in (bad, healthy)]
    assert n_dead[0] >= 24 and n_dead[1] <= 4, n_dead
    # Killed by the steps: their own (large update) or the first layer's (upstream shift).
    killed = [c for c in bad.monitor_.certificates if c.cause in ("large update", "upstream shift")
              and "layer-wide large step" in c.conditions]
    assert len(killed) >= 20
    assert all(c.cause == "large update" for c in killed if c.layer == 0)
    assert all(c.last_fired_step >= 1 and c.lr == 1.0 for c in killed)
    # dead_units_ is the exact scan of the training data.
    report = rs.scan(bad.model_, x)
    for units, layer in zip(bad.dead_units_, report.layers):
        assert_array_equal(units, layer.dead_units)


def test_the_monitor_scans_a_subsample_or_nothing():
    x, y = blobs(n_samples=150)
    sampled = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, monitor_max_samples=40,
                            random_state=0).fit(x, y)
    assert sampled.monitor_.x.shape == (40, 4)
    rows = [np.flatnonzero((x.astype(np.float32) == row).all(axis=1)) for row in
            sampled.monitor_.x]
    assert all(len(r) == 1 for r in rows) and len({int(r[0]) for r in rows}) == 40
    unwatched = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, monitor=False,
                              random_state=0).fit(x, y)
    assert unwatched.monitor_ is None
    assert len(unwatched.dead_units_) == 1
    # The monitor only watches: the fit is the same.
    assert_array_equal(unwatched.predict_proba(x), sampled.predict_proba(x))


def test_a_fitted_estimator_pickles_with_its_monitor():
    x, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(x, y)
    copy = pickle.loads(pickle.dumps(clf))
    assert_array_equal(copy.predict_proba(x), clf.predict_proba(x))
    assert copy.monitor_.summary() == clf.monitor_.summary()
    copy.partial_fit(x, y)  # training goes on from the copy
    assert copy.n_iter_ == 4


@pytest.mark.parametrize("params, message", [
    ({"activation": "tanh"}, "activation must be one of relu, leaky_relu, identity"),
    ({"solver": "lbfgs"}, "solver must be one of sgd, adam"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"hidden_layer_sizes": (8, 0)}, r"hidden_layer_sizes\[1\] must be >= 1"),
    ({"alpha": -1.0}, "alpha"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
])
def test_parameters_are_checked_at_fit_not_before(params, message):
    x, y = blobs(n_samples=20)
    clf = MLPClassifier(max_iter=1).set_params(**params)  # accepted until fit
    with pytest.raises(ValueError, match=message):
        clf.fit(x, y)
    with pytest.raises(NotFittedError):
        clf.predict(x)
    assert not hasattr(clf, "n_features_in_")  # a failed fit sets no fitted attribute


@pytest.mark.parametrize("refit", ["fit", "partial_fit"])
@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_a_failed_refit_leaves_the_estimator_as_it_was(estimator, refit):
    # validate_data takes n_features_in_ from the new X before training; the
    # training then fails (the rows overflow float32 in the forward pass).
    x, y = blobs(n_samples=40, n_features=4)
    make = MLPClassifier if estimator == "classifier" else MLPRegressor
    targets = y if estimator == "classifier" else y.astype(float)
    fitted = make(hidden_layer_sizes=(8,), max_iter=2, random_state=0, **QUICK).fit(x, targets)
    before = fitted.predict(x)
    huge = np.full((40, 4 if refit == "partial_fit" else 7), 1e38)
    with pytest.raises((ValueError, rs.TrainingDiverged)):
        getattr(fitted, refit)(huge, targets)
    assert fitted.n_features_in_ == fitted.model_.n_features == 4
    if refit == "fit":
        assert_array_equal(fitted.predict(x), before)


def test_leaky_relu_and_identity_train():
    x, y = blobs()
    for activation in ("leaky_relu", "identity"):
        clf = MLPClassifier(hidden_layer_sizes=(8,), activation=activation, max_iter=10,
                            random_state=0, **QUICK).fit(x, y)
        assert clf.model_.activation.name == activation
        assert clf.score(x, y) > 0.9
