"""A training callback that scans for dead units at initialization and after every epoch."""

from __future__ import annotations

import numpy as np

from ._validation import as_features, positive_int
from .callbacks import Callback
from .scan import SCHEMA_VERSION, ScanReport, scan


class DeadNeuronMonitor(Callback):
    """Exact dead-unit scans of ``x`` at the start of training and after each epoch.

    A unit is dead on ``x`` when its pre-activation is <= 0 for every sample of
    ``x`` (see ``reluscope.scan``). The scan runs at fixed weights between
    epochs, so "died in epoch e" means: alive in the scan after epoch e - 1 (or
    at initialization, epoch 0), dead in the scan after epoch e.

    Attributes
    ----------
    epochs : list of int
        The epoch of each scan; 0 is the model before training.
    reports : list of ScanReport
    deaths : list of (epoch, layer, unit)
        Alive -> dead transitions; epoch 0 lists units dead at initialization.
    revivals : list of (epoch, layer, unit)
        Dead -> alive transitions (possible for units past the first hidden
        layer, whose inputs change as the layers below train).
    """

    def __init__(self, x, chunk_size: int = 8192):
        self.x = as_features(x, "x_scan")
        self.chunk_size = positive_int(chunk_size, "chunk_size")
        self.epochs: list[int] = []
        self.reports: list[ScanReport] = []
        self.deaths: list[tuple[int, int, int]] = []
        self.revivals: list[tuple[int, int, int]] = []

    def on_train_begin(self, trainer) -> None:
        if self.x.shape[1] != trainer.model.n_features:
            raise ValueError(
                f"x_scan has {self.x.shape[1]} features but the first layer expects "
                f"{trainer.model.n_features}"
            )
        if not self.reports:
            self._record(trainer.epochs_done, trainer.model)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        self._record(epoch, trainer.model)

    def _record(self, epoch: int, model) -> None:
        report = scan(model, self.x, self.chunk_size)
        previous = self.reports[-1] if self.reports else None
        for layer in report.layers:
            dead_now = layer.firing_counts == 0
            dead_before = (previous.layers[layer.index].firing_counts == 0 if previous
                           else np.zeros_like(dead_now))
            self.deaths += [(epoch, layer.index, int(u))
                            for u in np.flatnonzero(dead_now & ~dead_before)]
            self.revivals += [(epoch, layer.index, int(u))
                              for u in np.flatnonzero(dead_before & ~dead_now)]
        self.epochs.append(epoch)
        self.reports.append(report)

    @property
    def dead_counts(self) -> np.ndarray:
        """Dead units per scan and hidden layer, shape (n_scans, n_hidden_layers)."""
        return np.array([[layer.n_dead for layer in r.layers] for r in self.reports],
                        dtype=np.int64).reshape(len(self.reports), -1)

    def died_in(self, epoch: int) -> dict[int, list[int]]:
        """``{layer: [units]}`` of the units that died in ``epoch`` (0: at initialization)."""
        died: dict[int, list[int]] = {}
        for e, layer, unit in self.deaths:
            if e == epoch:
                died.setdefault(layer, []).append(unit)
        return died

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "epochs": list(self.epochs),
            "dead_counts": self.dead_counts.tolist(),
            "deaths": [list(d) for d in self.deaths],
            "revivals": [list(r) for r in self.revivals],
            "scans": [r.to_dict() for r in self.reports],
        }

    def summary(self) -> str:
        """Dead units per layer at each scan, then when they died."""
        if not self.reports:
            return "No scans yet."
        n_layers = self.dead_counts.shape[1]
        header = "epoch  " + "  ".join(f"layer {i}" for i in range(n_layers))
        lines = [f"Dead units on {self.x.shape[0]} samples, per hidden layer", header]
        for epoch, counts in zip(self.epochs, self.dead_counts):
            lines.append(f"{epoch:>5}  " + "  ".join(f"{c:>7}" for c in counts))
        for epoch in sorted({e for e, _, _ in self.deaths}):
            per_layer = ", ".join(f"layer {layer}: {len(units)}"
                                  for layer, units in sorted(self.died_in(epoch).items()))
            when = "at initialization" if epoch == 0 else f"in epoch {epoch}"
            lines.append(f"died {when}: {per_layer}")
        if self.revivals:
            lines.append(f"revived: {len(self.revivals)} unit(s)")
        return "\n".join(lines)
