"""What MLPClassifier and MLPRegressor share: the parameters, and training by the C++ core.

A fit builds a reluscope ``MLP``, an optimizer and a ``Trainer``, trains for
``max_iter`` epochs (``partial_fit``: one) with a ``DeadUnitMonitor``, then
scans the training data once for ``dead_units_``. The subclasses turn targets
into what the loss takes and outputs into predictions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import positive_int
from ..model import MLP
from ..monitor import DeadUnitMonitor
from ..scan import scan
from ..trainer import Trainer
from ._hyperparameters import activation_name, batch_rows, hidden_layer_widths, make_optimizer

# Both estimators' constructor parameters, documented once.
PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : {"relu", "leaky_relu", "identity"}, default="relu"
        Activation of every hidden layer; leaky_relu has slope 0.01 below zero
        (its non-firing units still learn, so they are *inactive*, not dead; so
        are identity units, which ``dead_units_`` lists when never positive).
        scikit-learn's "tanh" and "logistic" are refused: their units do not die.
    solver : {"adam", "sgd"}, default="adam"
    alpha : float, default=0.0001
        L2 weight decay: every step adds ``alpha * p`` to the gradient of every
        parameter ``p``, weights and biases alike (PyTorch's ``weight_decay``).
        scikit-learn's ``alpha`` is scaled by the batch: its step on the weights
        follows ``grad + (alpha / B) * W`` for a batch of B rows, ``grad`` being
        that of the batch's mean loss (it adds ``alpha * W`` to the summed
        gradient, then divides by B; by the sample weights' sum when given), and
        it leaves the intercepts undecayed. So scikit-learn's ``alpha=a`` with batches of
        B rows is ``alpha=a / B`` here, on every full batch (its smaller last
        batch of b rows gets ``a / b``), apart from the biases. ``loss_curve_``
        holds the data loss only, without the penalty scikit-learn adds.
    batch_size : int or "auto", default="auto"
        Rows per step; "auto" is ``min(200, n_samples)``, as in scikit-learn. A
        size above the number of samples means one batch of all of them.
    learning_rate_init : float, default=0.001
        The (constant) learning rate.
    max_iter : int, default=200
        Epochs of ``fit``. Every epoch runs: there is no early stopping (no
        ``tol``), hence no ConvergenceWarning.
    shuffle : bool, default=True
        Reshuffle the samples at every epoch.
    random_state : int, RandomState or None, default=None
        Draws the seeds of the initial weights, of the shuffling and of the
        monitor's subsample: the same int gives the same fit, bit for bit.
    momentum : float, default=0.9
        SGD momentum, in [0, 1).
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD (when ``momentum > 0``). With a constant
        learning rate the SGD updates are scikit-learn's, written in PyTorch's
        form (``v = momentum * v + g``).
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decays, in [0, 1).
    epsilon : float, default=1e-8
        Adam's epsilon.
    init : str, default="he_normal"
        reluscope's weight initializer (``reluscope.initializers``);
        scikit-learn's is "glorot_uniform".
    init_params : dict or None, default=None
        Extra arguments of the initializer, e.g. ``{"std": 0.1}`` for "normal".
    bias_init : float, default=0.0
        Constant initial bias of every layer.
    monitor : bool, default=True
        Watch the fit with a ``reluscope.DeadUnitMonitor`` (``monitor_``): an
        exact scan of the training inputs before training and after each epoch,
        with deaths, revivals and death certificates. On small data its per-epoch
        bookkeeping costs more than the training (iris, the defaults: 0.15 s
        against 0.02 s without); ``dead_units_`` is computed either way.
    monitor_max_samples : int, default=10000
        The monitor scans at most this many training rows: a larger training
        set is subsampled (without replacement, from ``random_state``).
    verbose : bool, default=False
        A progress bar on stderr (needs tqdm).
"""

FITTED_ATTRIBUTES_DOC = """
    model_ : reluscope.MLP
        The trained network; ``model_.layers[i].weight`` is (fan_in, fan_out).
    dead_units_ : list of ndarray
        Per hidden layer, the indices of its units that fire (pre-activation
        > 0) on no row of the training data, from ``reluscope.scan`` after
        training (after ``partial_fit``: on that call's rows).
    monitor_ : reluscope.DeadUnitMonitor or None
        The monitor of the fit (None with ``monitor=False``): ``summary()``,
        ``certificates``, ``to_html(path)``. Across ``partial_fit`` calls it
        keeps scanning the rows of the first call.
    loss_curve_ : list of float
        Mean training loss of each epoch, measured before each batch's update.
    loss_ : float
        The last entry of ``loss_curve_``.
    n_iter_ : int
        Epochs trained since the model was created (``fit`` starts anew;
        ``partial_fit`` adds one).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
"""


# What validate_data sets from X (reset=True).
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


