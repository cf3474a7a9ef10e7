"""What every dead-unit monitor shows: its history read through, the JSON, the text and the HTML.

A monitor (the native ``reluscope.DeadUnitMonitor``, ``reluscope.torch.DeadUnitMonitor``)
owns a ``history`` (``UnitHistory``), ``certificates``, ``silent`` and
``silent_unit_gradients``; this mixin reads them. It keeps no state of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._strict_json import strict_document
from .scan import SCHEMA_VERSION, ScanReport

if TYPE_CHECKING:
    from .causes import DeathCertificate
    from .unit_history import UnitHistory


class MonitorReadout:
    """Read-only views and renderings of a monitor's history and certificates."""

    # What the monitor that mixes this in owns (annotations only: no class attributes).
    history: UnitHistory
    certificates: list[DeathCertificate]
    silent: list[tuple[int, list]]
    silent_unit_gradients: list[tuple[int, list]]

    # The history, read through.

    @property
    def x(self) -> np.ndarray | None:
        """The scanned samples (None when they are not one feature matrix)."""
        return self.history.x

    @property
    def epochs(self) -> list[int]:
        """The epoch of every scan."""
        return self.history.epochs

    @property
    def steps(self) -> list[int]:
        """The training step of every scan."""
        return self.history.steps

    @property
    def reports(self) -> list[ScanReport]:
        """The ``ScanReport`` of every scan."""
        return self.history.reports

    @property
    def deaths(self) -> list[tuple[int, int, int]]:
        """Every death as (epoch, layer, unit)."""
        return self.history.deaths

    @property
    def revivals(self) -> list[tuple[int, int, int]]:
        """Every revival as (epoch, layer, unit)."""
        return self.history.revivals

    @property
    def moved_while_dead(self) -> list[tuple[int, int, int, float]]:
        """Dead units whose weights moved, as (epoch, layer, unit, change)."""
        return self.history.moved_while_dead

    @property
    def activation_samples(self) -> dict:
        """Pre-activations sampled at the ``"first"`` and the ``"latest"`` scan."""
        return self.history.activation_samples

    @property
    def leaky(self) -> bool:
        """Whether the activation is leaky ReLU (inactive units, not dead ones)."""
        return self.history.leaky

    @property
    def dead_counts(self) -> np.ndarray:
        """Dead units per hidden layer at every scan, (n_scans, n_layers)."""
        return self.history.dead_counts

    def margins(self, layer: int) -> np.ndarray:
        """Every unit's margin in hidden layer ``layer`` at every scan."""
        return self.history.margins(layer)

    def at_risk(self, layer: int, window: int = 2, fraction: float = 0.25) -> np.ndarray:
        """Units of ``layer`` whose margin is falling toward death (see ``UnitHistory``)."""
        return self.history.at_risk(layer, window, fraction)

    def dead_unit_labels(self, scan_index: int = -1) -> list[dict[int, str]]:
        """Per hidden layer, a label for each unit dead at scan ``scan_index``."""
        return self.history.dead_unit_labels(scan_index)

    def died_in(self, epoch: int) -> dict[int, list[int]]:
        """Per hidden layer, the units that died in ``epoch``."""
        return self.history.died_in(epoch)

    # Output.

    def to_dict(self) -> dict:
        """Return the whole record as strict JSON values.

        A non-finite number (a run that diverged) is null, and a top-level
        "notes" entry names where.
        """
        return strict_document({
            "schema_version": SCHEMA_VERSION,
            **self.history.to_dict(),
            "silent_during_epoch": [{"epoch": e, "units": [u.tolist() for u in units]}
                                    for e, units in self.silent],
            "silent_unit_gradients": [{"epoch": e, "layers": layers}
                                      for e, layers in self.silent_unit_gradients],
            "certificates": [c.to_dict() for c in self.certificates],
        })

    def layer_table(self) -> str:
        """Per hidden layer at the latest scan: dead, dormant, at risk, silent, revived.

        Each column names its definition: dead and dormant from the exact scan of
        x; at risk from the margin history; silent from the training batches of
        the last epoch; revived counts the dead -> alive transitions so far.
        """
        from .monitor_text import layer_table

        return layer_table(self)

    def summary(self) -> str:
        """Return the per-layer table, dead units at each scan, when they died, and why."""
        from .monitor_text import summary

        return summary(self)

    def to_html(self, path) -> str:
        """Write a self-contained HTML report atomically; return the path.

        Plots are inline; they need the ``plot`` extra. ``ScanReport.to_html`` is
        the page of one scan.

        The verdict (dead units per layer now, the main cause of the deaths in
        training, a remedy and its evidence), then by epoch the dead share of each
        layer and each unit's firing rate, the pre-activations at the first and
        latest scan and the units' margins (0 marked, dead units in red), the
        per-layer table and the death certificates (folded; sortable).
        ``reluscope.html_report.write_report`` puts several runs side by side.
        """
        from .html_report import write_monitor_report

        return write_monitor_report(self, path)
