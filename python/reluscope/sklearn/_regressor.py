"""MLPRegressor: mean squared error, one output per target column."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import validate_data

from ._estimator import FITTED_ATTRIBUTES_DOC, PARAMETERS_DOC, MLPEstimatorBase


class MLPRegressor(RegressorMixin, MLPEstimatorBase):
    __doc__ = f"""A multilayer perceptron regressor trained by reluscope's C++ core.

    The hidden layers are watched while they train: after ``fit``,
    ``dead_units_`` lists the units dead on the training data and ``monitor_``
    tells when and why they died.

    ``y`` is (n_samples,) or (n_samples, n_targets); ``predict`` returns the
    same shape, except that a single target column comes back 1-D, as in
    scikit-learn. The loss is the mean over samples *and* targets of the squared
    error; scikit-learn's gradient is that of half the squared error summed over
    targets, so at the same learning rate plain SGD steps here are 2 / n_targets
    times scikit-learn's (Adam's steps do not depend on that scale).
{PARAMETERS_DOC}
    Attributes
    ----------
    n_outputs_ : int
        Number of target columns.
{FITTED_ATTRIBUTES_DOC}"""

    _loss_name = "mse"

    def fit(self, X, y):
        """Train a new network for ``max_iter`` epochs on (X, y); return self."""
        with self._input_attributes_kept_on_failure():
            x, targets = self._validated(X, y, reset=True)
            self._train(x, targets, targets.shape[1], incremental=False)
        self.n_outputs_ = targets.shape[1]
        return self

    def partial_fit(self, X, y):
        """One epoch on (X, y), continuing the current network; return self.

        As in scikit-learn, the network and optimizer are built from the
        parameters at the first call (or at ``fit``); later changes to them apply
        at the next ``fit``, except ``batch_size``, read at each call.
        """
        first_call = not hasattr(self, "model_")
        with self._input_attributes_kept_on_failure():
            x, targets = self._validated(X, y, reset=first_call)
            if not first_call and targets.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {targets.shape[1]} target columns but the model was "
                                 f"trained on {self.n_outputs_}")
            self._train(x, targets, targets.shape[1], incremental=True)
        self.n_outputs_ = targets.shape[1]
        return self

    def predict(self, X):
        """Predicted targets, (n_samples,) for one target column, else (n_samples, n_targets)."""
        outputs = self._outputs(X).astype(np.float64)
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _validated(self, X, y, reset: bool):
        """x float32 and the targets as float32 columns (n_samples, n_targets)."""
        x, y = validate_data(self, X, y, dtype=np.float32, multi_output=True, y_numeric=True,
                             reset=reset)
        with np.errstate(over="ignore"):  # an overflow becomes Inf, refused by the trainer
            targets = np.asarray(y, dtype=np.float32).reshape(y.shape[0], -1)
        return x, targets
