"""The monitor's scan of an MLP-shaped module through the C++ core instead of hooks.

A module that ``MLP.from_torch`` converts (an ``nn.Sequential`` of ``nn.Linear``
with ``nn.ReLU`` or ``nn.LeakyReLU`` between) is, at scan time, the converted
``MLP``: ``reluscope.scan`` of its current weights counts the same firings as the
hook scan (``scan_sites``), with the fused C++ kernels instead of a PyTorch
forward pass and per-site torch ops. ``MLPScan.scan`` returns what ``scan_sites``
returns, so the monitor books either the same way.

The two paths compute the same float32 pre-activations in different summation
orders, so a pre-activation within rounding of 0 may fire in one and not the
other; nothing else differs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..errors import NonFiniteActivations
from ..model import MLP
from ..scan import ScanReport, scan
from .scan import SiteScan, sample_activations, scan_sites
from .sites import site_names


class MLPScan:
    """The C++ scan of one MLP-shaped module over fixed features ``x``.

    Build it with ``for_module``, which says whether the module qualifies.
    """

    def __init__(self, module: nn.Module, x: np.ndarray, found: SiteScan, activation: str,
                 sample_rows: int):
        self.module = module
        self.x = x
        self.sample_rows = sample_rows
        self._sites = found.sites
        self._input_origin = found.input_origin
        self._names = site_names(found.sites)
        self._activation = activation
        self._leaves = _leaves(module)

    @classmethod
    def for_module(cls, module: nn.Module, x: np.ndarray | None,
                   sample_rows: int) -> MLPScan | None:
        """Return the C++ scan of ``module`` on ``x``, or None where the hook scan must answer.

        None where it would not give what the hook scan gives: the module does
        not convert, or not every hidden layer is a site.

        ``x``: the float32 features (n_samples, n_features) on the host, or None
        (x_scan is not one feature matrix).
        """
        if x is None or not _float32_on_cpu(module):
            return None
        try:
            model = MLP.from_torch(module)
        except (TypeError, ValueError):
            return None
        if model.activation.name not in ("relu", "leaky_relu"):
            return None  # Identity between the Linears: no site, the hook scan says so
        # The sites, their names and input origins, from one hooked forward pass of one row:
        # the same objects the hook scan would register, at no cost worth counting.
        try:
            found = scan_sites(module, x[:1], dormancy=False)
        except ValueError:
            return None
        linears = [leaf for leaf in _leaves(module) if isinstance(leaf, nn.Linear)]
        # The hidden layers of the MLP are all Linears but the last; a Linear whose output
        # reaches its ReLU through another tensor (a Flatten's view) would be a layer the
        # hook scan does not have.
        if [site.producer for site in found.sites] != linears[:-1]:
            return None
        return cls(module, x, found, model.activation.name, sample_rows)

    def scan(self) -> SiteScan | None:
        """Return the scan of the module's current weights, or None where the hook scan must answer.

        None when the module changed since ``for_module`` (its modules, dtype or
        device), or when its weights or activations are not finite (the hook
        scan counts a NaN pre-activation as not firing; ``reluscope.scan``
        refuses it).
        """
        if _leaves(self.module) != self._leaves or not _float32_on_cpu(self.module):
            return None
        try:
            model = MLP.from_torch(self.module)
        except (TypeError, ValueError):
            return None
        if model.activation.name != self._activation:
            return None
        try:
            report = scan(model, self.x)
            first_rows = model.forward_layers(self.x[:self.sample_rows])[:-1]
        except NonFiniteActivations:
            return None
        layers = [replace(layer, name=name) for layer, name in zip(report.layers, self._names)]
        samples = [sample_activations(torch.from_numpy(pre)) for pre, _ in first_rows]
        return SiteScan(ScanReport(layers, report.n_samples), self._sites, self._input_origin,
                        samples)


def _leaves(module: nn.Module) -> list[nn.Module]:
    """Every module inside the module, at each place it is used, in order."""
    return [child for _, child in module.named_modules(remove_duplicate=False)]


def _float32_on_cpu(module: nn.Module) -> bool:
    """Whether the C++ scan, in float32 on the host, can scan this module.

    A module in another dtype, or on an accelerator, is scanned by hooks in its
    own dtype on its own device.
    """
    return all(p.dtype == torch.float32 and p.device.type == "cpu" for p in module.parameters())
