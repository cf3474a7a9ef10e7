"""Death certificates: why a unit that a scan found dead died.

A death is seen between two scans: A, the last where the unit was alive, and
B, the scan that found it dead. The history keeps the hidden layers' weights
at both, so the fall of the unit's margin (its largest pre-activation over the
scanned x) is split exactly into what its own incoming weights did, what its
bias did, and what the layer below did (``reluscope.attribution``). The primary
cause, judged by ``CauseRules.certify``:

1. ``born dead``: dead at the first scan (before training).
2. ``upstream shift``: the layer below did more than half of the fall
   (``upstream_share > 0.5``): its units changed under this one, which
   includes starvation (``starved`` among the conditions: the units feeding it
   went silent, or half the layer below died).
3. ``large update``: the unit's own weights and bias did at least half of the
   fall, and the update right after its last firing step was large: its
   relative size ||dw_j|| / ||w_j|| is over ``large_update_factor`` (10) times
   the layer's median at that step, or over ``large_relative_update`` (0.5: one
   step moved its weights by half their norm), or the layer's median itself is
   over a fifth of that (0.1: a step too large for the whole layer). The
   certificate gives the step, the lr and these sizes.
4. ``drift``: its own weights and bias did at least half of the fall, over
   many steps (no single step was large). ``drift_by`` says whether the bias or
   the weights did more of it.
5. ``unclassified``: only when the fall cannot be split; ``note`` says why
   (weights at the earlier scan not kept, scanned data not one 2-D array, a
   layer not in a chain of dense layers, or a fall within rounding of 0).

Conditions that contribute, listed apart from the cause (``conditions``):

- ``inputs not centered``: a first-layer unit, on data whose features are all
  non-negative, that fires on some sample once the data are centered;
- ``weight decay``: the optimizer decays the weights (it pulls a dead unit's
  weights and bias further towards 0, never back to firing);
- ``momentum after last firing``: the optimizer keeps state (SGD momentum,
  Adam's moments) that went on moving the unit after its last firing step,
  when its gradient was already 0;
- ``layer-wide large step``: the layer's median relative update at the
  killing step was over 0.1;
- ``starved``: see above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import finite_float
from .attribution import LayerInputs, MarginAttribution, why_not_attributable
from .layer_weights import HiddenLayerWeights

if TYPE_CHECKING:
    from .model import MLP
    from .scan import LayerScan
    from .unit_history import UnitHistory

CAUSES = ("born dead", "large update", "drift", "upstream shift", "unclassified")
CONDITIONS = ("inputs not centered", "weight decay", "momentum after last firing",
              "layer-wide large step", "starved")
UPSTREAM_SHARE = 0.5  # more than this share of the fall from the layer below: upstream shift
LAYER_WIDE_MEDIAN_FACTOR = 0.2  # a layer median over this times large_relative_update


@dataclass(frozen=True)
class OptimizerTraits:
    """What the cause rules need to know of the optimizer that trained the model."""

    weight_decay: float = 0.0
    keeps_moving: bool = False  # momentum or moments move weights after the gradient stops

    @classmethod
    def of(cls, optimizer: Any) -> OptimizerTraits:
        """Return the traits of a reluscope optimizer or a ``torch.optim`` one.

        A torch optimizer is read through its param groups; None gives the
        defaults (nothing known).
        """
        if optimizer is None:
            return cls()
        groups = getattr(optimizer, "param_groups", None)
        if groups is not None:
            return cls(max(float(g.get("weight_decay", 0.0)) for g in groups),
                       any(g.get("momentum", 0.0) or "betas" in g for g in groups))
        momentum = float(getattr(optimizer, "momentum", 0.0))
        return cls(float(optimizer.weight_decay),
                   momentum > 0 or getattr(optimizer, "kind", None) is not None
                   and optimizer.kind.name == "adam")


@dataclass
class DeathCertificate:
    """One death seen by a scan.

    The update fields come from the unit's last-firing record
    (``Trainer(track_deaths=True)``): the last training step in which the unit
    fired, and the update made right after it. They are None when the unit
    never fired in training (or nothing was tracked).

    ``attribution`` splits the fall of the unit's margin between the scan
    before its death and the scan that found it (None for ``born dead`` and
    ``unclassified``); ``step_share`` is the killing step's update as a share
    of all the unit's movement between those scans (the norm of (dw_j, db_j)
    over the norm of its total change); ``drift_by`` is "bias" or "weights" for
    a drift; ``conditions`` lists contributing conditions (see the module
    docstring); ``note`` says why a death is unclassified.
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
    attribution: MarginAttribution | None = None
    step_share: float | None = None
    drift_by: str | None = None
    conditions: list = field(default_factory=list)
    note: str | None = None

    @classmethod
    def from_record(cls, layer: int, unit: int, epoch: int,
                    record: dict | None) -> DeathCertificate:
        """Return a certificate (cause not yet judged) from a last-firing record or None."""
        if record is None:
            return cls(layer, unit, epoch)
        fields = {name: value for name, value in record.items() if name != "step"}
        return cls(layer, unit, epoch, last_fired_step=int(record["step"]), **fields)

    @property
    def cause_text(self) -> str:
        """The cause with the part that drifted: "drift (bias)", "drift (weights)"."""
        if self.cause == "drift" and self.drift_by:
            return f"drift ({self.drift_by})"
        return self.cause

    def to_dict(self) -> dict:
        """Return the certificate as a JSON-ready dict."""
        fields = asdict(self)
        fields["attribution"] = None if self.attribution is None else self.attribution.to_dict()
        fields["conditions"] = list(self.conditions)
        return fields

    @classmethod
    def from_dict(cls, fields: dict) -> DeathCertificate:
        """Return the certificate ``to_dict`` wrote (also one saved before attribution existed)."""
        fields = dict(fields)
        if fields.get("attribution") is not None:
            fields["attribution"] = MarginAttribution.from_dict(fields["attribution"])
        fields["conditions"] = list(fields.get("conditions", []))
        return cls(**fields)


