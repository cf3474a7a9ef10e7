"""The update each unit's incoming weights took right after the last step in which it fired.

Through the optimizer's step hooks (``Optimizer.register_step_pre_hook`` and
``register_step_post_hook``, which run around every ``optimizer.step()``):
before the step, each tracked producer's weight and bias are copied into
buffers allocated once; after it, per unit j,

    ||dw_j||,   db_j,   ||dw_j|| / ||w_j(before)||

and the layer's medians of ||dw||, |db| and the ratio (the upper median, as
the native trainer's), in torch ops on the module's device. Units that fired
since the previous step get these values, with the step number and the lr, in
their row of ``last_firing``: the fields of ``reluscope.tracking.LAST_FIRING_FIELDS``,
filled as the C++ training step fills them. If the unit never fires again,
that row describes the update that killed it.

Only producers whose weight the optimizer updates are tracked; which those are is
looked up again whenever the optimizer's parameters change (``add_param_group``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..tracking import LAST_FIRING_DTYPE, LAST_FIRING_FIELDS, UnitStats
from .firing import SiteRegistry, TrainingFiring


class _ProducerUpdate:
    """Before-step copies of one producer's parameters, and the update statistics after."""

    def __init__(self, producer):
        self.producer = producer
        self.weight_before = torch.empty_like(self._weight_rows())
        bias = producer.bias
        self.bias_before = None if bias is None else torch.empty_like(bias.detach())

    def _weight_rows(self) -> torch.Tensor:
        # Row j: the weights into unit j (a conv kernel of output channel j, flattened).
        return self.producer.weight.detach().flatten(1)

    def before_step(self) -> None:
        self.weight_before.copy_(self._weight_rows())
        if self.bias_before is not None:
            self.bias_before.copy_(self.producer.bias.detach())

    def after_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(3, n_units): ||dw_j||, db_j, ||dw_j|| / ||w_j||; and (3,): their layer medians
        (of |db| for the bias), the upper median as the native trainer's. On the device.

        Few, whole-tensor ops: on a tiny network each op's call costs more than its work.
        """
        old_norm = torch.linalg.vector_norm(self.weight_before, dim=1)
        delta = self.weight_before.sub_(self._weight_rows())  # -dw, in the buffer
        norm = torch.linalg.vector_norm(delta, dim=1)
        # 0/0 is 0 (no update); x/0 is inf (a zero weight vector that moved).
        relative = torch.where(norm > 0, norm / old_norm, 0.0)
        bias_update = (torch.zeros_like(norm) if self.bias_before is None
                       else self.producer.bias.detach() - self.bias_before)
        units = torch.stack([norm, bias_update, relative])
        magnitudes = torch.stack([norm, bias_update.abs(), relative])
        medians = torch.kthvalue(magnitudes, norm.shape[0] // 2 + 1, dim=1).values
        return units, medians


class UpdateTracker:
    """Last-firing records of every site whose producer ``optimizer`` updates."""

    FIELDS = ("step", "lr", "update_norm", "bias_update", "relative_update",
              "layer_median_update_norm", "layer_median_bias_update",
              "layer_median_relative_update")

    def __init__(self, optimizer: torch.optim.Optimizer, registry: SiteRegistry,
                 firing: TrainingFiring):
        if LAST_FIRING_FIELDS != self.FIELDS:
            raise RuntimeError(f"last-firing fields are now {LAST_FIRING_FIELDS}; update "
                               "UpdateTracker._record")
        self.optimizer = optimizer
        self.registry = registry
        self.firing = firing
        self.steps = 0
        self._producers: dict = {}  # producer module -> _ProducerUpdate (None: not optimized)
        self._groups: dict = {}  # producer module -> its param group (its lr is read per step)
        self._records: dict[int, torch.Tensor] = {}  # site index -> (n_units, n_fields) float64
        self._optimized: list = []  # per param group, the ids of its params when last looked
        self._handles = [optimizer.register_step_pre_hook(self._before_step),
                         optimizer.register_step_post_hook(self._after_step)]

    def _group_of(self, producer) -> dict | None:
        """The optimizer's param group holding ``producer.weight`` (None: not optimized)."""
        weight = producer.weight
        for group in self.optimizer.param_groups:
            if any(p is weight for p in group["params"]):
                return group
        return None

    def _before_step(self, optimizer, args, kwargs) -> None:
        # A few hundred ids per step: cheaper than one step's tensor ops. On a change, every
        # producer is looked up again (a new group may hold one cached as not optimized).
        optimized = [[id(p) for p in group["params"]] for group in self.optimizer.param_groups]
        if optimized != self._optimized:
            self._optimized = optimized
            self._producers.clear()
            self._groups.clear()
        for site in self.registry.sites:
            producer = site.producer
            if producer not in self._producers:
                group = self._group_of(producer)
                self._groups[producer] = group
                self._producers[producer] = None if group is None else _ProducerUpdate(producer)
        for update in self._producers.values():
            if update is not None:
                update.before_step()

    def _after_step(self, optimizer, args, kwargs) -> None:
        self.steps += 1
        statistics = {producer: update.after_step()
                      for producer, update in self._producers.items() if update is not None}
        for index, site in enumerate(self.registry.sites):
            stats = statistics.get(site.producer)
            fired = self.firing.fired_since_step(index)
            if stats is None or fired is None:
                continue
            self._record(index, fired, stats, float(self._groups[site.producer]["lr"]))
        self.firing.mark_step()

    def _record(self, index: int, fired: torch.Tensor, stats: tuple, lr: float) -> None:
        units, medians = stats
        n_units = fired.shape[0]
        records = self._records.get(index)
        if records is None:
            records = torch.full((n_units, len(LAST_FIRING_FIELDS)), torch.nan,
                                 dtype=torch.float64, device=fired.device)
            records[:, 0] = -1
            self._records[index] = records
        # Columns in LAST_FIRING_FIELDS order: step, lr, the unit's update, the medians.
        step_and_lr = torch.tensor([float(self.steps), lr], dtype=torch.float64)
        row = torch.cat([step_and_lr.to(fired.device).expand(n_units, 2), units.T,
                         medians.expand(n_units, 3)], dim=1)
        torch.where(fired.unsqueeze(1), row, records, out=records)

    def unit_stats(self) -> list[UnitStats]:
        """Per registered site, a ``UnitStats`` whose ``last_firing`` holds the records."""
        stats = []
        for index, site in enumerate(self.registry.sites):
            unit_stats = UnitStats(site.n_units)
            records = self._records.get(index)
            if records is not None:
                unit_stats.last_firing[:] = np.ascontiguousarray(
                    records.cpu().numpy()).view(LAST_FIRING_DTYPE).reshape(site.n_units)
            stats.append(unit_stats)
        return stats

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
