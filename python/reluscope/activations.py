"""Hidden-layer activations, by name.

A hidden unit *fires* on a sample when its pre-activation s is > 0 (strictly).
ReLU is max(0, s) with derivative 1 for s > 0 and 0 otherwise (0 at s == 0, so a
unit that does not fire passes no gradient). Leaky ReLU is s for s > 0 and
negative_slope * s otherwise, with derivative negative_slope there: an inactive
leaky unit still receives gradient. The output layer is always linear.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _core
from ._validation import float32_hyperparameter, lookup


@dataclass(frozen=True)
class Activation:
    """An activation as the kernels know it: its kind and the leaky slope."""

    kind: _core.Activation
    negative_slope: float = 0.0

    @property
    def name(self) -> str:
        """The activation's name, as the C++ kernels know it."""
        return self.kind.name

    @property
    def zeroes_negatives(self) -> bool:
        """Whether a negative pre-activation gives 0 (ReLU, leaky ReLU of slope 0).

        Only then can a layer whose units never fire pass no signal at all.
        """
        return self.kind == _core.Activation.relu or (
            self.kind == _core.Activation.leaky_relu and self.negative_slope == 0.0)


def get_activation(name: str, negative_slope: float = 0.01) -> Activation:
    """Return the activation called ``name``; ``negative_slope`` is used by leaky_relu only."""
    kind = lookup(_core.Activation.__members__, name, "activation")
    slope = 0.0
    if kind == _core.Activation.leaky_relu:
        # Checked as float32, the kernels' type: 1 - 1e-9 would be a slope of 1, no activation.
        slope = float32_hyperparameter(negative_slope, "negative_slope", low=0.0, high=1.0,
                                       high_open=True)
    return Activation(kind, slope)


IDENTITY = Activation(_core.Activation.identity)
