"""PyTorch's ``nn.Sequential`` of Linear layers to reluscope's MLP and back.

PyTorch is imported inside the functions, so that ``import reluscope`` never
loads it. Modules are named by their path in ``module.named_modules()`` ("2",
or "1.0" for the first entry of a Sequential nested at entry 1), the name a
PyTorch user sees when printing the network.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import get_activation
from .model import MLP

TORCH_EXTRA_HINT = "MLP.from_torch and MLP.to_torch need PyTorch: pip install 'reluscope[torch]'"

SUPPORTED = ("an nn.Sequential (nesting allowed) of nn.Linear layers with nn.ReLU, "
             "nn.LeakyReLU (one slope for the whole network) or nn.Identity between them; "
             "nn.Dropout and nn.Flatten() (its default dims) are accepted anywhere")


def import_torch():
    """Return the ``torch`` module, or an ImportError naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_EXTRA_HINT) from None
    return torch


def mlp_from_torch(module) -> MLP:
    """See ``MLP.from_torch``."""
    torch = import_torch()
    nn = torch.nn
    if not _runs_as(module, nn.Sequential):
        raise TypeError(f"MLP.from_torch takes {SUPPORTED}; got {_name(module)}. "
                        f"Other models convert with MLP.from_weights([(weight, bias), ...], "
                        f"layout='torch')")
    linears: list[tuple[str, Any]] = []  # (path, nn.Linear), in order
    # Per gap between two Linears: its (path, activation module) or None.
    between: list[tuple[str, Any] | None] = []
    pending = None    # the activation met since the last Linear
    for path, child in _leaves(module, nn):
        if _runs_as(child, nn.Linear):
            if linears:
                _check_chained(linears[-1], (path, child))
                between.append(pending)
            elif pending is not None:
                raise ValueError(f"module {pending[0]} ({pending[1]}) comes before the first "
                                 f"nn.Linear: a reluscope MLP starts with a Linear layer")
            linears.append((path, child))
            pending = None
        elif _runs_as(child, nn.ReLU) or _runs_as(child, nn.LeakyReLU):
            if pending is not None:
                raise ValueError(f"modules {pending[0]} ({pending[1]}) and {path} ({child}) are "
                                 f"two activations in a row: an MLP has one between two "
                                 f"nn.Linear layers")
            pending = (path, child)
        elif _is_pass_through(child, nn):
            continue
        else:
            raise TypeError(f"module {path} ({_name(child)}) is not supported by "
                            f"MLP.from_torch, which takes {SUPPORTED}")
    if not linears:
        raise ValueError("MLP.from_torch found no nn.Linear layer in the module")
    if pending is not None:
        raise ValueError(f"module {pending[0]} ({pending[1]}) comes after the last nn.Linear, "
                         f"{linears[-1][0]}: the output layer of a reluscope MLP is linear; "
                         f"convert the network without it")
    activation, slope = _shared_activation(linears, between)
    weights = [_parameters(path, linear, torch) for path, linear in linears]
    return MLP.from_weights(weights, activation, negative_slope=slope, layout="torch")


def mlp_to_torch(model: MLP):
    """See ``MLP.to_torch``."""
    torch = import_torch()
    nn = torch.nn
    model.check_layers()
    modules = []
    for i, layer in enumerate(model.layers):
        # skip_init builds the layer without drawing its initial weights, which
        # would advance PyTorch's global generator behind the caller's back.
        linear = torch.nn.utils.skip_init(nn.Linear, layer.fan_in, layer.fan_out,
                                          dtype=torch.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weight.T))
            linear.bias.copy_(torch.from_numpy(layer.bias))
        modules.append(linear)
        if i < len(model.layers) - 1:
            modules.append(_torch_activation(model.activation, nn))
    return nn.Sequential(*modules)


def _leaves(module, nn):
    """(path, module) for every module inside nested nn.Sequential containers, in order.

    Each place a module is used counts: a network commonly reuses one
    ``nn.ReLU()`` after every layer, which ``named_children`` would list once.
    The walk is in pre-order, so an unsupported module is met (and refused)
    before anything inside it.
    """
    for path, child in module.named_modules(remove_duplicate=False):
        if path and not _runs_as(child, nn.Sequential):
            yield path, child


