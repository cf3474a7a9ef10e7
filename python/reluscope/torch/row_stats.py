"""The two per-step reductions of the PyTorch monitor, through the C++ core where the
tensor allows: row norms of a weight, firing counts of a pre-activation.

On the CPU, for float32 tensors whose memory is one C-contiguous block, reluscope's
single-threaded kernels (``_core.row_sum_squares``, ``_core.count_positive_columns``)
read the tensor's memory in place: one pass each, where torch's ``vector_norm``
(which sums in double through a general reduction) and ``(pre > 0).sum(0)`` (a bool
tensor, then a reduction over the first axis) take several. Anything else (another
device or dtype, a strided view) goes through the torch ops, on the tensor's device.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _core


def _in_place_float32(tensor: torch.Tensor) -> bool:
    return (tensor.device.type == "cpu" and tensor.dtype == torch.float32
            and tensor.is_contiguous() and not tensor.requires_grad)


def row_norms(value: torch.Tensor) -> torch.Tensor:
    """(rows,) float32: the Euclidean norm of each row of ``value`` (flattened after axis 0)."""
    rows = value.flatten(1)
    if not _in_place_float32(rows) or rows.shape[1] == 0:
        return torch.linalg.vector_norm(rows, dim=1)
    sums = np.empty(rows.shape[0], dtype=np.float64)
    _core.row_sum_squares(rows.numpy(), sums)
    return torch.from_numpy(np.sqrt(sums).astype(np.float32))


def add_firing_counts(counts: torch.Tensor, pre_activation: torch.Tensor) -> bool:
    """``counts += (pre_activation > 0).sum(0)`` for a 2-D (samples, units) pre-activation,
    in place through the C++ core; False (nothing done) where it does not apply."""
    if (pre_activation.dim() != 2 or counts.device.type != "cpu"
            or counts.dtype != torch.int64 or not counts.is_contiguous()
            or not _in_place_float32(pre_activation)):
        return False
    _core.count_positive_columns(pre_activation.numpy(), counts.numpy())
    return True
