"""The PyTorch monitor's firing counts through the C++ core where the tensor allows.

On the CPU, for a float32 pre-activation whose memory is one C-contiguous block,
reluscope's single-threaded kernel ``_core.count_positive_columns`` reads the tensor's
memory in place, one pass, where ``(pre > 0).sum(0)`` makes a bool tensor and then
reduces it over the first axis. Anything else (another device or dtype, a strided
view) goes through the torch ops, on the tensor's device.

(Row norms stay with ``torch.linalg.vector_norm``: it already runs at memory speed.)
"""

from __future__ import annotations

import torch

from .. import _core


def _in_place_float32(tensor: torch.Tensor) -> bool:
    return (tensor.device.type == "cpu" and tensor.dtype == torch.float32
            and tensor.is_contiguous())


def add_firing_counts(counts: torch.Tensor, pre_activation: torch.Tensor) -> bool:
    """Add ``(pre_activation > 0).sum(0)`` to ``counts`` in place, through the C++ core.

    For a 2-D (samples, units) pre-activation; False (nothing done) where it
    does not apply.
    """
    if (pre_activation.dim() != 2 or counts.device.type != "cpu"
            or counts.dtype != torch.int64 or not counts.is_contiguous()
            or not _in_place_float32(pre_activation)):
        return False
    _core.count_positive_columns(pre_activation.detach().numpy(), counts.numpy())
    return True
