"""The monitor's numbers summed over the ranks of a distributed (DDP) training run.

Under ``DistributedDataParallel`` each rank trains on its own shard of every
batch and, for the monitor, scans its own shard of ``x_scan``. A unit is dead
when it fires on no sample of *any* rank, so the ranks' statistics are
combined before anything is judged, exactly as the parts of a chunked scan are
(``reluscope.scan_parts``): firing counts and sample counts add up, margins
take the maximum, |activation| sums add up. Every rank then holds the same
report, the same silent units, and books the same deaths.

Each combination is one collective call per kind of number; every rank of the
group must make it, at the same scan or epoch end, with the same layers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..scan import ScanReport


def unwrap_ddp(module: nn.Module, process_group):
    """(the module to watch, the group to combine over or None).

    A ``DistributedDataParallel`` wrapper is watched through its ``.module`` (the
    hooks fire on the same submodules, named as in the user's model) and, unless
    a group is given, combined over the wrapper's own process group.
    """
    if isinstance(module, nn.parallel.DistributedDataParallel):
        return module.module, (module.process_group if process_group is None
                               else process_group)
    return module, process_group


def check_initialized() -> None:
    """Refuse to combine when torch.distributed has no process group to combine over."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("process_group was given but torch.distributed is not initialized: "
                           "call torch.distributed.init_process_group first")


def combine_report(report: ScanReport, process_group) -> ScanReport:
    """The scan of every rank's ``x_scan`` together, from this rank's ``report``."""
    sizes = [layer.n_units for layer in report.layers]
    _check_same_layers(sizes, process_group)
    # Per kind of number one call: counts with the sample count at the end, margins,
    # |activation| sums (the report keeps means; mean x n in float64 gives the sums
    # back to rounding, so the combined means agree with one scan to rounding).
    counts = _all_reduce(np.concatenate([layer.firing_counts for layer in report.layers]
                                        + [np.array([report.n_samples], np.int64)]),
                         dist.ReduceOp.SUM, process_group)
    n_samples = int(counts[-1])
    maxima = _all_reduce(np.concatenate([layer.max_pre_activation for layer in report.layers]
                                        or [np.zeros(0, np.float32)]), dist.ReduceOp.MAX,
                         process_group)
    dormancy = bool(report.layers) and report.layers[0].mean_abs_activation is not None
    if dormancy:
        totals = _all_reduce(np.concatenate([layer.mean_abs_activation * report.n_samples
                                             for layer in report.layers]),
                             dist.ReduceOp.SUM, process_group)
    bounds = np.cumsum([0] + sizes)
    layers = []
    for index, layer in enumerate(report.layers):
        units = slice(bounds[index], bounds[index + 1])
        mean_abs = totals[units] / n_samples if dormancy else None
        layers.append(replace(layer, firing_counts=counts[units].copy(),
                              max_pre_activation=maxima[units].copy(), n_samples=n_samples,
                              mean_abs_activation=mean_abs))
    return ScanReport(layers, n_samples)


def combine_epoch_counts(counts: list, n_units: list[int], process_group) -> list:
    """Per layer, the firing counts of every rank's training batches together; None for a
    layer no rank saw feeding its ReLU (see ``DeadUnitMonitor.unobserved``)."""
    _check_same_layers(n_units, process_group)
    seen = _all_reduce(np.array([c is not None for c in counts], dtype=np.int64),
                       dist.ReduceOp.MAX, process_group)
    flat = _all_reduce(np.concatenate([np.zeros(n, np.int64) if c is None
                                       else c.astype(np.int64) for c, n in zip(counts, n_units)]
                                      or [np.zeros(0, np.int64)]),
                       dist.ReduceOp.SUM, process_group)
    bounds = np.cumsum([0] + list(n_units))
    return [flat[bounds[i]:bounds[i + 1]].copy() if seen[i] else None
            for i in range(len(n_units))]


def _check_same_layers(sizes: list[int], process_group) -> None:
    """Every rank must combine the same layers: the same count of units in each."""
    shape = np.array([len(sizes), sum(sizes), hash(tuple(sizes)) % (2**62)], dtype=np.int64)
    low = _all_reduce(shape, dist.ReduceOp.MIN, process_group)
    high = _all_reduce(shape, dist.ReduceOp.MAX, process_group)
    if not np.array_equal(low, high):
        raise RuntimeError(f"the ranks watch different layers (this rank: units per layer "
                           f"{sizes}); every rank must run the same module")


def _all_reduce(values: np.ndarray, op, process_group) -> np.ndarray:
    """``values`` reduced over the group, as a new array of the same dtype."""
    device = torch.device("cpu")
    if dist.get_backend(process_group) == "nccl":  # NCCL reduces device tensors only
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.from_numpy(np.array(values, copy=True)).to(device)  # reduced in place
    dist.all_reduce(tensor, op=op, group=process_group)
    return tensor.cpu().numpy()
