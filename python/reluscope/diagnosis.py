"""Born dead or collapsed: what a model does to a dataset before any training.

Two ways a deep ReLU network can be useless at initialization (Lu, Shin, Su &
Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
arXiv:1903.06733):

- **mask death**: some hidden layer has no unit that fires on any sample of x,
  and some of its pre-activations are negative (dead by sign). Every later
  layer then sees a constant input, so the network is constant. Only an
  activation that maps negatives to 0 (ReLU) does this: a leaky ReLU or
  identity layer passes its negative pre-activations on, so its units are at
  most inactive.
- **signal collapse**: no layer is dead by sign, yet the output does not vary
  across the samples of x in float32: the differences between samples have
  been squeezed below float32 resolution on the way through the layers. This
  includes a signal that shrank until every pre-activation of a layer
  underflowed to exactly 0 (``underflowed_layers``).

Deep networks with a poor initialization reach signal collapse before mask death.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._validation import as_features, positive_int
from .layer_stream import DEFAULT_CHUNK_ROWS, stream_layers
from .model_input import as_mlp
from .scan import SCHEMA_VERSION, LayerScan, ScanReport


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
        """Whether some hidden layer fires on no sample at all."""
        return bool(self.fully_dead_layers)

    @property
    def signal_collapse(self) -> bool:
        """Whether the output is the same on every sample, with no layer fully dead."""
        return not self.mask_death and self.output_spread == 0.0

    @property
    def verdict(self) -> str:
        """The verdict in a few words: mask death, signal collapse, or alive."""
        if self.mask_death:
            return "mask death"
        if self.signal_collapse:
            return "signal collapse"
        return "alive"

    def to_dict(self) -> dict:
        """Return the report as a JSON-ready dict."""
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
        """Return the verdict and what it rests on, as a few lines of text."""
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


def born_dead(model: Any, x: npt.ArrayLike, *,
              chunk_size: int = DEFAULT_CHUNK_ROWS) -> BornDeadReport:
    """Check a model on x before training: mask death, signal collapse, or alive.

    One pass over x, ``chunk_size`` rows at a time (as ``scan``): the report's
    scan, the spreads and the verdict come from running statistics, so memory
    does not grow with the number of samples.

    Parameters
    ----------
    model : MLP, torch.nn.Sequential, or fitted sklearn MLPClassifier/MLPRegressor
        Converted first when it is not a reluscope MLP, as by ``scan``.
    x : array-like (n_samples, n_features)
        At least two distinct samples: on one sample (or copies of one) every
        output spread is 0, so "collapse" would mean nothing.
    chunk_size : int

    Returns
    -------
    BornDeadReport

    Raises
    ------
    ValueError
        When x has fewer than two distinct samples.
    NonFiniteActivations (a ValueError)
        When some pre-activation is NaN or Inf (x overflows float32 on the way
        through the layers, or a weight is NaN or Inf): the error names the
        layer, the samples and units affected and the likely cause, instead of
        taking the NaN the ReLU turns into 0 for a dead unit or a collapse.
    """
    model = as_mlp(model)
    model.check_layers()
    x = as_features(x, n_features=model.n_features)
    chunk_size = positive_int(chunk_size, "chunk_size")
    _require_distinct_samples(x, chunk_size)
    layers = model.layers
    n_hidden = len(layers) - 1
    counts = [np.zeros(layer.fan_out, dtype=np.int64) for layer in layers[:-1]]
    maxima = [np.full(layer.fan_out, -np.inf, dtype=np.float32) for layer in layers[:-1]]
    # Per layer (the output layer last): the running min and max of each unit's
    # output, whose difference is the spread, and whether any pre-activation is < 0.
    lowest = [np.full(layer.fan_out, np.inf, dtype=np.float32) for layer in layers]
    highest = [np.full(layer.fan_out, -np.inf, dtype=np.float32) for layer in layers]
    negative_anywhere = [False] * len(layers)
    stats = [*zip(counts, maxima), None]
    for i, _, pre, out in stream_layers(layers, x, chunk_size, stats=stats, keep_pre=True):
        np.minimum(lowest[i], out.min(axis=0), out=lowest[i])
        np.maximum(highest[i], out.max(axis=0), out=highest[i])
        if i < n_hidden and not negative_anywhere[i]:
            negative_anywhere[i] = bool((pre < 0).any())
    spreads = [float((high - low).max()) for low, high in zip(lowest, highest)]
    n = x.shape[0]
    report = ScanReport([LayerScan(i, c, m, n) for i, (c, m) in enumerate(zip(counts, maxima))],
                        n)
    fully_dead, underflowed = [], []
    masks = model.activation.zeroes_negatives
    for layer in report.layers:
        # The rule (rs::layer_verdict, shared with the born-dead experiment's kernel):
        # no unit fires and some pre-activation is negative: dead by sign; none
        # negative: every pre-activation is exactly 0, the signal underflowed.
        verdict = _core.layer_verdict(fires_anywhere=layer.n_dead < layer.n_units,
                                      negative_anywhere=negative_anywhere[layer.index])
        if verdict == _core.LayerVerdict.dead_by_sign and masks:
            fully_dead.append(layer.index)
        elif verdict == _core.LayerVerdict.underflowed and not fully_dead:
            underflowed.append(layer.index)
    return BornDeadReport(report, fully_dead, spreads[:-1], spreads[-1], underflowed)


def _require_distinct_samples(x: np.ndarray, chunk_size: int) -> None:
    """Raise a ValueError unless x holds two samples that differ (checked a chunk at a time)."""
    if x.shape[0] < 2:
        raise ValueError(f"born_dead needs at least two distinct samples of x, got "
                         f"{x.shape[0]}: on one sample no output can vary, so signal collapse "
                         f"cannot be told from a healthy network")
    first = x[0]
    for start in range(0, x.shape[0], chunk_size):
        if not (x[start:start + chunk_size] == first).all():
            return
    raise ValueError(f"born_dead needs at least two distinct samples of x, but all "
                     f"{x.shape[0]} samples are the same: no output can vary, so signal "
                     f"collapse cannot be told from a healthy network")
