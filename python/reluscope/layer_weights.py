"""The incoming weights of the hidden layers at a scan.

As the history and the cause rules read them.

A native ``MLP`` is one chain of dense layers; a PyTorch module is any graph.
``HiddenLayerWeights`` says what the rules may assume about it: the incoming
weights and bias of each unit, and per layer whether its inputs are exactly the
units of the layer before (``chained``); for the first layer, whether they are
exactly the features of the scanned data. With each layer's ``Rectifier`` the
history can recompute a chain's layer inputs at an earlier scan (see
``reluscope.attribution``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rectifier:
    """A ReLU-family function.

    s for s > 0, ``negative_slope`` * s otherwise, capped at ``ceiling`` (6 for
    ReLU6).
    """

    negative_slope: float = 0.0
    ceiling: float = math.inf

    def apply(self, pre_activation: np.ndarray) -> np.ndarray:
        """Apply the function to ``pre_activation``, as the C++ kernels do."""
        # s <= 0 ? slope * s : s, as the C++ kernels write it: NaN passes through.
        out = np.where(pre_activation <= 0, pre_activation * np.float32(self.negative_slope),
                       pre_activation)
        return np.minimum(out, np.float32(self.ceiling)) if math.isfinite(self.ceiling) else out

    def to_dict(self) -> dict:
        """Return the slope and the ceiling (None when uncapped), as a JSON-ready dict."""
        return {"negative_slope": self.negative_slope,
                "ceiling": self.ceiling if math.isfinite(self.ceiling) else None}

    @classmethod
    def from_dict(cls, fields: dict) -> Rectifier:
        """Rebuild a rectifier from ``to_dict``'s fields."""
        ceiling = fields["ceiling"]
        return cls(float(fields["negative_slope"]), math.inf if ceiling is None else ceiling)


@dataclass
class HiddenLayerWeights:
    """Per hidden layer, the incoming weights of its units.

    Attributes
    ----------
    incoming : list of ndarray (n_units, fan_in)
        Row j holds the weights into unit j (a convolution's kernel of output
        channel j, flattened).
    biases : list of ndarray (n_units,)
        Zeros for a layer without bias.
    chained : list of bool
        ``chained[i]``: the inputs of layer i are the activations of layer
        i - 1, in order (``chained[0]``: the features of the scanned x).
    rectifiers : list of Rectifier, or None
        Each layer's activation function, where known (None: the layer inputs
        cannot be recomputed from these weights).
    """

    incoming: list
    biases: list
    chained: list
    rectifiers: list | None = None

    @classmethod
    def of_mlp(cls, model) -> HiddenLayerWeights:
        """Return the hidden layers of a native ``MLP``: a chain from the features up.

        Views of the model's arrays: ``copy`` keeps them.
        """
        hidden = model.hidden_layers
        activation = model.activation
        # The identity is a rectifier of slope 1.
        slope = 1.0 if activation.name == "identity" else activation.negative_slope
        return cls([layer.weight.T for layer in hidden], [layer.bias for layer in hidden],
                   [True] * len(hidden), [Rectifier(float(slope))] * len(hidden))

    def copy(self) -> HiddenLayerWeights:
        """Return the same weights in arrays of their own, unchanged by later training steps."""
        return HiddenLayerWeights([np.array(w, dtype=np.float32) for w in self.incoming],
                                  [np.array(b, dtype=np.float32) for b in self.biases],
                                  list(self.chained),
                                  None if self.rectifiers is None else list(self.rectifiers))

    def incoming_with_bias(self, layer: int, unit: int) -> np.ndarray:
        """Return unit ``unit``'s incoming weights followed by its bias, as one vector."""
        return np.append(self.incoming[layer][unit], self.biases[layer][unit])
