"""The multilayer perceptron: hidden layers with one activation, a linear output layer."""

from __future__ import annotations

import numpy as np

from ._validation import as_features, finite_float, positive_int
from .activations import IDENTITY, get_activation
from .initializers import initialize
from .layers import Dense
from .losses import get_loss


class MLP:
    """A multilayer perceptron ``x -> act(x @ W1 + b1) -> ... -> x @ WL + bL``.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_features, hidden_1, ..., n_outputs]``, at least two entries.
    activation : {"relu", "leaky_relu", "identity"}
        Activation of every hidden layer. The output layer is linear.
    init : str or callable
        Weight initializer name (see ``reluscope.initializers``) or a callable
        ``fn(fan_in, fan_out, rng, **init_params)``.
    seed : int or None
        Seed of the numpy Generator that draws every layer's weights, in order.
    negative_slope : float
        Slope of leaky_relu for negative pre-activations.
    bias : float
        Constant initial bias of every layer (zero by default), unless the
        initializer draws biases too (``"rai"``).
    init_params : dict, optional
        Extra arguments of the initializer, e.g. ``{"std": 0.1}`` for "normal".

    Attributes
    ----------
    layers : list of Dense
        ``layers[i].weight`` is (fan_in, fan_out) float32, ``.bias`` (fan_out,).
    """

    def __init__(self, layer_sizes, activation: str = "relu", init="he_normal", seed=None,
                 negative_slope: float = 0.01, bias: float = 0.0,
                 init_params: dict | None = None):
        sizes = [positive_int(size, "each layer size") for size in layer_sizes]
        if len(sizes) < 2:
            raise ValueError(
                f"layer_sizes needs at least an input and an output size, got {list(layer_sizes)}"
            )
        hidden = get_activation(activation, negative_slope)
        bias = finite_float(bias, "bias")
        rng = np.random.default_rng(seed)
        self.activation = hidden
        # Kept so that remedies (ReDo) can redraw units from the same distribution.
        self.init, self.init_params = init, dict(init_params or {})
        self.layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            weight, drawn_bias = initialize(init, fan_in, fan_out, rng, init_params)
            if drawn_bias is None:
                drawn_bias = np.full(fan_out, bias, dtype=np.float32)
            is_output = i == len(sizes) - 2
            self.layers.append(Dense(weight, drawn_bias, IDENTITY if is_output else hidden))

    @classmethod
    def from_weights(cls, weights, activation: str = "relu", negative_slope: float = 0.01):
        """Build a model from ``[(W1, b1), (W2, b2), ...]``; each W is (fan_in, fan_out).

        The arrays are copied as float32.
        """
        pairs = list(weights)
        if not pairs:
            raise ValueError("weights must hold at least one (weight, bias) pair")
        hidden = get_activation(activation, negative_slope)
        model = cls.__new__(cls)
        model.activation = hidden
        model.init, model.init_params = None, {}
        model.layers = []
        for i, pair in enumerate(pairs):
            if len(pair) != 2:
                raise ValueError(f"weights[{i}] must be a (weight, bias) pair")
            weight = np.array(pair[0], dtype=np.float32, order="C", copy=True)
            bias = np.array(pair[1], dtype=np.float32, order="C", copy=True)
            if weight.ndim != 2:
                raise ValueError(
                    f"weights[{i}] weight must be 2-D (fan_in, fan_out), got shape {weight.shape}"
                )
            if bias.shape != (weight.shape[1],):
                raise ValueError(
                    f"weights[{i}] bias has shape {bias.shape}, expected ({weight.shape[1]},)"
                )
            if weight.size == 0:
                raise ValueError(f"weights[{i}] weight is empty, shape {weight.shape}")
            if i > 0 and weight.shape[0] != model.layers[-1].fan_out:
                raise ValueError(
                    f"weights[{i}] weight has {weight.shape[0]} inputs but layer {i - 1} has "
                    f"{model.layers[-1].fan_out} outputs"
                )
            if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
                raise ValueError(f"weights[{i}] contains NaN or Inf")
            act = IDENTITY if i == len(pairs) - 1 else hidden
            model.layers.append(Dense(weight, bias, act))
        return model

    @property
    def layer_sizes(self) -> list[int]:
        return [self.layers[0].fan_in] + [layer.fan_out for layer in self.layers]

    @property
    def hidden_layers(self) -> list[Dense]:
        """Every layer but the (linear) output layer."""
        return self.layers[:-1]

    @property
    def n_features(self) -> int:
        return self.layers[0].fan_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].fan_out

    def parameters(self) -> list[np.ndarray]:
        """``[W1, b1, W2, b2, ...]``: the arrays an optimizer updates in place."""
        return [p for layer in self.layers for p in (layer.weight, layer.bias)]

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of ``[(W1, b1), ...]``, suitable for ``from_weights``."""
        return [(layer.weight.copy(), layer.bias.copy()) for layer in self.layers]

    def forward(self, x) -> np.ndarray:
        """Raw outputs (n_samples, n_outputs) float32; the last layer is linear."""
        return self._forward_validated(as_features(x, n_features=self.n_features))[-1][1]

    def predict(self, x) -> np.ndarray:
        """Index of the largest output for each sample (n_samples,) int64."""
        return np.argmax(self.forward(x), axis=1)

    def predict_proba(self, x) -> np.ndarray:
        """Softmax of the outputs (n_samples, n_outputs), each row summing to 1."""
        logits = self.forward(x).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities.astype(np.float32)

    def loss_and_gradients(self, x, y, loss: str = "cross_entropy"):
        """The mean loss on (x, y) and its gradient for every layer.

        Returns
        -------
        loss : float
        gradients : list of (grad_weight, grad_bias), one pair per layer, shaped
            like the layer's weight and bias.
        """
        x = as_features(x, n_features=self.n_features)
        loss_fn = get_loss(loss)
        targets = loss_fn.prepare_targets(y, x.shape[0], self.n_outputs)
        value, gradients, _ = self._loss_and_gradients_validated(x, targets, loss_fn)
        return value, gradients

    def forward_layers(self, x) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(pre_activation, output), ...]``, one pair per layer, each (n_samples, fan_out).

        For the linear output layer both are the same array.
        """
        return self._forward_validated(as_features(x, n_features=self.n_features))

    # Internals below take input that has been validated already.

    def _forward_validated(self, x: np.ndarray):
        """``[(pre_activation, output), ...]`` per layer for validated x."""
        activations = []
        layer_input = x
        for layer in self.layers:
            pre_activation, output = layer.forward(layer_input)
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
        gradients = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            layer_input = x if i == 0 else activations[i - 1][1]
            grad_weight, grad_bias, grad_output = self.layers[i].backward(
                layer_input, activations[i][0], grad_output, need_grad_input=i > 0)
            gradients[i] = (grad_weight, grad_bias)
        return value, gradients, outputs

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in self.layer_sizes)
        return f"MLP({sizes}, activation={self.activation.name!r})"
