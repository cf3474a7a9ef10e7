"""What a PyTorch scan accepts as data: the one place batches become input tensors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


def module_device_and_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Return the device and floating dtype of the module's first parameter, else CPU, float32."""
    for tensor in module.parameters():
        return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def input_batches(batches, module: nn.Module) -> Iterator[torch.Tensor]:
    """Yield the input tensor of each batch, on the module's device.

    ``batches`` is one tensor (or numpy array), taken as a single batch, or any
    iterable of tensors or of (input, label, ...) tuples or lists, such as a
    ``DataLoader``. Floating-point inputs take the module's dtype; others (token
    ids) keep theirs.
    """
    device, dtype = module_device_and_dtype(module)
    check_batches(batches, "batches")
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        batches = [batches]
    for number, batch in enumerate(batches):
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"batch {number} is a {type(batch).__name__}; expected a tensor or "
                            "an (input, label) pair whose input is a tensor")
        yield x.to(device=device, dtype=dtype if x.is_floating_point() else None)


def check_batches(batches, argument: str) -> None:
    """Raise a TypeError naming ``argument`` unless ``input_batches`` can read ``batches``.

    A dict or a string is iterable, but by its keys or characters: never batches.
    """
    accepted = (f"{argument} must be a tensor, an array, or an iterable of tensors or "
                "(input, label) pairs such as a DataLoader")
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        return
    if isinstance(batches, Mapping):
        raise TypeError(f"{accepted}; got a {type(batches).__name__}, whose iteration gives "
                        "its keys: pass its input tensor")
    if isinstance(batches, (str, bytes)):
        raise TypeError(f"{accepted}; got a {type(batches).__name__}: load the data first")
    # Not iter(batches): a DataLoader with workers would start them for nothing. A Dataset
    # may iterate by __getitem__ alone.
    if not (hasattr(batches, "__iter__") or hasattr(batches, "__getitem__")):
        raise TypeError(f"{accepted}; got {type(batches).__name__}")


@contextmanager
def evaluating(module: nn.Module):
    """Put ``module`` (and every submodule) in eval mode, each put back as it was."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training
