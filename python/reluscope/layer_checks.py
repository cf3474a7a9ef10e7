"""The invariants of a model's layers, checked where the layers are used.

A model's layers are plain attributes: ``layer.weight = w`` or
``model.layers.append(...)`` after construction is allowed, and nothing checks
it at assignment. The kernels accept only arrays that are already right
(C-contiguous float32 of matching shapes), so every entry point that hands the
layers to C++ (the forward passes, the scan, born_dead, the trainer, the
monitor) first calls ``check_layers``. It names the layer and both shapes:
what the layer has and what it needs.

The invariants, for ``layers[i]``:

- it is a ``Dense`` with an ``Activation``;
- ``weight`` is a 2-D numpy array (fan_in, fan_out) with fan_in >= 1 and
  fan_out >= 1 (a layer of width 0 has no unit to compute);
- ``bias`` is a numpy array of shape (fan_out,);
- ``weight.shape[0]`` is the previous layer's fan_out (the layers chain);
- both are float32 in native byte order and C-contiguous;
- both are writeable, when the caller updates them in place (the trainer).

The check reads only shapes, dtypes and flags, never the values: a few
microseconds for a small model, so the trainer can run it at every ``step``
call. Non-finite values are caught where they matter, in the forward pass
(``reluscope.errors.NonFiniteActivations``).
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .layers import Dense

_FLOAT32 = np.dtype(np.float32)


def check_layers(layers, *, writeable: bool = False) -> None:
    """Raise unless ``layers`` satisfy the invariants above.

    Parameters
    ----------
    layers : list of Dense
        A model's ``layers``.
    writeable : bool
        Also require every weight and bias to be writeable (the trainer
        updates them in place).

    Raises
    ------
    TypeError
        A layer that is not a ``Dense``, an array that is not a numpy array,
        or one whose dtype is not float32.
    ValueError
        A wrong number of dimensions, a width of 0, a bias or weight whose
        shape does not fit, or an array that is not C-contiguous or (with
        ``writeable``) is read-only.
    """
    if type(layers) is not list or not layers:
        raise ValueError(f"model.layers must be a non-empty list of Dense layers, got {layers!r}")
    fan_out_before = None
    for i, layer in enumerate(layers):
        # The common case in one expression, about 0.5 us per layer (the
        # trainer runs this at every step call); the detailed check names
        # what is wrong only when it fails.
        try:
            weight, bias = layer.weight, layer.bias
            weight_flags, bias_flags = weight.flags, bias.flags
            shape = weight.shape
            right = (type(weight) is np.ndarray and type(bias) is np.ndarray
                     and weight.dtype is _FLOAT32 and bias.dtype is _FLOAT32
                     and weight_flags.c_contiguous and bias_flags.c_contiguous
                     and (not writeable or (weight_flags.writeable and bias_flags.writeable))
                     and len(shape) == 2 and shape[1] > 0
                     and (shape[0] > 0 if fan_out_before is None else shape[0] == fan_out_before)
                     and bias.shape == (shape[1],)
                     and type(layer) is Dense and type(layer.activation) is Activation)
        except AttributeError:
            right = False
        if not right:
            _check_layer(i, layer, fan_out_before, writeable)
        fan_out_before = layer.weight.shape[1]


def _check_layer(i: int, layer, fan_out_before: int | None, writeable: bool) -> None:
    """``layers[i]``, in detail: raises naming what is wrong (subclasses may pass)."""
    if not isinstance(layer, Dense):
        raise TypeError(f"layers[{i}] must be a reluscope.layers.Dense, "
                        f"got {type(layer).__name__}")
    if not isinstance(layer.activation, Activation):
        raise TypeError(f"layers[{i}].activation must be a reluscope.activations.Activation, "
                        f"got {layer.activation!r}")
    weight, bias = layer.weight, layer.bias
    _check_array(weight, i, "weight", writeable)
    _check_array(bias, i, "bias", writeable)
    if weight.ndim != 2:
        raise ValueError(f"layers[{i}].weight must be 2-D (fan_in, fan_out), "
                         f"has shape {weight.shape}")
    fan_in, fan_out = weight.shape
    if fan_out_before is not None and fan_in != fan_out_before:
        raise ValueError(f"layers[{i}].weight has shape {weight.shape} but layers[{i - 1}] "
                         f"has {fan_out_before} outputs: it needs ({fan_out_before}, "
                         f"{fan_out})")
    if fan_out == 0:
        raise ValueError(f"layers[{i}] has width 0 (weight shape {weight.shape}): every "
                         f"layer needs at least one unit")
    if fan_in == 0:
        raise ValueError(f"layers[{i}].weight has shape {weight.shape}: the first layer "
                         f"needs at least one input feature")
    if bias.shape != (fan_out,):
        raise ValueError(f"layers[{i}].bias has shape {bias.shape} but the weight "
                         f"{weight.shape} needs ({fan_out},)")


def _check_array(array, i: int, role: str, writeable: bool) -> None:
    """One weight or bias: a native float32 numpy array, C-contiguous, writeable if asked."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"layers[{i}].{role} must be a numpy array, got {type(array).__name__}")
    # `is` first: builtin dtypes are singletons, and `==` costs ~10x more.
    if array.dtype is not _FLOAT32 and array.dtype != _FLOAT32:
        raise TypeError(f"layers[{i}].{role} has dtype {array.dtype} (shape {array.shape}), "
                        f"needs float32: assign np.ascontiguousarray(value, dtype=np.float32)")
    flags = array.flags
    if not flags.c_contiguous:
        raise ValueError(f"layers[{i}].{role} of shape {array.shape} is not C-contiguous "
                         f"(strides {array.strides}): assign np.ascontiguousarray(value)")
    if writeable and not flags.writeable:
        raise ValueError(f"layers[{i}].{role} of shape {array.shape} is read-only, but the "
                         f"trainer updates it in place: assign a writeable copy")
