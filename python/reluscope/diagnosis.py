"""Born dead or collapsed: what a model does to a dataset before any training.

Two ways a deep ReLU network can be useless at initialization (Lu, Shin, Su &
Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
arXiv:1903.06733):

- **mask death**: some hidden layer has no unit that fires on any sample of x,
  and some of its pre-activations are negative (dead by sign). Every later
  layer then sees a constant input, so the network is constant.
- **signal collapse**: no layer is dead by sign, yet the output does not vary
  across the samples of x in float32: the differences between samples have
  been squeezed below float32 resolution on the way through the layers. This
  includes a signal that shrank until every pre-activation of a layer
  underflowed to exactly 0 (``underflowed_layers``).

Deep networks with a poor initialization reach signal collapse before mask death.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from ._validation import as_features
from .scan import SCHEMA_VERSION, ScanReport, scan


@dataclass
class BornDeadReport:
    """What ``born_dead`` found.

    Attributes
    ----------
    scan : ScanReport
        The exact dead-unit scan of x.
    fully_dead_layers : list of int
        Hidden layers in which no unit fires on any sample, with some
        pre-activation negative.
    underflowed_layers : list of int
        Hidden layers whose pre-activations are all exactly 0 on every sample
        (before the first fully dead layer): the signal underflowed float32.
    activation_spread : list of float
        Per hidden layer, the largest range (max - min over the samples) of
        any unit's activation: how much the samples still differ there.
    output_spread : float
        The largest range over the samples of any output.
    """

    scan: ScanReport
    fully_dead_layers: list
    activation_spread: list
    output_spread: float
    underflowed_layers: list

    @property
    def mask_death(self) -> bool:
        return bool(self.fully_dead_layers)

    @property
    def signal_collapse(self) -> bool:
        return not self.mask_death and self.output_spread == 0.0

    @property
    def verdict(self) -> str:
        if self.mask_death:
            return "mask death"
        if self.signal_collapse:
            return "signal collapse"
        return "alive"

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "verdict": self.verdict,
            "mask_death": self.mask_death,
            "signal_collapse": self.signal_collapse,
            "fully_dead_layers": list(self.fully_dead_layers),
            "underflowed_layers": list(self.underflowed_layers),
            "activation_spread": [float(v) for v in self.activation_spread],
            "output_spread": float(self.output_spread),
            "scan": self.scan.to_dict(),
        }

    def __str__(self) -> str:
        lines = [f"Born-dead check over {self.scan.n_samples} samples: {self.verdict}"]
        if self.mask_death:
            lines.append(f"  mask death: hidden layer(s) {self.fully_dead_layers} fire on no "
                         "sample, so the network is constant")
        elif self.signal_collapse:
            lines.append("  signal collapse: the output is the same float32 value for every "
                         "sample, although no layer is dead by sign")
            if self.underflowed_layers:
                lines.append(f"  hidden layer(s) {self.underflowed_layers}: every pre-activation "
                             "underflowed float32 to exactly 0")
        lines.append(f"  {'layer':>5}  {'dead':>9}  {'activation spread':>17}")
        for layer, spread in zip(self.scan.layers, self.activation_spread):
            lines.append(f"  {layer.index:>5}  {layer.n_dead:>4}/{layer.n_units:<4}  "
                         f"{spread:>17.4g}")
        lines.append(f"  output spread: {self.output_spread:.4g}")
        return "\n".join(lines)


def born_dead(model, x) -> BornDeadReport:
    """Check a model on x before training: mask death, signal collapse, or alive.

    Parameters
    ----------
    model : MLP
    x : array-like (n_samples, n_features)
        Needs at least two distinct samples for "collapse" to mean anything.

    Returns
    -------
    BornDeadReport
    """
    x = as_features(x, n_features=model.n_features)
    report = scan(model, x, dormancy=False)
    activations = model._forward_validated(x)
    spreads = [float(np.ptp(out, axis=0).max()) for _, out in activations[:-1]]
    output_spread = float(np.ptp(activations[-1][1], axis=0).max())
    fully_dead, underflowed = [], []
    for layer, (pre, _) in zip(report.layers, activations):
        # The rule (rs::layer_verdict, shared with the born-dead experiment's kernel):
        # no unit fires and some pre-activation is negative: dead by sign; none
        # negative: every pre-activation is exactly 0, the signal underflowed.
        verdict = _core.layer_verdict(fires_anywhere=layer.n_dead < layer.n_units,
                                      negative_anywhere=bool((pre < 0).any()))
        if verdict == _core.LayerVerdict.dead_by_sign:
            fully_dead.append(layer.index)
        elif verdict == _core.LayerVerdict.underflowed and not fully_dead:
            underflowed.append(layer.index)
    return BornDeadReport(report, fully_dead, spreads, output_spread, underflowed)
