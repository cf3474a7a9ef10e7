"""Why a unit's margin fell: its own weights, its bias, or the layer below.

A unit j of hidden layer l has margin m = max_n (X_n . w_j + b_j) over the
scanned samples, where X is what layer l reads (the data for l = 0, the
activations of layer l - 1 otherwise). It is dead exactly when m <= 0. Between
scan A (the last where it was alive) and scan B (the first that found it dead)
three things changed: w_j, b_j and X. The fall m_A - m_B splits exactly into

    weights:  m(w_A, b_A, X_A) - m(w_B, b_A, X_A)   its incoming weights moved
    bias:     b_A - b_B                             its bias moved
    upstream: m(w_B, b_B, X_A) - m(w_B, b_B, X_B)   the layer below changed

a telescoping sum: the unit's own change is measured with its inputs held at
the earlier scan, the change below it with its own weights held at the later
scan. Shares are parts of the fall, so they add up to 1; a part can be
negative (it raised the margin) and another then exceeds 1.

``LayerInputs`` recomputes X at a scan from the weights the history kept of
that scan, in chunks of rows (the margin is a max over every sample, so no
sample can be skipped), in float32 as the model computes, with the per-unit
projections in float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .layer_weights import HiddenLayerWeights


@dataclass(frozen=True)
class MarginAttribution:
    """The fall of one unit's margin between two scans, split by what moved.

    Attributes
    ----------
    margin_before, margin_after : float
        The margin at the last scan where the unit was alive and at the scan
        that found it dead, recomputed from the kept weights.
    weights, bias, upstream : float
        How much of the fall each caused (see the module docstring); they add
        up to ``margin_before - margin_after``.
    """

    margin_before: float
    margin_after: float
    weights: float
    bias: float
    upstream: float

    @property
    def fall(self) -> float:
        """How far the margin fell between the two scans."""
        return self.margin_before - self.margin_after

    @property
    def own_share(self) -> float:
        """The share of the fall caused by the unit's own weights and bias."""
        return (self.weights + self.bias) / self.fall

    @property
    def upstream_share(self) -> float:
        """The share of the fall caused by the layer below (0 in the first layer)."""
        return self.upstream / self.fall

    @property
    def bias_dominated(self) -> bool:
        """Whether the bias moved the margin down more than the weights did."""
        return self.bias > self.weights

    def to_dict(self) -> dict:
        """Return the fields and the two shares, as a JSON-ready dict."""
        return {**asdict(self), "own_share": self.own_share,
                "upstream_share": self.upstream_share}

    @classmethod
    def from_dict(cls, fields: dict) -> MarginAttribution:
        """Rebuild an attribution from ``to_dict``'s fields."""
        return cls(**{name: fields[name] for name in
                      ("margin_before", "margin_after", "weights", "bias", "upstream")})


def why_not_attributable(before: HiddenLayerWeights | None, x, layer: int) -> str | None:
    """Why the margin of a unit of ``layer`` cannot be split; None when it can."""
    if before is None:
        return ("the weights at the scan before its death were not kept (a history restored "
                "from a checkpoint of an earlier reluscope version)")
    if x is None:
        return "the scanned data are not one 2-D array, so the layer inputs cannot be recomputed"
    if before.rectifiers is None or not all(before.chained[:layer + 1]):
        return ("the layers up to this one are not a chain of dense layers from the data, so "
                "the layer inputs cannot be recomputed")
    return None


class LayerInputs:
    """Margins of chosen units at two scans, recomputed from the weights kept of each."""

    def __init__(self, x: np.ndarray, before: HiddenLayerWeights, after: HiddenLayerWeights,
                 chunk_rows: int = 8192):
        self.x = x
        self.before = before
        self.after = after
        self.chunk_rows = chunk_rows

    def attribute(self, layer: int, units) -> list[MarginAttribution]:
        """Return the attribution of each unit of ``layer`` in ``units`` (dead now, alive then)."""
        units = np.asarray(units, dtype=np.intp)
        w_a = self.before.incoming[layer][units].astype(np.float64).T  # (fan_in, n)
        w_b = self.after.incoming[layer][units].astype(np.float64).T
        b_a = self.before.biases[layer][units].astype(np.float64)
        b_b = self.after.biases[layer][units].astype(np.float64)
        # Running maxima over the samples of X_A w_A, X_A w_B and X_B w_B.
        best = np.full((3, units.size), -np.inf)
        for start in range(0, self.x.shape[0], self.chunk_rows):
            rows = self.x[start:start + self.chunk_rows]
            x_a = _inputs_of(self.before, rows, layer).astype(np.float64)
            x_b = _inputs_of(self.after, rows, layer).astype(np.float64)
            for k, projection in enumerate((x_a @ w_a, x_a @ w_b, x_b @ w_b)):
                np.maximum(best[k], projection.max(axis=0, initial=-np.inf), out=best[k])
        own_before, own_after_inputs_before, after = best
        return [MarginAttribution(
            margin_before=float(own_before[i] + b_a[i]),
            margin_after=float(after[i] + b_b[i]),
            weights=float(own_before[i] - own_after_inputs_before[i]),
            bias=float(b_a[i] - b_b[i]),
            upstream=float(own_after_inputs_before[i] - after[i]))
            for i in range(units.size)]


def _inputs_of(weights: HiddenLayerWeights, x: np.ndarray, layer: int) -> np.ndarray:
    """Return what hidden layer ``layer`` reads for the rows x, through the layers below it."""
    # why_not_attributable turned away the weights without rectifiers before we got here.
    assert weights.rectifiers is not None, "the layer inputs cannot be recomputed"
    h = np.asarray(x, dtype=np.float32)
    for below in range(layer):
        pre = h @ weights.incoming[below].T + weights.biases[below]
        h = weights.rectifiers[below].apply(pre)
    return h
