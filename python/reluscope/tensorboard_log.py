"""Dead and dormant units in TensorBoard: one writer for the native and the PyTorch monitor.

``TensorBoard(logdir, monitor=...)`` writes every scan of a monitor's
``UnitHistory``, at the scan's epoch: per hidden layer ``i`` the scalars
``dead_fraction/layer_<i>`` and ``dormant_fraction/layer_<i>``, and the
histograms ``margin/layer_<i>`` (each unit's largest pre-activation over the
scanned samples; a dead unit's is <= 0) and ``firing_rate/layer_<i>``.

The writer is tensorboardX (``pip install reluscope[tensorboard]``), imported
when a ``TensorBoard`` is built, never by ``import reluscope``.
"""

from __future__ import annotations

import os

import numpy as np

from ._validation import finite_float
from .callbacks import Callback
from .scan import DEFAULT_DORMANT_TAU, ScanReport
from .unit_history import UnitHistory


class TensorBoard(Callback):
    """Writes each scan of a monitor to TensorBoard event files in ``logdir``.

    Parameters
    ----------
    logdir : str or path
        Where the event files go (created when missing); point
        ``tensorboard --logdir`` at it.
    monitor : DeadUnitMonitor, UnitHistory, optional
        The scans to write: a ``reluscope.DeadUnitMonitor``, a
        ``reluscope.torch.DeadUnitMonitor`` (anything with a ``history``) or a
        ``UnitHistory``. As a ``Trainer.fit`` callback it must come *after* the
        monitor in ``callbacks``: callbacks run in order, and at each epoch's end
        it writes what the monitor has scanned so far (a scan it missed is
        written at the next epoch's end or at ``on_train_end``).
    tau : float
        The ReDo threshold of a dormant unit (``LayerScan.dormant_units``).

    Notes
    -----
    Each scan is written once, with its epoch as the step (epoch 0: the scan
    before training). Layers are numbered by their position among the hidden
    layers; a PyTorch monitor's ``layer_names[i]`` names layer ``i``. A
    layer scanned without activations (``dormancy=False``) has no dormant
    fraction; non-finite margins (a diverged network) are left out of the
    histogram.

    With the PyTorch monitor, call ``log()`` after each ``monitor.end_epoch()``::

        board = TensorBoard("runs/exp1", monitor)
        for epoch in range(n_epochs):
            ...  # train one epoch
            monitor.end_epoch()
            board.log()
        board.close()
    """

    def __init__(self, logdir, monitor=None, *, tau: float = DEFAULT_DORMANT_TAU):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ImportError("reluscope.callbacks.TensorBoard needs tensorboardX: "
                              "pip install reluscope[tensorboard]") from error
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"logdir must be a folder path, got {type(logdir).__name__}")
        if monitor is not None:
            _history_of(monitor)  # a wrong kind of monitor fails here, not at the first epoch
        self.monitor = monitor
        self.tau = finite_float(tau, "tau", low=0.0)
        self.writer = SummaryWriter(str(logdir))
        self.scans_written = 0

    @classmethod
    def from_monitor(cls, monitor, logdir, *, tau: float = DEFAULT_DORMANT_TAU) -> TensorBoard:
        """``TensorBoard(logdir, monitor)``, with the monitor first (for the PyTorch loop)."""
        return cls(logdir, monitor, tau=tau)

    @property
    def logdir(self) -> str:
        """The folder the writer writes to."""
        return self.writer.logdir

    # Writing.

    def log(self, monitor=None) -> int:
        """Write the scans of ``monitor`` not yet written, and flush.

        ``monitor`` defaults to the one given at construction. Returns how many
        scans were written.
        """
        monitor = self.monitor if monitor is None else monitor
        if monitor is None:
            raise TypeError("TensorBoard.log needs a monitor: pass one here or to TensorBoard()")
        history = _history_of(monitor)
        new = range(self.scans_written, len(history.reports))
        for index in new:
            self.write_report(history.reports[index], history.epochs[index])
        self.scans_written = max(self.scans_written, len(history.reports))
        self.writer.flush()
        return len(new)

    def write_report(self, report: ScanReport, step: int) -> None:
        """Write one scan at ``step`` (the layers' scalars and histograms)."""
        for i, layer in enumerate(report.layers):
            tag = f"layer_{i}"
            self.writer.add_scalar(f"dead_fraction/{tag}", layer.dead_fraction, step)
            if layer.mean_abs_activation is not None:
                dormant = len(layer.dormant_units(self.tau)) / layer.n_units
                self.writer.add_scalar(f"dormant_fraction/{tag}", dormant, step)
            margins = np.asarray(layer.max_pre_activation, dtype=np.float64)
            margins = margins[np.isfinite(margins)]
            if margins.size:  # an empty histogram is an error in the writer
                self.writer.add_histogram(f"margin/{tag}", margins, step)
            if layer.n_units:
                self.writer.add_histogram(f"firing_rate/{tag}", layer.firing_rate, step)

    def close(self) -> None:
        """Flush and close the event file; the callback writes nothing after."""
        self.writer.close()

    def __enter__(self) -> TensorBoard:
        """Use the callback as a context manager: ``close`` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the writer."""
        self.close()

    # The callback.

    def on_train_begin(self, trainer) -> None:
        """Refuse to start without a monitor; write the scan taken before training."""
        self._need_monitor()
        self.log()  # the scan before training, when the monitor ran first

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """Write the scans taken so far."""
        self.log()

    def on_train_end(self, trainer) -> None:
        """Write the last scans."""
        self.log()

    def _need_monitor(self) -> None:
        if self.monitor is None:
            raise TypeError("TensorBoard as a Trainer.fit callback needs monitor=: "
                            "TensorBoard(logdir, monitor=rs.DeadUnitMonitor(x))")


def _history_of(monitor) -> UnitHistory:
    history = monitor if isinstance(monitor, UnitHistory) else getattr(monitor, "history", None)
    if not isinstance(history, UnitHistory):
        raise TypeError("monitor must be a DeadUnitMonitor (native or reluscope.torch) or a "
                        f"UnitHistory, got {type(monitor).__name__}")
    return history
