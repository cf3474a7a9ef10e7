"""MLPClassifier: softmax cross-entropy over the classes of ``classes_``."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ._estimator import FITTED_ATTRIBUTES_DOC, PARAMETERS_DOC, MLPEstimatorBase


class MLPClassifier(ClassifierMixin, MLPEstimatorBase):
    __doc__ = f"""A multilayer perceptron classifier trained by reluscope's C++ core.

    The hidden layers are watched while they train: after ``fit``,
    ``dead_units_`` lists the units dead on the training data and ``monitor_``
    tells when and why they died.

    The labels may be any values ``np.unique`` can sort (strings included):
    ``classes_`` holds them and the network's output j stands for
    ``classes_[j]``. The loss is softmax cross-entropy over one output per
    class, binary problems included: two outputs, whose softmax is the logistic
    function of their difference (scikit-learn uses one logistic output).
    Multilabel targets are not supported.
{PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray (n_classes,)
{FITTED_ATTRIBUTES_DOC}
    """

    _loss_name = "cross_entropy"

    def fit(self, X, y):
        """Train a new network for ``max_iter`` epochs on (X, y); return self."""
        with self._input_attributes_kept_on_failure():
            x, y = validate_data(self, X, y, dtype=np.float32)
            check_classification_targets(y)
            encoder = LabelEncoder().fit(y)
            self._train(x, encoder.transform(y), len(encoder.classes_), incremental=False)
        self._label_encoder = encoder
        self.classes_ = encoder.classes_
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), continuing the current network; return self.

        ``classes`` (every label the model will ever see) is required on the
        first call, as in scikit-learn, and optional later; ``y`` may hold only
        some of them. As in scikit-learn, the network and optimizer are built
        from the parameters at the first call (or at ``fit``); later changes to
        them apply at the next ``fit``, except ``batch_size``, read at each call.
        """
        first_call = not hasattr(self, "model_")
        if first_call and classes is None:
            raise ValueError("classes must be given on the first call to partial_fit: "
                             "every label the model will see, e.g. np.unique(y_all)")
        with self._input_attributes_kept_on_failure():
            x, y = validate_data(self, X, y, dtype=np.float32, reset=first_call)
            check_classification_targets(y)
            if first_call:
                encoder = LabelEncoder().fit(np.asarray(classes))
            else:
                encoder = self._label_encoder
                if classes is not None and not np.array_equal(np.unique(classes),
                                                              self.classes_):
                    raise ValueError(f"classes={classes!r} differs from the classes of the "
                                     f"first call, classes_={self.classes_!r}")
            self._train(x, encoder.transform(y), len(encoder.classes_), incremental=True)
        self._label_encoder = encoder
        self.classes_ = encoder.classes_
        return self

    def predict(self, X):
        """The most probable class of each row, (n_samples,), from ``classes_``."""
        outputs = self._outputs(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(outputs, axis=1)]

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) float64, columns as in ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Log class probabilities (n_samples, n_classes) float64: the log-softmax of the
        outputs, finite where a probability would underflow to 0."""
        logits = self._outputs(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return logits
