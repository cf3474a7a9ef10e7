"""Data streamed through a model's layers a chunk of rows at a time.

``stream_layers`` runs x through the layers ``chunk_size`` rows at a time and
hands each layer's result for each chunk to its caller, in two buffers reused
for every chunk: memory is a few chunks of the widest layer, whatever the
number of samples (the model's forward, predict, born_dead and the scan all use
it). A row's result does not depend on the other rows of its chunk (the GEMM
computes every element with the inner dimension in a fixed order and splits
only output tiles between threads), so a streamed result is bit for bit the
unchunked one, whatever ``chunk_size``.

Every layer's pre-activations are checked for NaN and Inf in the forward
kernel's epilogue (a count per unit, in the same pass). The first one found
raises ``NonFiniteActivations``, after a second, slower pass that counts the
samples and units affected and tells why.
"""

from __future__ import annotations

import numpy as np

from . import _core
from .errors import NonFiniteActivations

DEFAULT_CHUNK_ROWS = 8192
"""Rows per chunk: 8192 x 1024 units is 32 MiB per buffer."""

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class StreamBuffers:
    """The two activation buffers of ``stream_layers``, kept across calls.

    A caller that streams many pieces of rows keeps one, so that each piece does
    not allocate (and page-fault) the buffers anew.
    """

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def get(self, size: int) -> list[np.ndarray]:
        """Return the two buffers, grown to at least ``size`` floats each."""
        if not self.arrays or self.arrays[0].size < size:
            self.arrays = [np.empty(size, dtype=np.float32) for _ in range(2)]
        return self.arrays


def stream_layers(layers, x: np.ndarray, chunk_size: int = DEFAULT_CHUNK_ROWS, *,
                  stats=None, keep_pre: bool = False, outputs: np.ndarray | None = None,
                  check_finite: bool = True, buffers: StreamBuffers | None = None):
    """Yield ``(layer_index, start, pre_activation, output)`` per layer of each chunk.

    The arrays are (rows of the chunk, fan_out) views of buffers that the next
    layers overwrite: read them before asking for the next item.

    Parameters
    ----------
    layers : list of Dense
        Already checked (``layer_checks.check_layers``).
    x : ndarray (n_samples, fan_in of layers[0]), C-contiguous float32
    chunk_size : int
    stats : list of (firing_counts, max_pre_activation) or None, optional
        Per layer, arrays (fan_out,) the kernel accumulates into (see
        ``Dense.forward``); None for a layer without.
    keep_pre : bool
        Keep each layer's pre-activations apart from its outputs. Without it
        the output overwrites the pre-activation (the same array is yielded
        twice) unless the layer is linear, where they are the same anyway.
    outputs : ndarray (n_samples, fan_out of the last layer), optional
        Where the last layer writes its output (and pre-activation), rows
        ``start:start + rows`` per chunk.
    check_finite : bool
        Raise ``NonFiniteActivations`` at the first NaN or Inf pre-activation.
    buffers : StreamBuffers, optional
        Where to keep the activation buffers across calls (default: new ones).

    Raises
    ------
    NonFiniteActivations
    """
    n = x.shape[0]
    last = len(layers) - 1
    rows = min(chunk_size, n)
    buffered = layers if outputs is None else layers[:-1]
    widest = max((layer.fan_out for layer in buffered), default=0)
    activations = (buffers or StreamBuffers()).get(rows * widest)
    pre_buffer = np.empty(rows * widest, dtype=np.float32) if keep_pre else None
    nonfinite = [np.zeros(layer.fan_out, dtype=np.int64) for layer in layers]
    for start in range(0, n, chunk_size):
        layer_input = x[start:start + chunk_size]
        m = layer_input.shape[0]
        for i, layer in enumerate(layers):
            fan_out = layer.fan_out
            if outputs is not None and i == last:
                out = outputs[start:start + m]
            else:
                out = activations[i % 2][:m * fan_out].reshape(m, fan_out)
            pre = out
            if pre_buffer is not None and layer.activation.kind != _core.Activation.identity:
                pre = pre_buffer[:m * fan_out].reshape(m, fan_out)
            counts, maxima = (None, None) if stats is None or stats[i] is None else stats[i]
            _core.dense_forward(layer_input, layer.weight, layer.bias, pre, out,
                                layer.activation.kind, layer.activation.negative_slope,
                                counts, maxima, nonfinite[i])
            if check_finite and nonfinite[i].any():
                raise nonfinite_error(layers, x, chunk_size)
            yield i, start, pre, out
            layer_input = out