def _runs_as(module, cls) -> bool:
    """Tell whether ``module`` is a ``cls`` whose forward is ``cls``'s own.

    A subclass that only changes how a layer is built (its initialization,
    say) computes what the layer computes; one that overrides ``forward``
    may compute anything, and is refused like any unknown module.
    """
    return isinstance(module, cls) and type(module).forward is cls.forward


def _is_pass_through(module, nn) -> bool:
    """Identity, Dropout (the identity in eval mode) or a Flatten of the feature axes."""
    if _runs_as(module, nn.Identity) or _runs_as(module, nn.Dropout):
        return True
    # Flatten(1, -1) leaves (n_samples, n_features) as it is; other dims would
    # merge the samples or keep more than two axes, which no MLP input has.
    return _runs_as(module, nn.Flatten) and (module.start_dim, module.end_dim) == (1, -1)


def _check_chained(previous, current) -> None:
    """Raise a ValueError unless the Linear ``current`` takes what ``previous`` gives."""
    (previous_path, previous_linear), (path, linear) = previous, current
    if linear.in_features != previous_linear.out_features:
        raise ValueError(f"module {path} ({linear}) takes {linear.in_features} features but the "
                         f"nn.Linear before it, module {previous_path}, gives "
                         f"{previous_linear.out_features}")


def _describe_gap(gap, linears, i) -> str:
    if gap is None:
        return f"no activation between modules {linears[i][0]} and {linears[i + 1][0]}"
    return f"module {gap[0]} ({gap[1]})"


def _gap_activation(gap) -> tuple[str, float]:
    """(reluscope activation name, leaky slope) of the modules between two Linears."""
    if gap is None:
        return "identity", 0.0
    module = gap[1]
    if hasattr(module, "negative_slope"):
        return "leaky_relu", float(module.negative_slope)
    return "relu", 0.0


def _shared_activation(linears, between) -> tuple[str, float]:
    """Return the one activation (and slope) of every gap, or a ValueError naming the odd one."""
    if not between:
        return "relu", 0.01  # a single Linear: no hidden layer, the activation is unused
    first = _gap_activation(between[0])
    for i, gap in enumerate(between[1:], start=1):
        if _gap_activation(gap) != first:
            raise ValueError(f"a reluscope MLP has one activation (and one leaky slope) for "
                             f"every hidden layer, but {_describe_gap(between[0], linears, 0)} "
                             f"differs from {_describe_gap(gap, linears, i)}")
    name, slope = first
    if name == "leaky_relu":
        try:
            get_activation(name, slope)
        except ValueError as error:
            raise ValueError(f"module {between[0][0]} ({between[0][1]}): {error}") from None
        return name, slope
    return name, 0.01


def _parameters(path: str, linear, torch) -> tuple[np.ndarray, np.ndarray]:
    """Return the Linear's (weight (out, in), bias (out,)) as float32 numpy arrays on the CPU."""
    weight, bias = linear.weight, linear.bias
    for name, tensor in (("weight", weight), ("bias", bias)):
        if tensor is None:
            continue
        if torch.nn.parameter.is_lazy(tensor):
            raise ValueError(f"module {path} ({_name(linear)}) has an uninitialized {name}: "
                             f"run one forward pass before converting")
        if tensor.is_meta:
            raise ValueError(f"module {path} ({linear}) has its {name} on the meta device, "
                             f"which holds no values: load the weights first")
        if not tensor.is_floating_point():
            raise TypeError(f"module {path} ({linear}) has a {tensor.dtype} {name}; "
                            f"MLP.from_torch takes floating-point weights")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"module {path} ({linear}) has a {name} with NaN or Inf")
    weight = _as_float32_numpy(weight, torch)
    bias = (np.zeros(linear.out_features, dtype=np.float32) if bias is None
            else _as_float32_numpy(bias, torch))
    return weight, bias


def _as_float32_numpy(tensor, torch) -> np.ndarray:
    # float16 and bfloat16 widen to float32 exactly; float64 rounds to nearest.
    # The array may share the tensor's memory: MLP.from_weights copies it.
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


def _torch_activation(activation, nn):
    if activation.name == "relu":
        return nn.ReLU()
    if activation.name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=float(activation.negative_slope))
    return nn.Identity()


def _name(obj) -> str:
    return type(obj).__name__
