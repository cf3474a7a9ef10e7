"""What a PyTorch scan accepts as data: the one place batches become input tensors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


def module_device_and_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the module's first parameter (CPU, float32 if none)."""
    for tensor in module.parameters():
        return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def input_batches(batches, module: nn.Module) -> Iterator[torch.Tensor]:
    """The input tensor of each batch, on the module's device.

    ``batches`` is one tensor (or numpy array), taken as a single batch, or any
    iterable of tensors or of (input, label, ...) tuples or lists, such as a
    ``DataLoader``. Floating-point inputs take the module's dtype; others (token
    ids) keep theirs.
    """
    device, dtype = module_device_and_dtype(module)
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        batches = [batches]
    try:
        iterator = iter(batches)
    except TypeError:
        raise TypeError("batches must be a tensor or an iterable of tensors or (input, label) "
                        f"pairs, such as a DataLoader; got {type(batches).__name__}") from None
    for number, batch in enumerate(iterator):
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"batch {number} is a {type(batch).__name__}; expected a tensor or "
                            "an (input, label) pair whose input is a tensor")
        yield x.to(device=device, dtype=dtype if x.is_floating_point() else None)


@contextmanager
def evaluating(module: nn.Module):
    """``module`` (and every submodule) in eval mode, each put back as it was."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training