def nonfinite_error(layers, x: np.ndarray,
                    chunk_size: int = DEFAULT_CHUNK_ROWS) -> NonFiniteActivations:
    """Return the error for x through layers, whose forward met a NaN or Inf pre-activation.

    Runs the whole forward again (the error path, where time does not matter)
    to count, in the first layer affected, the samples and units with a
    non-finite pre-activation, and to tell the cause: a NaN or Inf weight or
    bias in that layer or before it, or else inputs that overflow float32.
    """
    bad_units = [np.zeros(layer.fan_out, dtype=bool) for layer in layers]
    bad_samples = [0] * len(layers)
    first_sample = [-1] * len(layers)
    for i, start, pre, _ in stream_layers(layers, x, chunk_size, keep_pre=True,
                                          check_finite=False):
        finite = np.isfinite(pre)
        bad_rows = ~finite.all(axis=1)
        count = int(np.count_nonzero(bad_rows))
        if count:
            if first_sample[i] < 0:
                first_sample[i] = start + int(np.argmax(bad_rows))
            bad_samples[i] += count
            bad_units[i] |= ~finite.all(axis=0)
    affected = [i for i, count in enumerate(bad_samples) if count]
    if not affected:  # cannot happen: the kernel and numpy agree on what is finite
        raise AssertionError("a non-finite pre-activation was counted but not found again")
    index = affected[0]
    n_units = int(np.count_nonzero(bad_units[index]))
    where = (f"layer {index} has NaN or Inf pre-activations on {bad_samples[index]} of "
             f"{x.shape[0]} samples (first: sample {first_sample[index]}) in {n_units} of "
             f"{layers[index].fan_out} units")
    cause, reason = _cause(layers[:index + 1], x)
    return NonFiniteActivations(
        f"{where}: {reason}. A ReLU would turn NaN into 0, so these units would pass for "
        f"dead; nothing was computed with them",
        layer=index, n_samples=bad_samples[index], n_units=n_units,
        first_sample=first_sample[index], cause=cause)


def nonfinite_parameter(layers) -> str | None:
    """"layers[i].weight holds n NaN or Inf value(s)" for the first such parameter, or None."""
    for i, layer in enumerate(layers):
        for role in ("weight", "bias"):
            values = getattr(layer, role)
            n_bad = int(values.size - np.count_nonzero(np.isfinite(values)))
            if n_bad:
                return f"layers[{i}].{role} holds {n_bad} NaN or Inf value(s)"
    return None


def _cause(layers, x: np.ndarray) -> tuple[str, str]:
    """Why the last of these layers met a non-finite value: (cause, explanation)."""
    bad_parameter = nonfinite_parameter(layers)
    if bad_parameter is not None:
        return "non-finite weights", (
            f"non-finite weights: {bad_parameter} (set after construction?)")
    # All finite: the values grew past float32 on the way. Whichever of x and
    # the weights is the larger is the likelier culprit; both are given.
    largest_input = float(np.abs(x).max())
    largest_weight = max(float(np.abs(layer.weight).max()) for layer in layers)
    cause = "inputs too large" if largest_input >= largest_weight else "weights too large"
    advice = "scale the inputs down" if cause == "inputs too large" else (
        "the weights have grown too large (a diverging run?)")
    return cause, (
        f"the {cause.split()[0]} are too large: every weight and bias up to layer "
        f"{len(layers) - 1} is finite, but with |x| up to {largest_input:.3g} and weights up "
        f"to {largest_weight:.3g} the values overflow float32 (largest {_FLOAT32_MAX:.3g}); "
        f"{advice}")
