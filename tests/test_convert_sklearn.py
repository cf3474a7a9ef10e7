"""A fitted scikit-learn MLPClassifier or MLPRegressor as a reluscope MLP: the same
probabilities, predictions and regression outputs, and clear refusals."""

import warnings

import numpy as np
import pytest

import reluscope as rs

# A guard for users without the sklearn extra; the test extra installs scikit-learn.
pytest.importorskip("sklearn", reason="the sklearn extra (installed by the test extra)")
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402


def fitted(estimator, x, y):
    with warnings.catch_warnings():
        # A few iterations are enough to get weights to compare; convergence is beside the point.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(x, y)


def blobs(n_classes, n=300, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centers = rng.standard_normal((n_classes, n_features)) * 3
    return centers[labels] + rng.standard_normal((n, n_features)), labels


def assert_classifier_agrees(estimator, x):
    model = rs.MLP.from_sklearn(estimator)
    expected = estimator.predict_proba(x)
    probabilities = model.predict_proba(x)
    assert probabilities.shape == expected.shape
    # scikit-learn computes in float64, reluscope in float32.
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=2e-5)
    # Predictions agree wherever the two best classes are not a float32 rounding apart.
    top_two = np.sort(expected, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-4
    assert clear.mean() > 0.9
    predicted = estimator.classes_[model.predict(x)]
    np.testing.assert_array_equal(predicted[clear], estimator.predict(x)[clear])
    return model


@pytest.mark.parametrize("hidden", [(1,), (3,), (17, 3)])
def test_binary_classifier_becomes_two_logits_with_the_same_probabilities(hidden):
    x, labels = blobs(2)
    estimator = fitted(MLPClassifier(hidden_layer_sizes=hidden, max_iter=50, random_state=0),
                       x, np.array(["no", "yes"])[labels])
    assert estimator.n_outputs_ == 1  # scikit-learn's single logistic unit
    model = assert_classifier_agrees(estimator, x)
    assert model.layer_sizes == [5, *hidden, 2]
    # The hidden layers are the estimator's own; the output is (0, z).
    for layer, coef, intercept in zip(model.hidden_layers, estimator.coefs_,
                                      estimator.intercepts_):
        np.testing.assert_array_equal(layer.weight, coef.astype(np.float32))
        np.testing.assert_array_equal(layer.bias, intercept.astype(np.float32))
    np.testing.assert_array_equal(model.layers[-1].weight[:, 0], 0.0)
    np.testing.assert_array_equal(model.layers[-1].weight[:, 1:],
                                  estimator.coefs_[-1].astype(np.float32))


@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_multiclass_classifier_agrees(activation):
    x, labels = blobs(3, seed=1)
    estimator = fitted(MLPClassifier(hidden_layer_sizes=(17, 3), activation=activation,
                                     max_iter=80, random_state=1), x, labels + 10)
    model = assert_classifier_agrees(estimator, x)
    assert model.activation.name == activation
    assert model.layer_sizes == [5, 17, 3, 3]


@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_forward_is_predict(n_targets):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 4))
    y = x @ rng.standard_normal((4, n_targets)) + 0.1 * rng.standard_normal((200, n_targets))
    estimator = fitted(MLPRegressor(hidden_layer_sizes=(17, 1), max_iter=60, random_state=2), x,
                       y.ravel() if n_targets == 1 else y)
    model = rs.MLP.from_sklearn(estimator)
    assert model.n_outputs == n_targets
    expected = estimator.predict(x).reshape(len(x), n_targets)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())


def test_the_entry_points_take_a_fitted_estimator():
    x, labels = blobs(3, seed=3)
    estimator = fitted(MLPClassifier(hidden_layer_sizes=(9, 4), max_iter=30, random_state=3),
                       x, labels)
    model = rs.MLP.from_sklearn(estimator)
    assert rs.scan(estimator, x).to_dict() == rs.scan(model, x).to_dict()
    assert rs.born_dead(estimator, x).to_dict() == rs.born_dead(model, x).to_dict()
    assert rs.DeadUnitMonitor(x).observe(0, estimator).to_dict() == rs.scan(model, x).to_dict()


def test_a_multilabel_classifier_is_refused_with_the_from_weights_path():
    x, _ = blobs(2, seed=4)
    y = np.random.default_rng(4).integers(0, 2, (len(x), 3))
    estimator = fitted(MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, random_state=4),
                       x, y)
    with pytest.raises(ValueError, match=r"multi-label \(3 independent logistic outputs\).*"
                                         r"MLP.from_weights\(list\(zip\(estimator.coefs_"):
        rs.MLP.from_sklearn(estimator)
    hidden_only = rs.MLP.from_weights(list(zip(estimator.coefs_, estimator.intercepts_)))
    assert hidden_only.layer_sizes == [5, 5, 3]


def test_a_poisson_regressor_is_refused_with_the_from_weights_path():
    rng = np.random.default_rng(6)
    x = rng.random((50, 3))
    try:
        estimator = MLPRegressor(hidden_layer_sizes=(4,), loss="poisson", max_iter=10)
    except TypeError:
        pytest.skip("this scikit-learn has no Poisson loss (added in 1.7)")
    fitted(estimator, x, rng.random(50))
    with pytest.raises(ValueError, match=r"out_activation_='exp', where reluscope's output "
                                         r"layer is linear; .*MLP.from_weights"):
        rs.MLP.from_sklearn(estimator)


@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_other_activations_are_refused(activation):
    x, labels = blobs(2, seed=5)
    estimator = fitted(MLPClassifier(hidden_layer_sizes=(4,), activation=activation,
                                     max_iter=10), x, labels)
    with pytest.raises(ValueError, match=f"this MLPClassifier has activation='{activation}'; "
                                         f"MLP.from_sklearn takes relu or identity"):
        rs.MLP.from_sklearn(estimator)


def test_an_unfitted_estimator_is_refused():
    with pytest.raises(NotFittedError, match="this MLPRegressor is not fitted yet"):
        rs.MLP.from_sklearn(MLPRegressor())
    with pytest.raises(NotFittedError, match="this MLPClassifier is not fitted yet"):
        rs.scan(MLPClassifier(), np.ones((2, 3)))


def test_other_estimators_are_refused_by_name():
    with pytest.raises(TypeError, match="MLP.from_sklearn takes a fitted scikit-learn "
                                        "MLPClassifier or MLPRegressor, got LogisticRegression"):
        rs.scan(LogisticRegression(), np.ones((2, 3)))
