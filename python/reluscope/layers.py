"""A dense layer: ``pre_activation = x @ weight + bias``, ``output = act(pre_activation)``."""

from __future__ import annotations

import numpy as np

from . import _core
from .activations import Activation


class Dense:
    """One fully connected layer.

    Attributes
    ----------
    weight : ndarray, shape (fan_in, fan_out), float32
    bias : ndarray, shape (fan_out,), float32
    activation : Activation
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, activation: Activation):
        self.weight = weight
        self.bias = bias
        self.activation = activation

    @property
    def fan_in(self) -> int:
        """Inputs of the layer: the rows of its weight."""
        return self.weight.shape[0]

    @property
    def fan_out(self) -> int:
        """Units of the layer: the columns of its weight."""
        return self.weight.shape[1]

    def forward(self, x: np.ndarray, firing_counts: np.ndarray | None = None,
                max_pre_activation: np.ndarray | None = None,
                nonfinite_counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(pre_activation, output)``, each (n_samples, fan_out) float32.

        ``x`` must already be C-contiguous float32 (see ``_validation``). When
        given, ``firing_counts`` (int64) gains the number of samples with
        pre-activation > 0 per unit, ``max_pre_activation`` (float32) is
        raised to the largest pre-activation seen per unit, and
        ``nonfinite_counts`` (int64) gains the number of samples whose
        pre-activation is NaN or Inf, in the same pass.
        For a linear layer the output is the pre-activation (the same array).
        """
        pre_activation = np.empty((x.shape[0], self.fan_out), dtype=np.float32)
        if self.activation.kind == _core.Activation.identity:
            output = pre_activation
        else:
            output = np.empty_like(pre_activation)
        _core.dense_forward(x, self.weight, self.bias, pre_activation, output,
                            self.activation.kind, self.activation.negative_slope,
                            firing_counts, max_pre_activation, nonfinite_counts)
        return pre_activation, output

    def backward(self, x: np.ndarray, pre_activation: np.ndarray, grad_output: np.ndarray,
                 need_grad_input: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(grad_weight, grad_bias, grad_input)`` for d loss / d output = grad_output.

        ``grad_pre = grad_output * act'(pre_activation)`` (the ReLU mask),
        ``grad_weight = x.T @ grad_pre``, ``grad_bias = grad_pre.sum(0)``,
        ``grad_input = grad_pre @ weight.T`` or None when not needed (first layer).
        """
        grad_pre = np.empty_like(grad_output)
        grad_weight = np.empty_like(self.weight)
        grad_bias = np.empty_like(self.bias)
        grad_input = np.empty_like(x) if need_grad_input else None
        _core.dense_backward(x, self.weight, pre_activation, grad_output, grad_pre,
                             grad_weight, grad_bias, grad_input, self.activation.kind,
                             self.activation.negative_slope)
        return grad_weight, grad_bias, grad_input

    def __repr__(self) -> str:
        """Sizes and activation, e.g. ``Dense(64 -> 32, relu)``."""
        return f"Dense({self.fan_in} -> {self.fan_out}, {self.activation.name})"