class MLPEstimatorBase(BaseEstimator):
    """The parameters and the training loop of both estimators (see ``PARAMETERS_DOC``)."""

    # Set by the subclasses: the reluscope loss of the task.
    _loss_name: str
    # Set by fit (annotations only: an unfitted estimator has neither attribute).
    _trainer: Trainer
    monitor_: DeadUnitMonitor | None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, momentum=0.9, nesterovs_momentum=True,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, init="he_normal", init_params=None,
                 bias_init=0.0, monitor=True, monitor_max_samples=10000, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.init = init
        self.init_params = init_params
        self.bias_init = bias_init
        self.monitor = monitor
        self.monitor_max_samples = monitor_max_samples
        self.verbose = verbose

    @contextlib.contextmanager
    def _input_attributes_kept_on_failure(self) -> Iterator[None]:
        """Put ``n_features_in_`` and ``feature_names_in_`` back as they were if the body raises.

        ``validate_data`` sets them from the new ``X`` before training; a fit
        that fails must leave them describing the data ``model_`` takes.
        """
        saved = {name: getattr(self, name) for name in _INPUT_ATTRIBUTES if hasattr(self, name)}
        try:
            yield
        except BaseException:
            for name in _INPUT_ATTRIBUTES:
                if name in saved:
                    setattr(self, name, saved[name])
                elif hasattr(self, name):
                    delattr(self, name)
            raise

    def __sklearn_is_fitted__(self) -> bool:
        # Not "any attribute ending in _": a fit that failed may have set
        # n_features_in_ before training.
        return hasattr(self, "model_")

    def _train(self, x: np.ndarray, targets: np.ndarray, n_outputs: int, *,
               incremental: bool) -> None:
        """Train on validated float32 ``x`` and the loss's ``targets``; set the fitted attributes.

        ``incremental``: one epoch, continuing the current model if there is one
        (``partial_fit``); otherwise a new model trained for ``max_iter`` epochs.
        The fitted attributes (``n_iter_``, ``loss_curve_``, ...) change only
        when training succeeded; a ``partial_fit`` that fails part-way leaves the
        network with the updates applied before the failure.
        """
        continuing = incremental and hasattr(self, "model_")
        if continuing:
            trainer, monitor = self._trainer, self.monitor_
        else:
            trainer, monitor = self._new_training(x, n_outputs)
        epochs = 1 if incremental else positive_int(self.max_iter, "max_iter")
        trainer.batch_size = batch_rows(self.batch_size, x.shape[0])
        try:
            trainer.fit(x, targets, epochs=epochs, callbacks=[] if monitor is None else [monitor],
                        shuffle=bool(self.shuffle), verbose=bool(self.verbose))
        finally:
            # A fitted estimator holds neither the data nor batch-sized workspaces.
            trainer.fit_inputs = None
            trainer.release()
        self._trainer = trainer
        self.model_ = trainer.model
        self.monitor_ = monitor
        self.loss_curve_ = list(trainer.history.loss)
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = trainer.epochs_done
        self.dead_units_ = [layer.dead_units
                            for layer in scan(trainer.model, x, dormancy=False).layers]

    def _new_training(self, x: np.ndarray,
                      n_outputs: int) -> tuple[Trainer, DeadUnitMonitor | None]:
        """A new model, its trainer and (with ``monitor``) its monitor, seeded from random_state."""
        rng = check_random_state(self.random_state)
        init_seed, shuffle_seed, subsample_seed = rng.randint(np.iinfo(np.int32).max, size=3)
        sizes = [x.shape[1], *hidden_layer_widths(self.hidden_layer_sizes), n_outputs]
        model = MLP(sizes, activation_name(self.activation), init=self.init,
                    seed=int(init_seed), bias_init=self.bias_init, init_params=self.init_params)
        trainer = Trainer(model, self._loss_name, optimizer=make_optimizer(self.get_params()),
                          seed=int(shuffle_seed))
        monitor = None
        if self.monitor:
            limit = positive_int(self.monitor_max_samples, "monitor_max_samples")
            monitor = DeadUnitMonitor(_rows_to_scan(x, limit, int(subsample_seed)))
        return trainer, monitor

    def _outputs(self, X) -> np.ndarray:
        """The trained network's raw outputs on ``X``, (n_samples, n_outputs) float32."""
        check_is_fitted(self)
        x = validate_data(self, X, dtype=np.float32, reset=False)
        return self.model_.forward(x)


def _rows_to_scan(x: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """A copy of ``x``, or of ``limit`` of its rows drawn without replacement (in order)."""
    if x.shape[0] <= limit:
        return x.copy()  # the monitor keeps it: the caller may change x after fit
    rows = np.sort(np.random.default_rng(seed).choice(x.shape[0], limit, replace=False))
    return x[rows]
