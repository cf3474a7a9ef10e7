"""Hidden-layer activations, by name.

A hidden unit *fires* on a sample when its pre-activation s is > 0 (strictly).
ReLU is max(0, s) with derivative 1 for s > 0 and 0 otherwise (0 at s == 0, so a
unit that does not fire passes no gradient). Leaky ReLU is s for s > 0 and
negative_slope * s otherwise, with derivative negative_slope there: an inactive
leaky unit still receives gradient. The output layer is always linear.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._validation import finite_float, lookup


@dataclass(frozen=True)
class Activation:
    """An activation as the kernels know it: a name, a code, and the leaky slope."""

    name: str
    code: int
    negative_slope: float = 0.0


# Codes match rs::Activation in csrc/kernels/kernel_set.hpp.
_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2}


def get_activation(name: str, negative_slope: float = 0.01) -> Activation:
    """The activation called ``name``; ``negative_slope`` is used by leaky_relu only."""
    code = lookup(_CODES, name, "activation")
    slope = 0.0
    if name == "leaky_relu":
        slope = finite_float(negative_slope, "negative_slope", low=0.0, high=1.0, high_open=True)
    return Activation(name, code, slope)


IDENTITY = Activation("identity", 0)
