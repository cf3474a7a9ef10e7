"""A fitted scikit-learn MLPClassifier or MLPRegressor to reluscope's MLP.

scikit-learn stores the weights as reluscope does, ``coefs_[i]`` (fan_in,
fan_out) and ``intercepts_[i]`` (fan_out,), so the hidden layers carry over as
they are; only a binary classifier's output layer changes (see
``binary_output_as_two_logits``). scikit-learn is imported inside the
function, so that ``import reluscope`` never loads it.
"""

from __future__ import annotations

import numpy as np

from .model import MLP

SKLEARN_EXTRA_HINT = "MLP.from_sklearn needs scikit-learn: pip install 'reluscope[sklearn]'"

# scikit-learn's hidden activations that reluscope computes too, by their
# scikit-learn names (which are also reluscope's).
SUPPORTED_ACTIVATIONS = ("relu", "identity")

HIDDEN_LAYERS_ONLY = ("its hidden layers can still be scanned through "
                      "MLP.from_weights(list(zip(estimator.coefs_, estimator.intercepts_)))")


def mlp_from_sklearn(estimator) -> MLP:
    """See ``MLP.from_sklearn``."""
    try:
        from sklearn.exceptions import NotFittedError
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        raise ImportError(SKLEARN_EXTRA_HINT) from None
    kind = type(estimator).__name__
    if type(estimator).__module__.startswith("reluscope."):
        # reluscope.sklearn's own estimators hold their trained MLP in model_.
        trained = getattr(estimator, "model_", None)
        if trained is None:
            raise NotFittedError(f"this {kind} is not fitted yet: fit it, then its trained "
                                 f"reluscope MLP is estimator.model_")
        return MLP.from_layers(trained.layers)  # a copy, as for scikit-learn's own
    if not isinstance(estimator, (MLPClassifier, MLPRegressor)):
        raise TypeError(f"MLP.from_sklearn takes a fitted scikit-learn MLPClassifier or "
                        f"MLPRegressor, got {kind}. Other models convert with "
                        f"MLP.from_weights([(weight, bias), ...])")
    if not hasattr(estimator, "coefs_"):
        raise NotFittedError(f"this {kind} is not fitted yet: call fit before MLP.from_sklearn")
    if estimator.activation not in SUPPORTED_ACTIVATIONS:
        raise ValueError(f"this {kind} has activation={estimator.activation!r}; "
                         f"MLP.from_sklearn takes {' or '.join(SUPPORTED_ACTIVATIONS)} "
                         f"(reluscope's MLP computes relu, leaky_relu or identity hidden layers)")
    weights = list(zip(estimator.coefs_, estimator.intercepts_))
    output = estimator.out_activation_
    if output == "logistic":
        if estimator.n_outputs_ > 1:
            raise ValueError(f"this {kind} is multi-label ({estimator.n_outputs_} independent "
                             f"logistic outputs), which no softmax model predicts; "
                             f"{HIDDEN_LAYERS_ONLY}")
        weights[-1] = binary_output_as_two_logits(*weights[-1])
    elif output not in ("softmax", "identity"):
        # e.g. "exp", the output of MLPRegressor(loss="poisson")
        raise ValueError(f"this {kind} has out_activation_={output!r}, where reluscope's "
                         f"output layer is linear; {HIDDEN_LAYERS_ONLY}")
    return MLP.from_weights(weights, estimator.activation)


def binary_output_as_two_logits(weight, bias) -> tuple[np.ndarray, np.ndarray]:
    """Return the one-unit logistic output layer as a two-unit softmax layer (0, z).

    softmax(0, z) = (1 / (1 + e^z), e^z / (1 + e^z)) = (1 - logistic(z),
    logistic(z)): scikit-learn's ``predict_proba`` of a binary classifier.
    Its ``predict`` picks the second class when logistic(z) > 0.5, that is
    z > 0, where argmax of (0, z) picks the second unit too (a tie at z == 0
    goes to the first class in both).
    """
    weight = np.asarray(weight)
    bias = np.asarray(bias)
    return (np.concatenate([np.zeros_like(weight), weight], axis=1),
            np.concatenate([np.zeros_like(bias), bias]))