@dataclass(frozen=True)
class CauseRules:
    """The thresholds of the cause rules (see the module docstring)."""

    large_update_factor: float = 10.0
    large_relative_update: float = 0.5

    def __post_init__(self) -> None:
        """Check the thresholds: finite and > 0."""
        # A NaN threshold compares false everywhere: no death would be a large update.
        for name in ("large_update_factor", "large_relative_update"):
            value = finite_float(getattr(self, name), name, low=0.0, low_open=True)
            object.__setattr__(self, name, value)

    def certify(self, history: UnitHistory, model: MLP | HiddenLayerWeights, layer: int,
                unit: int, record: dict | None,
                optimizer: OptimizerTraits | None = None) -> DeathCertificate:
        """Return the certificate of a unit that the latest scan of ``history`` found dead.

        ``model`` is the ``MLP`` at that scan, or its ``HiddenLayerWeights``
        (what a scan of another framework's model records). To certify many
        deaths of one scan, ``certify_all`` recomputes the layer inputs once.
        """
        return self.certify_all(history, model, [(layer, unit, record)], optimizer)[0]

    def certify_all(self, history: UnitHistory, model: MLP | HiddenLayerWeights,
                    deaths: Iterable[tuple[int, int, dict | None]],
                    optimizer: OptimizerTraits | None = None) -> list[DeathCertificate]:
        """Certify the deaths that the latest scan of ``history`` found.

        ``deaths`` holds ``(layer, unit, last-firing record or None)`` triples.
        """
        if not history.reports:
            raise ValueError("the history has no scan yet: observe the model first")
        weights = _weights_of(model)
        widths = [layer.n_units for layer in history.reports[-1].layers]
        for layer, unit, _ in deaths:
            if not 0 <= layer < len(widths) or not 0 <= unit < widths[layer]:
                raise ValueError(f"no unit {unit} in hidden layer {layer}; the hidden layers "
                                 f"have {widths} units")
        optimizer = optimizer or OptimizerTraits()
        certificates = [DeathCertificate.from_record(layer, unit, history.epochs[-1], record)
                        for layer, unit, record in deaths]
        if len(history.reports) == 1:
            for certificate in certificates:
                certificate.cause = "born dead"
            return certificates
        for certificate, attribution in zip(certificates,
                                            self._attributions(history, weights, certificates)):
            self._judge(certificate, attribution, history, weights, optimizer)
        return certificates

    def _attributions(self, history, weights: HiddenLayerWeights, certificates) -> list:
        """Per certificate, its ``MarginAttribution`` or the reason there is none."""
        before = history.weights_before_latest
        by_layer: dict[int, list[int]] = {}
        for index, c in enumerate(certificates):
            by_layer.setdefault(c.layer, []).append(index)
        results: list = [None] * len(certificates)
        inputs = None
        for layer, indices in by_layer.items():
            reason = why_not_attributable(before, history.x, layer)
            if reason is None and not all(weights.chained[:layer + 1]):
                reason = why_not_attributable(weights, history.x, layer)
            if reason is not None:
                for index in indices:
                    results[index] = reason
                continue
            inputs = inputs or LayerInputs(history.x, before, weights, history.chunk_size)
            found = inputs.attribute(layer, [certificates[i].unit for i in indices])
            for index, attribution in zip(indices, found):
                results[index] = attribution
        return results

    def _judge(self, certificate: DeathCertificate, attribution, history,
               weights: HiddenLayerWeights, optimizer: OptimizerTraits) -> None:
        """Set the cause, the evidence and the conditions of a death after training began."""
        certificate.conditions = self._conditions(certificate, history, weights, optimizer)
        if isinstance(attribution, str):
            certificate.note = attribution
            return
        if not attribution.fall > 0:
            certificate.note = (f"the margin did not fall measurably "
                                f"({attribution.margin_before:.3g} to "
                                f"{attribution.margin_after:.3g} recomputed): the scan's "
                                "verdict rests on float32 rounding")
            return
        certificate.attribution = attribution
        certificate.step_share = _step_share(certificate, history, weights)
        if attribution.upstream_share > UPSTREAM_SHARE:
            certificate.cause = "upstream shift"
        elif self.is_large_update(certificate):
            certificate.cause = "large update"
        else:
            certificate.cause = "drift"
            certificate.drift_by = "bias" if attribution.bias_dominated else "weights"

    def _conditions(self, certificate: DeathCertificate, history, weights: HiddenLayerWeights,
                    optimizer: OptimizerTraits) -> list[str]:
        layer, unit = certificate.layer, certificate.unit
        conditions = []
        centered = history.centered_if_nonnegative()
        if layer == 0 and centered is not None and weights.chained[0]:
            if np.any(centered @ weights.incoming[0][unit] + weights.biases[0][unit] > 0):
                conditions.append("inputs not centered")
        if optimizer.weight_decay > 0:
            conditions.append("weight decay")
        if (optimizer.keeps_moving and certificate.last_fired_step is not None
                and certificate.last_fired_step < history.steps[-1]):
            conditions.append("momentum after last firing")
        median = certificate.layer_median_relative_update
        if median is not None and median > LAYER_WIDE_MEDIAN_FACTOR * self.large_relative_update:
            conditions.append("layer-wide large step")
        if layer > 0 and weights.chained[layer] and starved(
                history.reports[-1].layers[layer - 1], weights, layer, unit):
            conditions.append("starved")
        return conditions

    def is_large_update(self, certificate: DeathCertificate) -> bool:
        """Whether the certificate's killing update counts as a large one."""
        relative, median = certificate.relative_update, certificate.layer_median_relative_update
        return relative is not None and median is not None and (
            relative > self.large_relative_update
            or relative > self.large_update_factor * median
            or median > LAYER_WIDE_MEDIAN_FACTOR * self.large_relative_update)


