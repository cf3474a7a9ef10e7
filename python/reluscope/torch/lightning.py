"""The PyTorch ``DeadUnitMonitor`` as a Lightning callback.

``from reluscope.torch.lightning import DeadUnitCallback`` imports Lightning
(``lightning.pytorch``, or the older ``pytorch_lightning`` package), which
``reluscope.torch`` itself never does.

    callback = DeadUnitCallback(x_scan=x_val)
    pl.Trainer(max_epochs=10, callbacks=[callback]).fit(module, loader)
    print(callback.monitor.summary())

A ``DeadUnitMonitor`` is attached to the LightningModule when a fit starts
(with the trainer's first optimizer, whose step hooks record the update after
each unit's last firing), scans at the end of every training epoch, and lets
go of its hooks when the fit ends or fails. Its results stay in ``monitor``.
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # Lightning before 2.0 ships as pytorch_lightning
    # Another class to mypy when both packages are installed; one base either way.
    from pytorch_lightning import Callback  # type: ignore[assignment]

from .monitor import DeadUnitMonitor


class DeadUnitCallback(Callback):
    """Runs a ``reluscope.torch.DeadUnitMonitor`` over each ``trainer.fit``.

    Parameters
    ----------
    x_scan : tensor, array or re-iterable of batches, optional
        What the monitor scans at the start and after every training epoch
        (see ``DeadUnitMonitor``).
    track_updates : bool
        Hook the trainer's first optimizer, so that death certificates carry
        the step that killed each unit. With several optimizers, only the first
        one's updates are recorded.
    **monitor_options :
        Passed on to ``DeadUnitMonitor`` (``large_update_factor``, ...).

    Attributes
    ----------
    monitor : DeadUnitMonitor or None
        The monitor of the latest fit (None before the first).
    """

    def __init__(self, x_scan=None, *, track_updates: bool = True, **monitor_options):
        super().__init__()
        self.x_scan = x_scan
        self.track_updates = bool(track_updates)
        self.monitor_options = monitor_options
        self.monitor: DeadUnitMonitor | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        """Build the monitor on the module (and the first optimizer, when tracking updates)."""
        optimizers = list(trainer.optimizers) if self.track_updates else []
        self.monitor = DeadUnitMonitor(pl_module, self.x_scan,
                                       optimizers[0] if optimizers else None,
                                       **self.monitor_options)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Scan the module at the end of the training epoch."""
        assert self.monitor is not None  # Lightning calls on_fit_start first
        self.monitor.end_epoch()

    def on_fit_end(self, trainer, pl_module) -> None:
        """Remove the monitor's hooks."""
        assert self.monitor is not None  # Lightning calls on_fit_start first
        self.monitor.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        """Remove the monitor's hooks when training fails."""
        if self.monitor is not None:
            self.monitor.close()
