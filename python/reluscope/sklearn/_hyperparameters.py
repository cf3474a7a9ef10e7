"""The estimators' constructor parameters, checked at fit and turned into reluscope objects.

scikit-learn's convention: ``__init__`` stores the parameters untouched and
``fit`` checks them, so that ``set_params`` and ``clone`` never fail on a value
that only fitting would refuse.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import finite_float, positive_int
from ..optim import SGD, Adam, Optimizer

# The hidden activations whose units reluscope can call dead (identity included,
# as scikit-learn has it). scikit-learn's "tanh" and "logistic" have no such units.
ACTIVATIONS = ("relu", "leaky_relu", "identity")
SOLVERS = ("sgd", "adam")
# scikit-learn's batch_size="auto".
AUTO_BATCH_ROWS = 200


def hidden_layer_widths(hidden_layer_sizes) -> list[int]:
    """The hidden widths as a list: an int is one hidden layer; () is none."""
    if isinstance(hidden_layer_sizes, numbers.Integral) and not isinstance(
            hidden_layer_sizes, bool):
        hidden_layer_sizes = [hidden_layer_sizes]
    try:
        widths = list(hidden_layer_sizes)
    except TypeError:
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, "
                        f"got {hidden_layer_sizes!r}") from None
    return [positive_int(width, f"hidden_layer_sizes[{i}]") for i, width in enumerate(widths)]


def activation_name(activation) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got "
                         f"{activation!r} (reluscope watches ReLU-family units)")
    return activation


def batch_rows(batch_size, n_samples: int) -> int:
    """Rows per step: "auto" is min(200, n_samples); a larger batch is the whole data."""
    if isinstance(batch_size, str) and batch_size == "auto":
        return min(AUTO_BATCH_ROWS, n_samples)
    return min(positive_int(batch_size, "batch_size"), n_samples)


def make_optimizer(params: dict) -> Optimizer:
    """The SGD or Adam that ``params`` (the estimator's ``get_params()``) describe."""
    solver = params["solver"]
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    lr = finite_float(params["learning_rate_init"], "learning_rate_init", low=0.0,
                      low_open=True)
    weight_decay = finite_float(params["alpha"], "alpha", low=0.0)
    if solver == "sgd":
        if not isinstance(params["nesterovs_momentum"], (bool, np.bool_)):
            raise TypeError(f"nesterovs_momentum must be a bool, "
                            f"got {params['nesterovs_momentum']!r}")
        momentum = finite_float(params["momentum"], "momentum", low=0.0, high=1.0,
                                high_open=True)
        # SGD refuses Nesterov without momentum; with momentum 0 it is plain SGD anyway.
        return SGD(lr, momentum=momentum, weight_decay=weight_decay,
                   nesterov=bool(params["nesterovs_momentum"]) and momentum > 0.0)
    betas = (finite_float(params["beta_1"], "beta_1", low=0.0, high=1.0, high_open=True),
             finite_float(params["beta_2"], "beta_2", low=0.0, high=1.0, high_open=True))
    epsilon = finite_float(params["epsilon"], "epsilon", low=0.0, low_open=True)
    return Adam(lr, betas=betas, eps=epsilon, weight_decay=weight_decay)