def _step_share(certificate: DeathCertificate, history, weights: HiddenLayerWeights):
    """Return the killing step's share of the unit's movement between the two scans.

    Both are the norm of (dw_j, db_j); None without a record or a kept earlier scan.
    """
    before = history.weights_before_latest
    if certificate.update_norm is None or before is None:
        return None
    layer, unit = certificate.layer, certificate.unit
    moved = float(np.linalg.norm(weights.incoming_with_bias(layer, unit).astype(np.float64)
                                 - before.incoming_with_bias(layer, unit)))
    step = float(np.hypot(certificate.update_norm, certificate.bias_update or 0.0))
    return step / moved if moved > 0 else None


def _weights_of(model) -> HiddenLayerWeights:
    """``model``'s hidden-layer weights: an MLP's (checked), or the weights themselves."""
    if isinstance(model, HiddenLayerWeights):
        return model
    model.check_layers()
    return HiddenLayerWeights.of_mlp(model)


def starved(below: LayerScan, model: MLP | HiddenLayerWeights, layer: int, unit: int) -> bool:
    """Whether ``unit`` is starved by the layer below (its scan ``below``).

    Starved: the units of the layer below that feed ``unit`` are all silent, or
    at least half of that layer is dead.

    ``model``: an MLP or the ``HiddenLayerWeights`` of a chain.
    """
    if below.dead_fraction >= 0.5:
        return True
    feeding = np.flatnonzero(_weights_of(model).incoming[layer][unit] != 0)
    silent = below.firing_counts[feeding] == 0
    if below.mean_abs_activation is not None:
        silent |= below.mean_abs_activation[feeding] == 0
    return bool(feeding.size and silent.all())
