"""The incoming weights of the hidden layers at a scan, as the history and the cause rules
read them.

A native ``MLP`` is one chain of dense layers; a PyTorch module is any graph.
``HiddenLayerWeights`` says what the rules may assume about it: the incoming
weights and bias of each unit, and per layer whether its inputs are exactly the
units of the layer before (``chained``); for the first layer, whether they are
exactly the features of the scanned data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """

    incoming: list
    biases: list
    chained: list

    @classmethod
    def of_mlp(cls, model) -> HiddenLayerWeights:
        """The hidden layers of a native ``MLP``: a chain from the features up."""
        hidden = model.hidden_layers
        return cls([layer.weight.T for layer in hidden], [layer.bias for layer in hidden],
                   [True] * len(hidden))

    def incoming_with_bias(self, layer: int, unit: int) -> np.ndarray:
        """Unit ``unit``'s incoming weights followed by its bias, as one vector."""
        return np.append(self.incoming[layer][unit], self.biases[layer][unit])
