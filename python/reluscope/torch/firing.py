"""Firing counts of a module's units in its training forward passes, kept on its device."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .column_counts import add_firing_counts
from .sites import Site, SiteKey, SiteWatcher, site_names


class SiteRegistry:
    """The sites of one module in a fixed order: the layer index of each, for every report.

    Each site's width (its producer's weight rows: units or channels) is kept
    as first seen: a monitor follows one set of units.
    """

    def __init__(self) -> None:
        self.sites: list[Site] = []
        self.index: dict[SiteKey, int] = {}
        self.widths: list[int] = []

    def add(self, site: Site) -> int:
        """Return the layer index of ``site``, registering it when new."""
        if site.key not in self.index:
            self.index[site.key] = len(self.sites)
            self.sites.append(site)
            self.widths.append(_width(site))
        return self.index[site.key]

    def check_widths(self) -> None:
        """Raise a ValueError naming each site whose width changed since it was registered."""
        changed = [index for index, (site, before) in enumerate(zip(self.sites, self.widths))
                   if _width(site) != before]
        if changed:  # names only now: this runs at every training forward
            names = site_names(self.sites)
            described = ", ".join(f"layer {names[index]!r} has {_width(self.sites[index])} units "
                                  f"where it had {self.widths[index]}" for index in changed)
            raise ValueError(
                f"{described} when the monitor first saw it: a DeadUnitMonitor follows one set "
                "of units; close it (monitor.close()) and start a new one for the changed model")


def _width(site: Site) -> int:
    """Return the site's units now: its producer's weight rows.

    Not ``out_features``, which is not updated when the weight is swapped for
    one of another shape.
    """
    return int(site.producer.weight.shape[0])


class TrainingFiring:
    """Per site, the samples on which each unit fired in training forwards (``module.training``).

    Per batch, one comparison and one sum over the samples, on the module's
    device; nothing is copied to the host until ``take_epoch``. The counts
    since the last optimizer step are also kept (``fired_since_step``), for
    the update tracker.

    A site not seen in this epoch's training forwards has unknown counts, not
    zeros: in training, something may stand between its producer and its ReLU
    (Dropout makes a new tensor), or the module ran in eval mode.
    """

    def __init__(self, module: nn.Module, registry: SiteRegistry):
        self.registry = registry
        self.forwards = 0
        self.seen: set[int] = set()  # site indices counted in this epoch's training forwards
        self._epoch_counts: dict[int, torch.Tensor] = {}
        self._at_step: dict[int, torch.Tensor] = {}
        self._module = module
        self._watcher = SiteWatcher(module, self._count, enabled=self._training)

    def _training(self) -> bool:
        """Whether this forward pass counts; refuses changed widths before any site counts."""
        if self._module.training:
            self.registry.check_widths()
            self.forwards += 1
            return True
        return False

    def _count(self, site: Site, pre_activation: torch.Tensor) -> None:
        index = self.registry.add(site)
        pre_activation = pre_activation.detach()
        counts = self._epoch_counts.get(index)
        if (counts is not None and isinstance(site.producer, nn.Linear)
                and pre_activation.dim() == 2 and pre_activation.shape[0] > 0
                and add_firing_counts(counts, pre_activation)):
            self.seen.add(index)  # counted in place by the C++ core (column_counts)
            return
        fired = site.fired_per_sample(pre_activation)
        if fired.shape[0] == 0:
            return  # an empty batch says nothing of the site's units
        self.seen.add(index)
        fired = fired.sum(0)
        if counts is None:
            self._epoch_counts[index] = fired
            self._at_step[index] = torch.zeros_like(fired)
        else:
            counts += fired

    def fired_since_step(self, index: int) -> torch.Tensor | None:
        """(n_units,) bool: the units of site ``index`` that fired since the last ``mark_step``."""
        if index not in self.seen:
            return None  # unknown, not "none fired": no last-firing record is written
        return self._epoch_counts[index] != self._at_step[index]

    def mark_step(self) -> None:
        """Remember the counts at this step, to tell what the next one adds."""
        for index, counts in self._epoch_counts.items():
            self._at_step[index].copy_(counts)

    def epoch_counts(self) -> list[np.ndarray | None]:
        """Per registered site, this epoch's counts so far (None: not seen in training)."""
        return [self._epoch_counts[index].cpu().numpy().copy() if index in self.seen else None
                for index in range(len(self.registry.sites))]

    def take_epoch(self) -> list[np.ndarray | None]:
        """``epoch_counts``, then zero them for the next epoch."""
        taken = self.epoch_counts()
        for index, counts in self._epoch_counts.items():
            counts.zero_()
            self._at_step[index].zero_()
        self.seen.clear()
        return taken

    def remove(self) -> None:
        """Remove the hooks."""
        self._watcher.remove()
