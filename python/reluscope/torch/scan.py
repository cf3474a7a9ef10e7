"""``reluscope.torch.scan``: the exact dead-unit scan of any PyTorch module over batches.

The definitions are reluscope's (``reluscope.scan``): a unit fires on a sample
when its pre-activation is > 0, here at some position (a convolution channel
fires on an image when it is > 0 at some pixel); it is dead on the data when
it fires on no sample. Which units exist is found by watching the forward
pass (``reluscope.torch.sites``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..scan import LayerScan, ScanReport
from .batches import evaluating, input_batches
from .sites import Site, SiteKey, SiteWatcher, site_names

NO_SITES_HINT = ("found no nn.Linear or nn.Conv1d/2d/3d whose output goes straight into an "
                 "nn.ReLU, nn.LeakyReLU or nn.ReLU6 module; torch.relu / F.relu calls are "
                 "invisible to module hooks: use nn.ReLU modules")

SAMPLE_VALUES = 4000  # pre-activations per layer kept for the report's histograms


def scan(module: nn.Module, batches, *, dormancy: bool = True) -> ScanReport:
    """Count, for every unit of ``module``, the samples on which it fires.

    Parameters
    ----------
    module : torch.nn.Module
        Any module. Its units are the output features of the ``nn.Linear``
        layers and the output channels of the ``nn.Conv1d/2d/3d`` layers whose
        output is the input of an ``nn.ReLU``, ``nn.LeakyReLU`` or ``nn.ReLU6``
        module (see ``reluscope.torch.sites`` for reused modules).
    batches : tensor, or iterable of tensors or (input, label) pairs
        One tensor is one batch; a ``DataLoader`` works as it is. Empty
        batches are skipped. An unbatched input (a Linear's (n_features,), a
        Conv2d's (C, H, W)) is one sample, as PyTorch reads it.
    dormancy : bool
        Also measure mean |activation| per unit (over samples, and positions).

    Returns
    -------
    ScanReport
        One ``LayerScan`` per site, in the order of the forward pass, named by
        module path ("features.0"; "fc#2" for a second call of ``fc``). Its
        ``n_samples`` are the samples the layers counted: per batch, those of
        the first site the batch reached.

    The module runs in eval mode (each submodule's mode is restored after),
    under ``torch.no_grad()``, on its own device; the counts are kept there in
    torch ops, and no batch's activations outlive it.

    Raises
    ------
    ValueError
        When some site's pre-activation is NaN on some sample (NaN inputs or
        parameters, or an overflow): a NaN never fires, so its units would
        pass for dead, as ``reluscope.scan`` refuses too. (The PyTorch
        ``DeadUnitMonitor`` still scans a network that diverged, and counts a
        NaN as not firing.)
    """
    report = scan_sites(module, batches, dormancy=dormancy).report
    for layer in report.layers:
        # A unit's maximum is NaN when any of its pre-activations is (torch.maximum
        # and amax propagate NaN).
        nan_units = np.isnan(layer.max_pre_activation)
        if nan_units.any():
            raise ValueError(
                f"site {layer.label!r} has NaN pre-activations in {int(nan_units.sum())} of its "
                f"{layer.n_units} units (NaN inputs or parameters, or an overflow); a NaN "
                f"never fires, so those units would pass for dead")
    return report


@dataclass
class SiteScan:
    """A scan with what the monitor also needs.

    The sites, how they chain, and a few pre-activations per site
    (``activation_samples``).
    """

    report: ScanReport
    sites: list
    input_origin: dict
    activation_samples: list


class _SiteTally:
    """The running sums of one site over the batches, on the module's device."""

    def __init__(self, site: Site, pre_activation: torch.Tensor, dormancy: bool):
        n_units, device = site.n_units, pre_activation.device
        self.site = site
        self.firing_counts = torch.zeros(n_units, dtype=torch.int64, device=device)
        self.maxima = torch.full((n_units,), -torch.inf, dtype=torch.float32, device=device)
        self.abs_sums = (torch.zeros(n_units, dtype=torch.float64, device=device)
                         if dormancy else None)
        self.n_samples = 0
        self.sample: np.ndarray | None = None

    def add(self, pre_activation: torch.Tensor, sample_rows: int, sample_values: int) -> None:
        site = self.site
        fired = site.fired_per_sample(pre_activation)
        if fired.shape[0] == 0:
            return  # the module dropped every sample: no maximum to take
        self.n_samples += fired.shape[0]
        self.firing_counts += fired.sum(0)
        torch.maximum(self.maxima, site.unit_maxima(pre_activation).float(), out=self.maxima)
        if self.abs_sums is not None:
            self.abs_sums += site.mean_abs_activation_per_sample(pre_activation).sum(
                0, dtype=torch.float64)
        if sample_rows and self.sample is None:
            # The first sample_rows samples of the first batch, before the ReLU: the
            # report's histograms mark 0 on them.
            first_rows = site.batched(pre_activation)[:sample_rows]
            self.sample = sample_activations(first_rows, sample_values)

    def layer_scan(self, index: int, name: str) -> LayerScan:
        n = self.n_samples
        mean_abs = None if self.abs_sums is None else (self.abs_sums / n).cpu().numpy()
        return LayerScan(index, self.firing_counts.cpu().numpy(), self.maxima.cpu().numpy(), n,
                         mean_abs, name=name)


def sample_activations(activations: torch.Tensor, values: int = SAMPLE_VALUES) -> np.ndarray:
    """Up to ``values`` of ``activations``, as a float32 array.

    The monitor passes pre-activations. The same draw (a fixed seed) for the
    same shape, whichever scan computed them.
    """
    flat = activations.flatten().float()
    if flat.numel() > values:
        generator = torch.Generator(device=flat.device).manual_seed(0)
        flat = flat[torch.randperm(flat.numel(), generator=generator, device=flat.device)[:values]]
    return flat.cpu().numpy()


def scan_sites(module: nn.Module, batches, *, dormancy: bool = True, sample_rows: int = 0,
               sample_values: int = SAMPLE_VALUES) -> SiteScan:
    """Scan as ``scan`` does, also returning the sites and their input origins.

    With ``sample_rows``, also a sample of each site's pre-activations for the
    report's histograms.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    tallies: dict[SiteKey, _SiteTally] = {}
    batch_samples = None  # the samples of the current batch, as its first site counts them

    def tally(site: Site, pre_activation: torch.Tensor) -> None:
        nonlocal batch_samples
        entry = tallies.get(site.key)
        if entry is None:
            entry = tallies[site.key] = _SiteTally(site, pre_activation, dormancy)
        before = entry.n_samples
        entry.add(pre_activation, sample_rows, sample_values)
        if batch_samples is None:
            batch_samples = entry.n_samples - before

    watcher = SiteWatcher(module, tally, track_inputs=True)
    n_samples, batches_run = 0, 0
    try:
        with evaluating(module), torch.no_grad():
            for x in input_batches(batches, module):
                if x.dim() > 0 and x.shape[0] == 0:
                    continue  # no samples: nothing to count (and no maximum to take)
                batch_samples = None
                module(x)
                batches_run += 1
                # Not x.shape[0]: an unbatched x, (n_features,) or (C, H, W), is one sample.
                n_samples += batch_samples or 0
    finally:
        watcher.remove()
    if batches_run == 0:
        raise ValueError("batches held no samples")
    if not tallies:
        raise ValueError(NO_SITES_HINT)
    ordered = list(tallies.values())  # dicts keep the order of the forward pass
    names = site_names([t.site for t in ordered])
    report = ScanReport([t.layer_scan(i, name) for i, (t, name) in enumerate(zip(ordered, names))],
                        n_samples)
    samples = [t.sample if t.sample is not None else np.zeros(0, np.float32) for t in ordered]
    return SiteScan(report, [t.site for t in ordered], dict(watcher.input_origin), samples)
