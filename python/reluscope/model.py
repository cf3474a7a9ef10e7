"""The multilayer perceptron: hidden layers with one activation, a linear output layer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._typing import Init, PathLike, Seed
from ._validation import (
    as_features,
    as_float32_parameter,
    float32_hyperparameter,
    generator,
    positive_int,
)
from .activations import IDENTITY, get_activation
from .initializers import initialize
from .layer_checks import check_layers
from .layer_stream import DEFAULT_CHUNK_ROWS, nonfinite_error, stream_layers
from .layers import Dense
from .losses import get_loss


class MLP:
    """A multilayer perceptron ``x -> act(x @ W1 + b1) -> ... -> x @ WL + bL``.

    Every model is built by ``__init__``: from an initializer, or from given
    weights (``weights=``, or the ``from_weights`` and ``from_layers`` shortcuts).

    Parameters
    ----------
    layer_sizes : sequence of int, or None with ``weights``
        ``[n_features, hidden_1, ..., n_outputs]``, at least two entries; with
        ``weights`` it may be None (the sizes follow from the weights' shapes).
    activation : {"relu", "leaky_relu", "identity"}
        Activation of every hidden layer. The output layer is linear.
    init : str or callable, keyword-only
        Weight initializer name (see ``reluscope.initializers``) or a callable
        ``fn(fan_in, fan_out, rng, **init_params)``.
    seed : int or None, keyword-only
        Seed of the numpy Generator that draws every layer's weights, in order.
    negative_slope : float, keyword-only
        Slope of leaky_relu for negative pre-activations.
    bias_init : float, keyword-only
        Constant initial bias of every layer (zero by default), unless the
        initializer draws biases too (``"rai"``).
    init_params : dict, optional, keyword-only
        Extra arguments of the initializer, e.g. ``{"std": 0.1}`` for "normal".
    weights : list of (weight, bias) pairs, optional, keyword-only
        The parameters to start from instead of drawing them: weight
        (fan_in, fan_out), bias (fan_out,), one pair per layer, matching
        ``layer_sizes``; copied as float32. It excludes ``init``, ``seed``,
        ``bias_init`` and ``init_params``.

    Attributes
    ----------
    layers : list of Dense
        ``layers[i].weight`` is (fan_in, fan_out) float32, ``.bias`` (fan_out,).
    init, init_params :
        The initializer and its parameters, kept so that remedies (ReDo) can
        redraw units from the same distribution; None and {} for a model built
        from weights.
    """

    def __init__(self, layer_sizes: Sequence[int] | None, activation: str = "relu", *,
                 init: Init = "he_normal", seed: Seed = None, negative_slope: float = 0.01,
                 bias_init: float = 0.0, init_params: dict | None = None,
                 weights: Sequence[tuple[Any, Any]] | None = None) -> None:
        if layer_sizes is None and weights is None:
            raise ValueError("layer_sizes is needed unless weights= gives the parameters")
        sizes = None if layer_sizes is None else _layer_sizes(layer_sizes)
        hidden = get_activation(activation, negative_slope)
        bias_init = float32_hyperparameter(bias_init, "bias_init")
        self.init: Init | None  # None: built from given weights
        self.init_params: dict
        if weights is None:
            assert sizes is not None  # layer_sizes is None only when weights is given
            rng = generator(seed)
            self.init, self.init_params = init, dict(init_params or {})
            pairs = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                weight, bias = initialize(init, fan_in, fan_out, rng, init_params)
                if bias is None:
                    bias = np.full(fan_out, bias_init, dtype=np.float32)
                pairs.append((weight, bias))
        else:
            if (not (isinstance(init, str) and init == "he_normal") or seed is not None
                    or bias_init != 0.0 or init_params is not None):
                raise ValueError("weights= gives the parameters: init, seed, bias_init and "
                                 "init_params cannot be given with it")
            pairs = _weight_pairs(weights)
            if sizes is not None:
                _check_sizes(pairs, sizes)
            self.init, self.init_params = None, {}
        self.activation = hidden
        self.layers = [Dense(weight, bias, IDENTITY if i == len(pairs) - 1 else hidden)
                       for i, (weight, bias) in enumerate(pairs)]

    @classmethod
    def from_weights(cls, weights: Sequence[tuple[Any, Any]], activation: str = "relu", *,
                     negative_slope: float = 0.01, layout: str = "reluscope") -> MLP:
        """Build a model from ``[(W1, b1), (W2, b2), ...]``.

        The arrays are copied as float32; ``layer_sizes`` follows from their shapes.

        Parameters
        ----------
        weights : sequence of (weight, bias) pairs, one per layer
            numpy arrays or PyTorch tensors (detached and copied from any device);
            a bias of None is a zero bias (a Linear built with ``bias=False``).
        activation : {"relu", "leaky_relu", "identity"}
        negative_slope : float
            Slope of leaky_relu for negative pre-activations.
        layout : {"reluscope", "torch"}
            How each weight is stored. "reluscope": (fan_in, fan_out), so that a
            layer computes ``x @ W + b``; scikit-learn's ``coefs_`` and Keras's
            Dense kernels are stored this way too. "torch": (out_features,
            in_features), as in PyTorch's ``nn.Linear.weight`` (``x @ W.T + b``);
            such weights are transposed on the way in.

        Notes
        -----
        The layout cannot always be told from the shapes. A shape error names
        the layout that was expected and, when every weight transposed would
        fit, suggests the other one. But when every layer is square (fan_in ==
        fan_out everywhere), weights in the wrong layout fit too: the model
        then computes ``x @ W.T + b`` where ``x @ W + b`` was meant, and reports
        other dead units than the network has. Say ``layout="torch"`` for
        PyTorch's weights, or convert the module itself with ``MLP.from_torch``.
        """
        if layout != "reluscope":
            # Checked as given, so that the errors show the shapes the caller passed;
            # the transposed copies are then taken as they are.
            weights = _weight_pairs(weights, layout)
        return cls(None, activation, negative_slope=negative_slope, weights=weights)

    @classmethod
    def from_torch(cls, module: Any) -> MLP:
        """Return the model a PyTorch ``nn.Sequential`` of Linear layers computes.

        Parameters
        ----------
        module : torch.nn.Sequential
            ``nn.Linear`` layers with ``nn.ReLU``, ``nn.LeakyReLU`` (one slope
            for the whole network) or ``nn.Identity`` (or nothing) between
            them, the last ``nn.Linear`` being the output layer; nested
            ``nn.Sequential`` containers are read in order. ``nn.Dropout`` is
            accepted and taken as the identity, which is what it is in eval
            mode: a scan sees every unit of the network, none dropped.
            ``nn.Flatten`` (its default dims) is accepted where the input is
            already (n_samples, n_features), which is what reluscope takes:
            flatten images first, e.g. ``x.reshape(len(x), -1)``.

        Notes
        -----
        Each ``nn.Linear`` weight (out_features, in_features) is transposed to
        (fan_in, fan_out) and copied as float32 on the CPU, from any device and
        any floating dtype (float64, float16, bfloat16); a Linear without bias
        gets a zero bias. The module is left as it was. PyTorch is imported
        here, never by ``import reluscope``.

        Raises
        ------
        TypeError
            For a module of a kind reluscope does not model (a convolution, a
            ``ReLU6``, a custom module): the error names the module, its path
            within the nested ``nn.Sequential`` containers (as in
            ``module.named_modules()``) and what is supported.
        ValueError
            For supported modules in an order no MLP has: two activations in
            a row, an activation before the first or after the last Linear,
            different activations or slopes in one network, a Linear whose
            ``in_features`` differ from the previous one's ``out_features``,
            weights that are NaN, Inf or not yet initialized.
        """
        from .convert_torch import mlp_from_torch

        return mlp_from_torch(module)

    def to_torch(self) -> Any:
        """Return a float32 ``torch.nn.Sequential`` on the CPU that computes what this model does.

        ``nn.Linear`` layers with this model's weights (transposed to
        (out_features, in_features), bit for bit) and ``nn.ReLU``,
        ``nn.LeakyReLU`` or ``nn.Identity`` between them.
        ``MLP.from_torch(model.to_torch())`` gives back the same weights bit for
        bit. Building it draws no random numbers: PyTorch's global generator is
        left as it was.
        """
        from .convert_torch import mlp_to_torch

        return mlp_to_torch(self)

    @classmethod
    def from_sklearn(cls, estimator: Any) -> MLP:
        """Return the model a fitted scikit-learn ``MLPClassifier`` or ``MLPRegressor`` computes.

        The estimator's ``activation`` must be "relu" or "identity".

        - Multi-class classifier: ``predict_proba`` equals the estimator's (up
          to float32 rounding: scikit-learn computes in float64), and
          ``estimator.classes_[model.predict(x)]`` is its ``predict``.
        - Binary classifier: scikit-learn has one output unit z and applies
          the logistic function. The model gets two output units, (0, z):
          their softmax is (1 - logistic(z), logistic(z)), so
          ``predict_proba`` and ``predict`` agree as for the multi-class case.
          The hidden layers, the ones a scan looks at, are the estimator's.
        - Regressor: ``forward`` is the estimator's ``predict``, shaped
          (n_samples, n_outputs) (scikit-learn drops the last axis for one
          output).

        A multi-label classifier (independent logistic outputs) and a Poisson
        regressor (exponential output) are refused: no model with a linear
        output layer predicts what they do. Their hidden layers can still be
        scanned through ``MLP.from_weights(list(zip(estimator.coefs_,
        estimator.intercepts_)))``. scikit-learn is imported here, never by
        ``import reluscope``.

        Raises
        ------
        TypeError
            When ``estimator`` is not a scikit-learn MLPClassifier or MLPRegressor.
        sklearn.exceptions.NotFittedError (a ValueError)
            When it has not been fitted.
        ValueError
            For an activation other than relu or identity, or an output layer
            that is not softmax, binary logistic or linear.
        """
        from .convert_sklearn import mlp_from_sklearn

        return mlp_from_sklearn(estimator)

    @classmethod
    def from_layers(cls, layers: Sequence[Dense]) -> MLP:
        """Build a model from ``Dense`` layers, e.g. another model's ``layers``.

        The weights and biases are copied as float32; the hidden activation (and
        leaky slope) is the one the hidden layers share, and the last layer must
        be linear, as in every MLP. ``MLP.from_layers(model.layers)`` computes
        what ``model`` computes, on parameters of its own.
        """
        layers = list(layers)
        if not layers:
            raise ValueError("layers must hold at least one Dense layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}] must be a reluscope.layers.Dense, "
                                f"got {type(layer).__name__}")
        if layers[-1].activation != IDENTITY:
            raise ValueError(f"layers[{len(layers) - 1}] is the output layer and must be linear "
                             f"(identity), got {layers[-1].activation.name}")
        hidden = layers[0].activation if len(layers) > 1 else get_activation("relu")
        for i, layer in enumerate(layers[:-1]):
            if layer.activation != hidden:
                raise ValueError(
                    f"every hidden layer must have the same activation: layers[0] is "
                    f"{_describe(hidden)}, layers[{i}] is {_describe(layer.activation)}")
        slope = hidden.negative_slope if hidden.kind == _core.Activation.leaky_relu else 0.01
        return cls.from_weights([(layer.weight, layer.bias) for layer in layers],
                                activation=hidden.name, negative_slope=slope)

    def save(self, path: PathLike) -> str:
        """Write the model to ``path`` (an .npz archive with a JSON manifest); return the path.

        The write is atomic: the file is the previous one or the complete new
        one, never a part. ``MLP.load(path)`` gives back the parameters bit for
        bit, the activation (and leaky slope) and the initializer's name. See
        ``reluscope.model_file`` for the layout. A model that another thread is
        training is saved consistently through its trainer
        (``Trainer.save_checkpoint``, which waits for the step in progress).
        Only a model that loads again is written: layers that fail
        ``check_layers`` raise its error, and a NaN or Inf parameter a
        ValueError naming the layer.
        """
        from .model_file import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: PathLike) -> MLP:
        """Return the model that ``save`` wrote to ``path``.

        Nothing in the file is unpickled or run. A truncated, corrupted or
        foreign file (a checkpoint included) raises ``reluscope.CheckpointError``
        naming the file and what is wrong; a missing one FileNotFoundError.
        """
        from .model_file import load_model

        return load_model(path)

    @property
    def layer_sizes(self) -> list[int]:
        """The width of every layer, the inputs first."""
        return [self.layers[0].fan_in] + [layer.fan_out for layer in self.layers]

    @property
    def hidden_layers(self) -> list[Dense]:
        """Every layer but the (linear) output layer."""
        return self.layers[:-1]

    @property
    def n_features(self) -> int:
        """Features of the input: the first layer's fan_in."""
        return self.layers[0].fan_in

    @property
    def n_outputs(self) -> int:
        """Outputs of the model: the last layer's fan_out."""
        return self.layers[-1].fan_out

    def parameters(self) -> list[np.ndarray]:
        """``[W1, b1, W2, b2, ...]``: the arrays an optimizer updates in place."""
        return [p for layer in self.layers for p in (layer.weight, layer.bias)]

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return copies of ``[(W1, b1), ...]``, suitable for ``from_weights``."""
        return [(layer.weight.copy(), layer.bias.copy()) for layer in self.layers]

    def check_layers(self, *, writeable: bool = False) -> None:
        """Raise unless the layers are still a model the kernels can run.

        Layers may be changed after construction (``layer.weight = w``); every
        entry point that uses them calls this first. It checks shapes, dtypes
        and layouts, never values (see ``reluscope.layer_checks``): each layer
        has width >= 1, a 2-D float32 C-contiguous weight (fan_in, fan_out) whose
        fan_in is the previous layer's fan_out, a float32 bias (fan_out,), and,
        with ``writeable``, both writeable. The error names the layer and both
        shapes.
        """
        check_layers(self.layers, writeable=writeable)

    def forward(self, x: npt.ArrayLike, *, chunk_size: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
        """Raw outputs (n_samples, n_outputs) float32; the last layer is linear.

        The samples go through the layers ``chunk_size`` rows at a time, so the
        memory used beyond x and the result is two chunks of the widest layer
        (see ``reluscope.layer_stream``); the result is bit for bit the same
        whatever ``chunk_size``.

        Raises
        ------
        NonFiniteActivations (a ValueError)
            When some pre-activation is NaN or Inf: x overflows float32 on the
            way through the layers, or a weight or bias is NaN or Inf. The error
            names the first layer affected, how many samples and units, and
            the cause. (A ReLU would turn NaN into 0 and hide it.)
        """
        self.check_layers()
        x = as_features(x, n_features=self.n_features)
        chunk_size = positive_int(chunk_size, "chunk_size")
        return self._forward_streamed(x, chunk_size)

    def predict(self, x: npt.ArrayLike, *, chunk_size: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
        """Index of the largest output for each sample (n_samples,) int64.

        Streams like ``forward``, and raises ``NonFiniteActivations`` as it does.
        """
        return np.argmax(self.forward(x, chunk_size=chunk_size), axis=1)

    def predict_proba(self, x: npt.ArrayLike, *,
                      chunk_size: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
        """Softmax of the outputs (n_samples, n_outputs), each row summing to 1.

        Streams like ``forward`` (the softmax too, in float64 a chunk at a time),
        and raises ``NonFiniteActivations`` as it does.
        """
        outputs = self.forward(x, chunk_size=chunk_size)
        probabilities = np.empty_like(outputs)
        for start in range(0, outputs.shape[0], chunk_size):
            logits = outputs[start:start + chunk_size].astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            exp /= exp.sum(axis=1, keepdims=True)
            probabilities[start:start + chunk_size] = exp
        return probabilities

    def loss_and_gradients(
        self, x: npt.ArrayLike, y: npt.ArrayLike, loss: str = "cross_entropy"
    ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]] | None]:
        """Return the mean loss on (x, y) and its gradient for every layer.

        Holds every layer's activations of all of x (the backward pass needs
        them). Raises ``NonFiniteActivations`` as ``forward`` does.

        Returns
        -------
        loss : float
        gradients : list of (grad_weight, grad_bias), one pair per layer, shaped
            like the layer's weight and bias.
        """
        self.check_layers()
        x = as_features(x, n_features=self.n_features)
        loss_fn = get_loss(loss)
        targets = loss_fn.prepare_targets(y, x.shape[0], self.n_outputs)
        value, gradients, _ = self._loss_and_gradients_validated(x, targets, loss_fn)
        return value, gradients

    def forward_layers(self, x: npt.ArrayLike) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(pre_activation, output), ...]``, one pair per layer, each (n_samples, fan_out).

        For the linear output layer both are the same array. Unlike ``forward``,
        this holds every layer's activations of all of x at once (two arrays of
        n_samples x fan_out float32 per hidden layer): pass a sample of x for
        large data. Raises ``NonFiniteActivations`` as ``forward`` does.
        """
        self.check_layers()
        return self._forward_validated(as_features(x, n_features=self.n_features))

    # Internals below take input (and layers) that have been validated already.

    def _forward_streamed(self, x: np.ndarray, chunk_size: int = DEFAULT_CHUNK_ROWS):
        """Return the outputs (n_samples, n_outputs) for validated x, a chunk of rows at a time."""
        outputs = np.empty((x.shape[0], self.n_outputs), dtype=np.float32)
        for _ in stream_layers(self.layers, x, chunk_size, outputs=outputs):
            pass
        return outputs

    def _forward_validated(self, x: np.ndarray):
        """``[(pre_activation, output), ...]`` per layer for validated x, all rows at once."""
        activations = []
        layer_input = x
        for layer in self.layers:
            nonfinite = np.zeros(layer.fan_out, dtype=np.int64)
            pre_activation, output = layer.forward(layer_input, nonfinite_counts=nonfinite)
            if nonfinite.any():
                raise nonfinite_error(self.layers, x)
            activations.append((pre_activation, output))
            layer_input = output
        return activations

    def _loss_and_gradients_validated(self, x: np.ndarray, targets: np.ndarray, loss_fn):
        """Loss, per-layer gradients and the outputs; the loss may be non-finite."""
        activations = self._forward_validated(x)
        outputs = activations[-1][1]
        grad_output = np.empty_like(outputs)
        value = loss_fn(outputs, targets, grad_output)
        if not np.isfinite(value):
            return value, None, outputs
        gradients: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            layer_input = x if i == 0 else activations[i - 1][1]
            grad_weight, grad_bias, grad_output = self.layers[i].backward(
                layer_input, activations[i][0], grad_output, need_grad_input=i > 0)
            gradients[i] = (grad_weight, grad_bias)
        return value, gradients, outputs

    def __repr__(self) -> str:
        """Layer sizes and activation, e.g. ``MLP(64-32-10, activation='relu')``."""
        sizes = "-".join(str(s) for s in self.layer_sizes)
        return f"MLP({sizes}, activation={self.activation.name!r})"


