"""The units of a PyTorch module, found by watching its forward pass.

A *site* is one call of an ``nn.Linear`` or ``nn.Conv1d/2d/3d`` (the
*producer*) whose output tensor is the input of an ``nn.ReLU``,
``nn.LeakyReLU`` or ``nn.ReLU6`` module. Its units are the Linear's output
features or the convolution's output channels, and the ReLU's input is their
pre-activation.

Nothing is read from the module's code: forward hooks remember, per forward
pass, which producer call made each output tensor (by identity, through a weak
reference), and a forward *pre*-hook on each ReLU module looks its input up
there. The pre-hook runs before an in-place ReLU overwrites its input.

Consequences, by design:

- ``torch.relu`` / ``F.relu`` calls are invisible to module hooks: their
  layers are not found (use ``nn.ReLU`` modules).
- Anything between the producer and the ReLU (BatchNorm, Dropout in training,
  a residual sum) makes a new tensor: that producer is not a site.
- One ReLU module reused after several producers counts per call site, each
  producer's units apart. A producer called several times in one forward
  (shared weights) gives one site per call, named ``path#1``, ``path#2``, ...
  in call order; a producer called once is named by its path alone.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RELU_FAMILY = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)

SiteKey = tuple  # (producer module, 1-based call number in the forward pass)

# Where a producer's input came from, for the cause rules (HiddenLayerWeights.chained).
FROM_MODULE_INPUT = "module input"


@dataclass(frozen=True)
class Site:
    """One producer call feeding a ReLU-family module."""

    path: str
    call: int
    producer: nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d  # one of PRODUCERS
    activation: nn.Module

    @property
    def key(self) -> SiteKey:
        """The site's key: (producer module, call number)."""
        return (self.producer, self.call)

    @property
    def n_units(self) -> int:
        """Units of the site: the producer's output features or channels."""
        producer = self.producer
        return producer.out_features if isinstance(producer, nn.Linear) else producer.out_channels

    @property
    def leaky(self) -> bool:
        """Whether the activation is a LeakyReLU with a nonzero slope."""
        return isinstance(self.activation, nn.LeakyReLU) and self.activation.negative_slope != 0

    def fired_per_sample(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """(n_samples, n_units) bool: the unit's pre-activation is > 0 at some position.

        A Linear's units are its last axis (any axes between the samples and
        the units are positions); a convolution's are the channel axis, after
        the samples, and its positions the spatial axes.
        """
        pre = self.batched(pre_activation)
        if isinstance(self.producer, nn.Linear):
            if pre.dim() == 2:
                return pre > 0
            return (pre > 0).reshape(pre.shape[0], -1, pre.shape[-1]).any(1)
        return (pre > 0).flatten(2).any(2)

    def unit_maxima(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """(n_units,): the largest pre-activation of each unit, over samples and positions."""
        pre = self.batched(pre_activation)
        if isinstance(self.producer, nn.Linear):
            return pre.reshape(-1, pre.shape[-1]).amax(0)
        return pre.transpose(0, 1).reshape(pre.shape[1], -1).amax(1)

    def mean_abs_activation_per_sample(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """(n_samples, n_units): |activation| averaged over positions."""
        magnitude = self.activate(self.batched(pre_activation)).abs()
        if isinstance(self.producer, nn.Linear):
            return magnitude.reshape(magnitude.shape[0], -1, magnitude.shape[-1]).mean(1)
        return magnitude.flatten(2).mean(2)

    def activate(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """Return the ReLU's output, computed apart (an in-place module overwrites its input)."""
        relu = self.activation
        if isinstance(relu, nn.LeakyReLU):
            return functional.leaky_relu(pre_activation, relu.negative_slope)
        if isinstance(relu, nn.ReLU6):
            return pre_activation.clamp(0.0, 6.0)
        return pre_activation.clamp(min=0.0)

    def batched(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """Return the pre-activation with a leading samples axis (of 1 for an unbatched call)."""
        if isinstance(self.producer, nn.Linear):
            return pre_activation.unsqueeze(0) if pre_activation.dim() == 1 else pre_activation
        spatial = self.producer.weight.dim() - 2  # Conv1d: 1 ... Conv3d: 3
        unbatched = pre_activation.dim() == spatial + 1
        return pre_activation.unsqueeze(0) if unbatched else pre_activation


def site_names(sites: list[Site]) -> list[str]:
    """Name the sites by module path, with ``#call`` where a producer has more than one site."""
    calls: dict[str, int] = {}
    for site in sites:
        calls[site.path] = calls.get(site.path, 0) + 1
    return [f"{s.path}#{s.call}" if calls[s.path] > 1 else s.path for s in sites]


def _ignore_site(site: Site, activation: torch.Tensor) -> None:
    """Ignore a site: the callback of a removed SiteWatcher."""


def _never() -> bool:
    """Count nothing: the enabled test of a removed SiteWatcher."""
    return False


class SiteWatcher:
    """Hooks on ``root`` that hand the pre-activation of every site to ``on_site``.

    ``on_site(site, pre_activation)`` is called inside the forward pass, once
    per site call, while ``enabled()`` is true at the start of that forward
    pass. Only weak references to output tensors are kept, and only until the
    forward pass ends: no activation outlives its batch here.

    With ``track_inputs``, ``input_origin`` maps each site key to where its
    producer's input came from: ``FROM_MODULE_INPUT``, the key of the site
    whose activation it is, or None (anything else).
    """

    def __init__(self, root: nn.Module, on_site: Callable[[Site, torch.Tensor], None],
                 enabled: Callable[[], bool] = lambda: True, track_inputs: bool = False):
        self.root = root
        self.on_site = on_site
        self.enabled = enabled
        self.track_inputs = track_inputs
        self.sites: dict[SiteKey, Site] = {}
        self.input_origin: dict[SiteKey, object] = {}
        self._paths = {module: path for path, module in root.named_modules()}
        self._active = False
        self._calls: dict[nn.Module, int] = {}
        self._outputs: dict[int, tuple] = {}  # id(tensor) -> (weakref, producer, call)
        self._activations: dict[int, tuple] = {}  # id(tensor) -> (weakref, site key)
        self._root_input: weakref.ref[torch.Tensor] | None = None
        # (ReLU module, site key) between its two hooks
        self._pending_activation: tuple[nn.Module, SiteKey] | None = None
        self._handles = [root.register_forward_pre_hook(self._begin_forward),
                         root.register_forward_hook(self._end_forward, always_call=True)]
        for module in self._paths:
            if isinstance(module, PRODUCERS):
                self._handles.append(module.register_forward_hook(self._producer_done))
            elif isinstance(module, RELU_FAMILY):
                self._handles.append(module.register_forward_pre_hook(self._activation_input))
                if track_inputs:
                    self._handles.append(module.register_forward_hook(self._activation_done))

    def remove(self) -> None:
        """Remove every hook this watcher added, and let go of its callbacks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._forget()
        # The callbacks are mostly bound methods of whatever holds this watcher: a
        # reference cycle, which kept that owner and the model it refers to alive
        # until the next garbage collection. At a process's exit that collection
        # came during the interpreter's shutdown, where PyTorch's gloo threads,
        # dropping a DistributedDataParallel model's last tensors, aborted it.
        self.on_site = _ignore_site
        self.enabled = _never

    def _forget(self) -> None:
        self._calls.clear()
        self._outputs.clear()
        self._activations.clear()
        self._root_input = None

    def _begin_forward(self, module, args) -> None:
        self._forget()
        self._active = bool(self.enabled())
        if self._active and self.track_inputs and args and isinstance(args[0], torch.Tensor):
            self._root_input = weakref.ref(args[0])

    def _end_forward(self, module, args, output) -> None:
        self._forget()
        self._active = False

    def _producer_done(self, producer, args, output) -> None:
        if not self._active:
            return
        call = self._calls.get(producer, 0) + 1
        self._calls[producer] = call
        self._outputs[id(output)] = (weakref.ref(output), producer, call)
        if self.track_inputs and args:
            self.input_origin[(producer, call)] = self._origin(args[0])

    def _origin(self, tensor):
        if self._root_input is not None and self._root_input() is tensor:
            return FROM_MODULE_INPUT
        entry = self._activations.get(id(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def _activation_input(self, activation, args) -> None:
        if not self._active or not args:
            return
        pre_activation = args[0]
        # Popped: a producer output read by two ReLUs is one site, counted once.
        entry = self._outputs.pop(id(pre_activation), None)
        if entry is None or entry[0]() is not pre_activation:
            return
        _, producer, call = entry
        key = (producer, call)
        site = self.sites.get(key)
        if site is None:
            site = Site(self._paths[producer], call, producer, activation)
            self.sites[key] = site
        self.on_site(site, pre_activation)
        if self.track_inputs:
            self._pending_activation = (activation, key)

    def _activation_done(self, activation, args, output) -> None:
        pending = self._pending_activation
        self._pending_activation = None
        if self._active and pending is not None and pending[0] is activation:
            self._activations[id(output)] = (weakref.ref(output), pending[1])
