"""Death certificates: why a unit that a scan found dead died.

``CauseRules.certify`` is pure: from the unit history (the scans so far, the
latest of which found the unit dead), the model at that scan and the unit's
last-firing record from training, it returns a ``DeathCertificate``. The causes,
the first rule that matches being the cause:

1. ``born dead``: dead at the first scan (before training);
2. ``inputs not centered``: a first-layer unit, on data whose features are all
   non-negative, that fires on some sample once the data are centered;
3. ``large update``: the killing update's relative size ||dw_j|| / ||w_j|| is
   more than ``large_update_factor`` (10) times the layer's median at that step;
   or more than ``large_relative_update`` (0.5: the step moved the unit's
   weights by half their norm); or the layer's median itself is more than a
   fifth of that (0.1): a step too large for the whole layer at once, which also
   kills units whose own change was modest by moving their inputs;
4. ``starved``: at this scan, every unit of the layer below that feeds it
   (nonzero weight) is dead or has zero mean |activation|, or at least half of
   the layer below is dead;
5. ``bias drift``: its bias fell at each of the last two scans;
6. ``unclassified`` otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._validation import finite_float
from .layer_weights import HiddenLayerWeights

CAUSES = ("born dead", "inputs not centered", "large update", "starved", "bias drift",
          "unclassified")


@dataclass
class DeathCertificate:
    """One death seen by a scan.

    The update fields come from the unit's last-firing record
    (``Trainer(track_deaths=True)``): the last training step in which the unit
    fired, and the update made right after it. They are None when the unit
    never fired in training (or nothing was tracked).
    """

    layer: int
    unit: int
    confirmed_by_scan_after_epoch: int
    last_fired_step: int | None = None
    lr: float | None = None
    update_norm: float | None = None
    bias_update: float | None = None
    relative_update: float | None = None
    layer_median_update_norm: float | None = None
    layer_median_bias_update: float | None = None
    layer_median_relative_update: float | None = None
    cause: str = "unclassified"

    @classmethod
    def from_record(cls, layer: int, unit: int, epoch: int, record: dict | None):
        """A certificate (cause not yet judged) from a last-firing record or None."""
        if record is None:
            return cls(layer, unit, epoch)
        fields = {name: value for name, value in record.items() if name != "step"}
        return cls(layer, unit, epoch, last_fired_step=int(record["step"]), **fields)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CauseRules:
    """The thresholds of the cause rules (see the module docstring)."""

    large_update_factor: float = 10.0
    large_relative_update: float = 0.5

    def __post_init__(self):
        # A NaN threshold compares false everywhere: no death would be a large update.
        for name in ("large_update_factor", "large_relative_update"):
            value = finite_float(getattr(self, name), name, low=0.0, low_open=True)
            object.__setattr__(self, name, value)

    def certify(self, history, model, layer: int, unit: int,
                record: dict | None) -> DeathCertificate:
        """The certificate of a unit that the latest scan of ``history`` found dead.

        ``model`` is the ``MLP`` at that scan, or its ``HiddenLayerWeights``
        (what a scan of another framework's model records).
        """
        if not history.reports:
            raise ValueError("the history has no scan yet: observe the model first")
        weights = _weights_of(model)
        widths = [layer.n_units for layer in history.reports[-1].layers]
        if not 0 <= layer < len(widths) or not 0 <= unit < widths[layer]:
            raise ValueError(f"no unit {unit} in hidden layer {layer}; the hidden layers have "
                             f"{widths} units")
        certificate = DeathCertificate.from_record(layer, unit, history.epochs[-1], record)
        certificate.cause = self.cause(certificate, history, weights)
        return certificate

    def cause(self, certificate: DeathCertificate, history, model) -> str:
        """The first rule that matches the death, judged at the latest scan of ``history``.

        The rules that read weights ("inputs not centered", "starved") apply only
        where ``HiddenLayerWeights.chained`` says the layer's inputs are the data's
        features or the units of the layer below.
        """
        weights = _weights_of(model)
        layer, unit = certificate.layer, certificate.unit
        if len(history.reports) == 1:
            return "born dead"
        centered = history.centered_if_nonnegative()
        if layer == 0 and centered is not None and weights.chained[0]:
            if np.any(centered @ weights.incoming[0][unit] + weights.biases[0][unit] > 0):
                return "inputs not centered"
        if self.is_large_update(certificate):
            return "large update"
        if layer > 0 and weights.chained[layer] and starved(
                history.reports[-1].layers[layer - 1], weights, layer, unit):
            return "starved"
        if len(history.bias_history) >= 3:
            recent = [biases[layer][unit] for biases in history.bias_history[-3:]]
            if recent[0] > recent[1] > recent[2]:
                return "bias drift"
        return "unclassified"

    def is_large_update(self, certificate: DeathCertificate) -> bool:
        relative, median = certificate.relative_update, certificate.layer_median_relative_update
        return relative is not None and median is not None and (
            relative > self.large_relative_update
            or relative > self.large_update_factor * median
            or median > self.large_relative_update / 5)


def _weights_of(model) -> HiddenLayerWeights:
    """``model``'s hidden-layer weights: an MLP's (checked), or the weights themselves."""
    if isinstance(model, HiddenLayerWeights):
        return model
    model.check_layers()
    return HiddenLayerWeights.of_mlp(model)


def starved(below, model, layer: int, unit: int) -> bool:
    """Whether the units of the layer below (its scan ``below``) that feed ``unit`` are all
    silent, or at least half of that layer is dead.

    ``model``: an MLP or the ``HiddenLayerWeights`` of a chain."""
    if below.dead_fraction >= 0.5:
        return True
    feeding = np.flatnonzero(_weights_of(model).incoming[layer][unit] != 0)
    silent = below.firing_counts[feeding] == 0
    if below.mean_abs_activation is not None:
        silent |= below.mean_abs_activation[feeding] == 0
    return bool(feeding.size and silent.all())
