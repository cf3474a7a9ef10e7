"""``reluscope.torch.DeadUnitMonitor``: dead units in your own PyTorch training loop.

Deaths, revivals and death certificates, as the native monitor gives them.

The same book as the native monitor (``reluscope.monitor``): a ``UnitHistory``
of exact scans, ``DeathCertificate``s judged by ``CauseRules``, and the same
table, summary, JSON and HTML report (``MonitorReadout``). What differs is
where the numbers come from: forward hooks count firing in training
(``TrainingFiring``), optimizer step hooks record each unit's last firing
(``UpdateTracker``), and the scans go through the C++ core for an MLP-shaped
module (``MLPScan``) and through hooks otherwise (``_scan``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..causes import CauseRules, DeathCertificate, OptimizerTraits
from ..layer_weights import HiddenLayerWeights, Rectifier
from ..monitor_readout import MonitorReadout
from ..unit_history import UnitHistory
from .batches import check_batches
from .firing import SiteRegistry, TrainingFiring
from .mlp_scan import MLPScan
from .ranks import Ranks
from .scan import scan_sites
from .sites import FROM_MODULE_INPUT, site_names
from .updates import UPDATE_PATHS, UpdateTracker

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

SAMPLE_ROWS = 512  # the activations for the report's histograms come from these first rows
SCAN_PATHS = ("auto", "hooks")
OPTIMIZER_API = ("param_groups", "register_step_pre_hook", "register_step_post_hook")


class DeadUnitMonitor(MonitorReadout):
    """Watches a PyTorch module trained in your own loop; call ``end_epoch()`` after each epoch.

    Parameters
    ----------
    module : torch.nn.Module
        Its units are those ``reluscope.torch.scan`` finds: Linear features and
        Conv channels feeding an ``nn.ReLU``-family module.
    x_scan : tensor, array, or re-iterable of batches (a DataLoader), optional
        Scanned exactly at construction (epoch 0) and at each ``end_epoch()``;
        deaths, revivals and certificates come from these scans. Without it,
        only the units silent during each epoch are recorded. A 2-D x_scan is
        also kept as a float32 array on the host (``history.x``), for the
        "inputs not centered" rule.
    optimizer : torch.optim.Optimizer, optional
        With it, each unit's last firing step and the update right after it
        are recorded through the optimizer's step hooks, and the certificates
        carry them. Steps are counted from 1 at each ``optimizer.step()``.
        A param group added later (``optimizer.add_param_group``, as in
        progressive unfreezing) is tracked from its first step.
    update_path : {"auto", "copy"}
        How each step's update is measured. "auto": for ``torch.optim.SGD``
        (momentum 0, or momentum without nesterov; not ``fused``, no closure),
        read from the step's own terms, the gradient or the momentum buffer,
        with nothing copied; for any other optimizer (Adam, AdamW, your own)
        and SGD with nesterov, by copying each tracked weight and bias before
        the step. "copy": always copy. Both give the same records up to
        float32 rounding (``reluscope.torch.updates``).
    large_update_factor, large_relative_update : float
        Thresholds of the cause rules (``reluscope.CauseRules``).
    scan_path : {"auto", "hooks"}
        "auto": a module that ``reluscope.MLP.from_torch`` converts, with
        float32 parameters on the CPU and a 2-D x_scan, is scanned by the C++
        core on its converted weights; any other through hooks on its forward
        pass. "hooks": always through hooks. Both give the same scan, but for
        a pre-activation within float32 rounding of 0.
    process_group : torch.distributed.ProcessGroup, optional
        Under ``torch.distributed``, the group whose ranks the counts and scans
        are reduced over (see below); by default the default group.

    Attributes
    ----------
    history : UnitHistory
        The scans (``history.steps``: optimizer steps, or training forward
        passes without an optimizer), deaths, revivals.
    certificates : list of DeathCertificate
    silent : list of (epoch, list of ndarray)
        Per epoch and layer, the units that fired on no sample of the
        epoch's training batches (training forwards only: ``module.training``).
        Empty for a layer in ``unobserved``: its units' firing is unknown.
    unobserved : list of (epoch, list of int)
        Per epoch, the layers not seen feeding their ReLU in the epoch's
        training forwards: the scan (in eval mode) finds them, but in training
        something stands between the layer and its ReLU (``nn.Dropout`` makes a
        new tensor), the layer did not run, or no forward ran in training mode.
        Their units are in no ``silent`` list and get no last-firing record.
        A RuntimeWarning says so, once per layer (and once for an epoch whose
        optimizer steps ran with the module in eval mode).
    layer_names : list of str
        Module path of each layer ("net.0"; "fc#2": second call of ``fc``).
    scan_paths : list of str
        How each scan went: "c++" or "hooks" (for a diverged network, whose
        weights or activations are no longer finite, the C++ scan hands over
        to the hooks).
    update_sources : list of str or None
        Per layer, how the last step's update of its weights was measured:
        "sgd gradient", "sgd momentum buffer", "copy", "not updated" (no
        gradient), or None (no step yet, no optimizer, or weights the
        optimizer does not hold).

    Under ``torch.distributed`` (DistributedDataParallel), create the monitor on
    every rank with that rank's shard of x_scan and call ``end_epoch()`` on every
    rank: the training firing counts, the last-firing records and the scans are
    reduced over the ranks (``reluscope.torch.ranks``), so a unit is silent only
    if it fired on no rank. Rank 0 keeps the history and the certificates and
    writes the reports; the other ranks hold none of it. With ``process_group``
    (a group from ``torch.distributed.new_group`` that holds this process), create
    the monitor on the group's ranks only: ranks are then ranks in that group,
    and its first member keeps the history.

    Counting costs one comparison and one sum per batch and layer on the
    module's device; the step hooks take one norm per weight row, and copy each
    tracked weight once per step where the update cannot be read from the optimizer.
    No activation is kept past its forward pass. ``close()`` (or leaving a
    ``with`` block) removes every hook; the results stay readable.
    """

    def __init__(self, module: nn.Module, x_scan=None, optimizer=None, *,
                 large_update_factor: float = 10.0, large_relative_update: float = 0.5,
                 scan_path: str = "auto", update_path: str = "auto", process_group=None):
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module  # its layers, named as in the user's model
        if x_scan is not None:
            check_batches(x_scan, "x_scan")
        if optimizer is not None and not all(hasattr(optimizer, name) for name in OPTIMIZER_API):
            raise TypeError("optimizer must be a torch.optim.Optimizer (such as "
                            "torch.optim.SGD(module.parameters(), lr=0.1)), whose step hooks "
                            f"the monitor uses; got {type(optimizer).__name__}")
        if (x_scan is not None and not isinstance(x_scan, (torch.Tensor, np.ndarray))
                and iter(x_scan) is x_scan):
            raise TypeError("x_scan is scanned at every epoch: give a tensor, an array or a "
                            "re-iterable such as a DataLoader, not a one-pass iterator")
        if scan_path not in SCAN_PATHS:
            raise ValueError(f"scan_path must be one of {SCAN_PATHS}, got {scan_path!r}")
        if update_path not in UPDATE_PATHS:
            raise ValueError(f"update_path must be one of {UPDATE_PATHS}, got {update_path!r}")
        self.module = module
        self.x_scan = x_scan
        self.rules = CauseRules(large_update_factor, large_relative_update)
        self._ranks = Ranks(process_group)
        local_rows = _features_or_none(x_scan)
        # Under torch.distributed rank 0 keeps every rank's rows, for the attribution.
        self.history = UnitHistory(None if x_scan is None
                                   else self._ranks.gather_rows(local_rows))
        self.certificates: list[DeathCertificate] = []
        self.silent: list[tuple[int, list]] = []
        self.unobserved: list[tuple[int, list[int]]] = []
        self._warned: set[str] = set()  # names of the layers already warned about
        self._warned_eval = False
        self.silent_unit_gradients: list[tuple[int, list]] = []  # native trainer only
        self.epoch = 0
        self.scan_paths: list[str] = []
        self._registry = SiteRegistry()
        self._firing = TrainingFiring(module, self._registry)
        self._optimizer = optimizer
        self._updates = (None if optimizer is None
                         else UpdateTracker(optimizer, self._registry, self._firing,
                                            update_path, module))
        self._epoch_start = (0, 0)  # (training forwards, optimizer steps) when the epoch began
        try:
            self._mlp_scan = (MLPScan.for_module(module, local_rows, SAMPLE_ROWS)
                              if scan_path == "auto" else None)
            if x_scan is not None:
                self._observe(*self._scan())
        except BaseException:
            self.close()
            raise

    @property
    def layer_names(self) -> list[str]:
        """The module path of each scanned layer."""
        return site_names(self._registry.sites)

    @property
    def step(self) -> int:
        """Optimizer steps so far (training forward passes without an optimizer)."""
        return self._firing.forwards if self._updates is None else self._updates.steps

    @property
    def update_sources(self) -> list[str | None]:
        """Per layer, where the last step's update of its weights was read (see ``updates``)."""
        if self._updates is None:
            return [None] * len(self._registry.sites)
        return self._updates.sources()

    def epoch_firing_counts(self) -> list[np.ndarray | None]:
        """Per layer, the samples on which each unit fired in this epoch's training so far.

        Counted over the training forwards, one copy from the device; None for a
        layer not seen in them (see ``unobserved``).
        """
        return self._firing.epoch_counts()

    def last_firing_stats(self) -> list | None:
        """Per layer, a ``reluscope.UnitStats`` of each unit's last firing.

        Its ``last_firing`` holds each unit's last firing step and the update
        after it (None without an optimizer). Under torch.distributed every rank
        must call it: the records are reduced over the ranks.
        """
        return (None if self._updates is None
                else self._ranks.last_firing(self._updates.unit_stats()))

    def end_epoch(self) -> None:
        """Close an epoch: note its silent units, then scan ``x_scan`` and certify deaths.

        Raises, with nothing booked (on every rank, under torch.distributed), a
        ValueError when a watched layer's width (its weight's rows) changed since
        the monitor first saw it and a RuntimeError when the module's
        Linear/Conv -> ReLU sites changed since the first scan.
        """
        self._registry.check_widths()
        scanned = None if self.x_scan is None else self._scan()
        self.epoch += 1
        counts = self._ranks.firing_counts(self._firing.take_epoch(),
                                           [site.n_units for site in self._registry.sites])
        if self._ranks.writes:
            self._book_epoch(counts)
        self._epoch_start = (self._firing.forwards, self._optimizer_steps())
        if scanned is not None:
            self._observe(*scanned)

    def _book_epoch(self, counts: list) -> None:
        """Note the epoch's silent and unobserved layers (on rank 0 only, under DDP)."""
        unseen = [index for index, c in enumerate(counts) if c is None]
        self._warn_unobserved(unseen)
        self.unobserved.append((self.epoch, unseen))
        self.silent.append((self.epoch, [np.zeros(0, np.intp) if c is None
                                         else np.flatnonzero(c == 0) for c in counts]))

    def _optimizer_steps(self) -> int:
        return 0 if self._updates is None else self._updates.steps

    def _warn_unobserved(self, unseen: list[int]) -> None:
        """Say once per layer why its units are missing from ``silent``."""
        forwards_at_start, steps_at_start = self._epoch_start
        if self._firing.forwards == forwards_at_start:
            # No training forward: the user's own choice, unless the optimizer stepped, which
            # means training ran in eval mode.
            if self._optimizer_steps() > steps_at_start and not self._warned_eval:
                self._warned_eval = True
                warnings.warn(
                    f"epoch {self.epoch}: the optimizer stepped, but no forward pass ran in "
                    "training mode (module.training was False): which units fired in training "
                    "is unknown, so none is listed in `silent` (all layers are in "
                    "`unobserved`); call module.train() before the training forwards",
                    RuntimeWarning, stacklevel=3)
            return
        names = self.layer_names
        new = [names[index] for index in unseen if names[index] not in self._warned]
        if not new:
            return
        self._warned.update(new)
        warnings.warn(
            f"layer(s) {', '.join(map(repr, new))} feed a ReLU in the scan (eval mode) but were "
            f"not seen feeding one in epoch {self.epoch}'s training forwards: something between "
            "the layer and its ReLU in training (such as nn.Dropout) makes a new tensor, or the "
            "layer did not run. Their firing in training is unknown: they are in `unobserved`, "
            "not `silent`, and their units get no last-firing record (their death certificates "
            "carry no step)", RuntimeWarning, stacklevel=3)

    def _observe(self, scanned, path: str) -> None:
        report, weights, samples, activation = self._layers_of(scanned, path)
        report = self._ranks.scan_report(report)
        unit_stats = self.last_firing_stats()
        if not self._ranks.writes:
            return  # rank 0 keeps the book
        self.history.record(self.epoch, self.step, report, weights, samples, activation)
        deaths = [(layer, unit, unit_stats[layer].last_fired(unit) if unit_stats else None)
                  for layer, units in self.history.died_in_latest_scan().items()
                  for unit in units]
        self.certificates += self.rules.certify_all(self.history, weights, deaths,
                                                    OptimizerTraits.of(self._optimizer))

    def _scan(self):
        """Scan: the one place the monitor does. Changes nothing of the monitor.

        Returns (the scan, its path: "c++" or "hooks"): through the C++ core
        where it gives what the hooks give (``MLPScan``), through hooks on the
        forward pass otherwise. Raises a RuntimeError when the sites changed
        since the first scan.
        """
        scanned = None if self._mlp_scan is None else self._mlp_scan.scan()
        path = "hooks" if scanned is None else "c++"
        if scanned is None:
            scanned = scan_sites(self.module, self.x_scan, sample_rows=SAMPLE_ROWS)
        known = [site.key for site in self._registry.sites]
        # scan_paths, not the history: every rank keeps it, so every rank refuses.
        if self.scan_paths and [s.key for s in scanned.sites] != known:
            raise RuntimeError("the module's Linear/Conv -> ReLU sites changed since the first "
                               "scan; the monitor needs the same layers at every scan")
        return scanned, path

    def _layers_of(self, scanned, path: str):
        """Register a scan's sites and read their layers.

        Returns (report, HiddenLayerWeights, activation samples, activation name).
        """
        for site in scanned.sites:
            self._registry.add(site)
        sites = scanned.sites
        chained = [_chained(i, sites, scanned.input_origin, self.history.x is not None)
                   for i in range(len(sites))]
        with torch.no_grad():
            incoming = [site.producer.weight.detach().flatten(1).float().cpu().numpy()
                        for site in sites]
            biases = [np.zeros(site.n_units, np.float32) if site.producer.bias is None
                      else site.producer.bias.detach().float().cpu().numpy() for site in sites]
        activation = "leaky_relu" if all(site.leaky for site in sites) else "relu"
        self.scan_paths.append(path)
        rectifiers = [_rectifier(site.activation) for site in sites]
        return (scanned.report, HiddenLayerWeights(incoming, biases, chained, rectifiers),
                scanned.activation_samples, activation)

    def close(self) -> None:
        """Remove every hook from the module and the optimizer."""
        self._firing.remove()
        if self._updates is not None:
            self._updates.remove()

    def __enter__(self) -> Self:
        """Use the monitor as a context manager: ``close`` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Remove the hooks (``close``)."""
        self.close()

    def to_dict(self) -> dict:
        """Return the whole record, with the layer names and the update sources, as a dict."""
        return {**super().to_dict(), "layer_names": self.layer_names,
                "unobserved_during_epoch": [{"epoch": e, "layers": layers}
                                            for e, layers in self.unobserved],
                "steps_counted": ("optimizer steps" if self._updates is not None
                                  else "training forward passes")}


