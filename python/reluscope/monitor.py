"""A training callback that scans for dead units at initialization and after every epoch.

It ties three parts together: the unit history (``reluscope.unit_history``:
the scans and what changed between them), the cause rules
(``reluscope.causes``: a ``DeathCertificate`` per death) and the text
rendering (``reluscope.monitor_text``).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .callbacks import Callback, CallbackState
from .causes import CauseRules, DeathCertificate, OptimizerTraits
from .model_input import as_mlp
from .monitor_readout import MonitorReadout
from .scan import ScanReport
from .unit_history import UnitHistory

if TYPE_CHECKING:
    from .optim import Optimizer
    from .tracking import UnitStats
    from .trainer import Trainer


class DeadUnitMonitor(Callback, MonitorReadout):
    """Exact dead-unit scans of ``x`` at the start of training and after each epoch.

    A unit is dead on ``x`` when its pre-activation is <= 0 for every sample of
    ``x`` (see ``reluscope.scan``). The scan runs at fixed weights between
    epochs, so "died in epoch e" means: alive in the scan after epoch e - 1 (or
    at initialization, epoch 0), dead in the scan after epoch e.

    Attributes
    ----------
    history : UnitHistory
        The scans and what changed between them; ``epochs``, ``steps``,
        ``reports``, ``deaths``, ``revivals``, ``moved_while_dead`` and the
        queries (``margins``, ``at_risk``, ``dead_unit_labels``, ``died_in``,
        ``dead_counts``) read it.
    rules : CauseRules
    certificates : list of DeathCertificate
        One per death seen by a scan (see ``reluscope.causes``).
    silent : list of (epoch, list of ndarray)
        Per epoch, the units of each hidden layer that were *silent during the
        epoch*: zero firings on the epoch's training batches, counted for free in
        the training forward pass (``Trainer(track_firing=True)``). Unlike the
        exact scan, the weights changed while these counts were taken.
    silent_unit_gradients : list of (epoch, list of dict)
        With ``Trainer(track_gradients=True)``: per epoch and hidden layer, the
        units silent all epoch and the largest gradient magnitude
        (sum_k |dL/dw_kj| + |dL/db_j| over the epoch) among them, which is
        exactly 0.0 for ReLU, against the smallest among the units that fired:
        the chain rule dL/dw_jk = dL/dx_k * f'(s_j) * x_j, measured, with
        f'(s_j) = 0 whenever the unit is silent.

    Every dead unit is labelled (``dead_unit_labels``) *permanent* when it is in
    the first hidden layer (its inputs are the fixed data and its weights get
    no gradient, so it can never fire again on this data) or *tentative* deeper
    (it can revive when the layers below it change); with leaky ReLU,
    *inactive*.
    """

    def __init__(self, x: npt.ArrayLike, *, chunk_size: int = 8192,
                 large_update_factor: float = 10.0,
                 large_relative_update: float = 0.5) -> None:
        self.history = UnitHistory(x, chunk_size)
        self.rules = CauseRules(large_update_factor, large_relative_update)
        self.certificates: list[DeathCertificate] = []
        self.silent: list[tuple[int, list]] = []
        self.silent_unit_gradients: list[tuple[int, list]] = []

    # The callback.

    def on_train_begin(self, trainer: Trainer) -> None:
        """Check that the model takes x; scan it once before training starts."""
        self.history.check_model(trainer.model)  # before an epoch of training, not after
        if not self.history.reports:
            self.observe(trainer.epochs_done, trainer.model, trainer.steps_done,
                         trainer.unit_stats)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        """Scan the model after the epoch and certify the deaths the scan shows.

        The epoch's silent units are booked only once its scan succeeded: a scan
        that raises leaves the monitor as it was.
        """
        silent = gradients = None
        if trainer.track_firing:
            silent = (epoch, [np.flatnonzero(c == 0) for c in trainer.firing_counts])
            if trainer.track_gradients:
                gradients = (epoch, [_gradient_evidence(counts, magnitude) for counts, magnitude
                                     in zip(trainer.firing_counts, trainer.gradient_magnitude)])
        self.observe(epoch, trainer.model, trainer.steps_done, trainer.unit_stats,
                     optimizer=trainer.optimizer)
        if silent is not None:
            self.silent.append(silent)
        if gradients is not None:
            self.silent_unit_gradients.append(gradients)

    def observe(self, epoch: int, model: Any, step: int = 0,
                unit_stats: list[UnitStats] | None = None, *,
                optimizer: Optimizer | None = None) -> ScanReport:
        """Scan ``model`` as the state after ``epoch`` and certify the deaths it shows.

        ``unit_stats`` (the trainer's, one ``UnitStats`` per hidden layer) gives
        each death its last-firing record; without it the certificates carry no
        update. ``optimizer`` (a reluscope or ``torch.optim`` optimizer) tells
        the certificates whether weight decay and momentum were at work.
        ``model`` may also be a PyTorch ``nn.Sequential`` or a fitted
        scikit-learn MLP estimator, converted as by ``scan``: a loop outside
        reluscope can be watched by observing its model after each epoch.
        """
        model = as_mlp(model)
        report = self.history.observe(epoch, model, step)
        deaths = [(layer, unit, unit_stats[layer].last_fired(unit)
                   if unit_stats and layer < len(unit_stats) else None)
                  for layer, units in self.history.died_in_latest_scan().items()
                  for unit in units]
        self.certificates += self.rules.certify_all(self.history, model, deaths,
                                                    OptimizerTraits.of(optimizer))
        return report

    # Checkpoints (see reluscope.checkpoint).

    def state_dict(self) -> CallbackState:
        """Return the scans and their inputs, the deaths, revivals, certificates and evidence."""
        history = self.history.state_dict()
        settings = {
            "history": history.settings,
            "rules": asdict(self.rules),
            "certificates": [c.to_dict() for c in self.certificates],
            "silent": [{"epoch": e, "units": [u.tolist() for u in units]}
                       for e, units in self.silent],
            "silent_unit_gradients": [{"epoch": e, "layers": layers}
                                      for e, layers in self.silent_unit_gradients],
        }
        return CallbackState(settings, {f"history/{name}": array
                                        for name, array in history.arrays.items()})

    @classmethod
    def from_state_dict(cls, state: CallbackState) -> DeadUnitMonitor:
        """Return the monitor ``state_dict`` saved, ready to go on observing the same run."""
        history = UnitHistory.from_state_dict(state.nested("history"))
        assert history.x is not None  # state_dict saved it
        settings = state.settings
        monitor = cls(history.x, chunk_size=history.chunk_size, **settings["rules"])
        monitor.history = history
        monitor.certificates = [DeathCertificate.from_dict(c) for c in settings["certificates"]]
        monitor.silent = [(int(entry["epoch"]), [np.array(u, dtype=np.intp)
                                                 for u in entry["units"]])
                          for entry in settings["silent"]]
        monitor.silent_unit_gradients = [(int(entry["epoch"]), entry["layers"])
                                         for entry in settings["silent_unit_gradients"]]
        return monitor


class DeadNeuronMonitor(DeadUnitMonitor):
    """Deprecated name of ``DeadUnitMonitor``."""

    def __init__(self, x: npt.ArrayLike, **options: Any) -> None:
        warnings.warn("DeadNeuronMonitor is now DeadUnitMonitor; the old name will be removed",
                      DeprecationWarning, stacklevel=2)
        super().__init__(x, **options)


def _gradient_evidence(firing_counts: np.ndarray, magnitude: np.ndarray) -> dict:
    """Gradient received by the units silent all epoch against those that fired."""
    silent = firing_counts == 0
    return {
        "silent_units": int(silent.sum()),
        "max_silent_gradient": float(magnitude[silent].max()) if silent.any() else None,
        "min_firing_gradient": float(magnitude[~silent].min()) if (~silent).any() else None,
        "silent_gradient_exactly_zero": bool(np.all(magnitude[silent] == 0.0)),
    }