def _describe(activation) -> str:
    if activation.kind == _core.Activation.leaky_relu:
        return f"{activation.name} (negative_slope={activation.negative_slope})"
    return activation.name


def _layer_sizes(layer_sizes) -> list[int]:
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Iterable):
        raise TypeError(f"layer_sizes must be a list of layer widths, inputs first, such as "
                        f"[784, 128, 10]; got {layer_sizes!r}")
    sizes = [positive_int(size, "each layer size") for size in layer_sizes]
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, got {list(layer_sizes)}"
        )
    return sizes


# How each weight layout stores a layer's weight, and who stores it that way.
WEIGHT_LAYOUTS = {
    "reluscope": "(fan_in, fan_out), as reluscope, scikit-learn and Keras store it",
    "torch": "(out_features, in_features), as PyTorch's nn.Linear stores it",
}


def _weight_pairs(weights, layout: str = "reluscope") -> list[tuple[np.ndarray, np.ndarray]]:
    """Check ``weights`` and copy them as (weight, bias) pairs.

    The weights come as C-contiguous float32 (fan_in, fan_out), from the
    ``layout`` they were given in (see ``WEIGHT_LAYOUTS``).
    """
    if not isinstance(layout, str) or layout not in WEIGHT_LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(WEIGHT_LAYOUTS)}, got {layout!r}")
    pairs = list(weights)
    if not pairs:
        raise ValueError("weights must hold at least one (weight, bias) pair")
    given = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"weights[{i}] must be a (weight, bias) pair")
        weight = as_float32_parameter(pair[0], f"weights[{i}] weight")
        if weight.ndim != 2:
            raise ValueError(f"weights[{i}] weight must be 2-D {WEIGHT_LAYOUTS[layout]}, "
                             f"got shape {weight.shape}")
        # No bias (a Linear built with bias=False): a zero bias computes the same.
        bias = (np.zeros(_fans(weight.shape, layout)[1], np.float32) if pair[1] is None
                else as_float32_parameter(pair[1], f"weights[{i}] bias"))
        if weight.size == 0:
            raise ValueError(f"weights[{i}] weight is empty, shape {weight.shape}")
        given.append((weight, bias))
    shapes = [(weight.shape, bias.shape) for weight, bias in given]
    problem = _layout_problem(shapes, layout)
    if problem:
        raise ValueError(problem + _layout_hint(shapes, layout))
    checked = []
    for i, (weight, bias) in enumerate(given):
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError(f"weights[{i}] contains NaN or Inf (after conversion to float32, "
                             f"whose largest value is 3.4e38)")
        if layout == "torch":
            weight = np.ascontiguousarray(weight.T)
        checked.append((weight, bias))
    return checked