def _features_or_none(x_scan):
    """x_scan as the history's feature matrix, when it is one (a 2-D tensor or array).

    For the "inputs not centered" rule; None for images or a DataLoader.
    """
    if isinstance(x_scan, torch.Tensor) and x_scan.dim() == 2:
        return x_scan.detach().float().cpu().numpy()
    if isinstance(x_scan, np.ndarray) and x_scan.ndim == 2:
        return x_scan
    return None


def _chained(index: int, sites: list, input_origin: dict, have_features: bool) -> bool:
    """Whether site ``index``'s producer reads exactly the previous site's units.

    For the first site, the scanned features. When it does, the cause rules may
    read its weights as a chain.
    """
    site = sites[index]
    if not isinstance(site.producer, nn.Linear):
        return False
    origin = input_origin.get(site.key)
    if index == 0:
        return have_features and origin == FROM_MODULE_INPUT
    return origin == sites[index - 1].key


def _rectifier(activation: nn.Module) -> Rectifier:
    """Return the ``Rectifier`` of a ReLU-family module (what the attribution recomputes with)."""
    if isinstance(activation, nn.LeakyReLU):
        return Rectifier(float(activation.negative_slope))
    if isinstance(activation, nn.ReLU6):
        return Rectifier(ceiling=6.0)
    return Rectifier()