def _fans(weight_shape, layout: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape in ``layout``."""
    return tuple(weight_shape) if layout == "reluscope" else tuple(weight_shape[::-1])


def _layout_problem(shapes, layout: str) -> str | None:
    """Say what is wrong with the (weight shape, bias shape) pairs read in ``layout``, or None."""
    previous_fan_out = None
    for i, (weight_shape, bias_shape) in enumerate(shapes):
        fan_in, fan_out = _fans(weight_shape, layout)
        if bias_shape != (fan_out,):
            return (f"weights[{i}] bias has shape {bias_shape}, expected ({fan_out},): its "
                    f"weight {weight_shape}, read as layout={layout!r} "
                    f"{WEIGHT_LAYOUTS[layout]}, has {fan_out} outputs")
        if previous_fan_out is not None and fan_in != previous_fan_out:
            return (f"weights[{i}] weight has {fan_in} inputs but layer {i - 1} has "
                    f"{previous_fan_out} outputs: its shape {weight_shape} is read as "
                    f"layout={layout!r} {WEIGHT_LAYOUTS[layout]}")
        previous_fan_out = fan_out
    return None


def _layout_hint(shapes, layout: str) -> str:
    """Return a suggestion of the other layout when every pair fits it, else nothing."""
    other = "torch" if layout == "reluscope" else "reluscope"
    if _layout_problem(shapes, other) is not None:
        return ""
    return (f". Every weight would fit transposed: if they are {WEIGHT_LAYOUTS[other]}, "
            f"use MLP.from_weights(weights, layout={other!r})")


def _check_sizes(pairs, sizes: list[int]) -> None:
    """Check that the (already checked) pairs have the shapes ``layer_sizes`` asks for."""
    if len(pairs) != len(sizes) - 1:
        raise ValueError(f"layer_sizes {sizes} has {len(sizes) - 1} layers but weights holds "
                         f"{len(pairs)} (weight, bias) pairs")
    for i, (weight, _) in enumerate(pairs):
        if weight.shape != (sizes[i], sizes[i + 1]):
            raise ValueError(f"weights[{i}] weight has shape {weight.shape} but layer_sizes "
                             f"{sizes} needs ({sizes[i]}, {sizes[i + 1]})")
