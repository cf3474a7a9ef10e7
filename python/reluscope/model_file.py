"""Model files: ``MLP.save(path)`` and ``MLP.load(path)``.

A model file is an archive (``reluscope._archive``): the arrays
``layers/<i>/weight`` (fan_in, fan_out) and ``layers/<i>/bias`` (fan_out,),
float32, one pair per layer, and a manifest with

- ``format``: "reluscope.model"; ``schema_version``: 1; ``reluscope_version``;
- ``layer_sizes``: ``[n_features, hidden_1, ..., n_outputs]``;
- ``activation`` (of the hidden layers) and ``negative_slope`` (leaky_relu's;
  0.0 otherwise);
- ``init``: the initializer's name, or null (a model built from weights, or
  one drawn by a callable, which a file cannot hold); ``init_params``: its
  parameters, or null when they are not JSON values;
- ``notes``: what was left out, in words.

Checkpoints hold the same description under their ``model`` entry, with the
arrays under ``model/``. The arrays come back bit for bit.
"""

from __future__ import annotations

import numpy as np

from ._archive import read_archive, to_exact_json, translated_errors, write_archive
from .errors import CheckpointError
from .initializers import INITIALIZERS
from .layer_stream import nonfinite_parameter
from .model import MLP

MODEL_FORMAT = "reluscope.model"
MODEL_SCHEMA_VERSION = 1


def save_model(model: MLP, path) -> str:
    """Write ``model`` to ``path`` (atomically); return the path."""
    description, arrays = describe_model(model)
    return write_archive(path, {"format": MODEL_FORMAT, "schema_version": MODEL_SCHEMA_VERSION,
                                **description}, arrays)


def load_model(path) -> MLP:
    """Return the model saved at ``path``; raise CheckpointError unless it is a sound model file."""
    manifest, arrays = read_archive(path, MODEL_FORMAT, MODEL_SCHEMA_VERSION)
    return rebuild_model(manifest, arrays, str(path))


def describe_model(model: MLP, prefix: str = "") -> tuple[dict, dict[str, np.ndarray]]:
    """Return (description for a manifest, arrays named under ``prefix``) of ``model``.

    Raises what ``MLP.check_layers`` raises, and a ValueError for a NaN or Inf
    parameter: a file is written only when loading will take it back.
    """
    model.check_layers()
    bad_parameter = nonfinite_parameter(model.layers)
    if bad_parameter is not None:
        raise ValueError(f"{bad_parameter}; a model file holds finite parameters only "
                         f"(loading refuses others)")
    notes = []
    init = model.init
    init_params: dict | None = model.init_params
    if init is not None and not isinstance(init, str):
        notes.append(f"init was the callable {_callable_name(init)}, which a file cannot hold; "
                     "stored as null")
        init, init_params = None, None
    if init_params is not None:
        try:
            init_params = to_exact_json(dict(init_params), "init_params")
        except TypeError as error:
            notes.append(f"init_params not stored: {error}")
            init_params = None
    description = {
        "layer_sizes": model.layer_sizes,
        "activation": model.activation.name,
        "negative_slope": model.activation.negative_slope,
        "init": init,
        "init_params": init_params,
        "notes": notes,
    }
    arrays = {}
    for i, layer in enumerate(model.layers):
        arrays[f"{prefix}layers/{i}/weight"] = layer.weight
        arrays[f"{prefix}layers/{i}/bias"] = layer.bias
    return description, arrays


def rebuild_model(description: dict, arrays: dict, name: str, prefix: str = "") -> MLP:
    """Return the model of ``describe_model``'s output; raise CheckpointError naming ``name``."""
    with translated_errors(name):
        sizes = description["layer_sizes"]
        if not isinstance(sizes, list) or len(sizes) < 2 or not all(
                isinstance(size, int) and not isinstance(size, bool) and size >= 1
                for size in sizes):
            raise CheckpointError(f"{name}: layer_sizes must be a list of at least two "
                                  f"positive integers, got {sizes!r}")
        pairs = []
        for i in range(len(sizes) - 1):
            weight = _float32_array(arrays, f"{prefix}layers/{i}/weight", name)
            bias = _float32_array(arrays, f"{prefix}layers/{i}/bias", name)
            pairs.append((weight, bias))
        activation = description["activation"]
        slope = description["negative_slope"]
        model = MLP(sizes, activation, weights=pairs,
                    **({"negative_slope": slope} if activation == "leaky_relu" else {}))
        init = description.get("init")
        if init is not None:
            if init not in INITIALIZERS:
                raise CheckpointError(f"{name} names the initializer {init!r}, which this "
                                      f"reluscope does not know")
            model.init = init
            model.init_params = dict(description.get("init_params") or {})
    return model


def _float32_array(arrays: dict, key: str, name: str) -> np.ndarray:
    if key not in arrays:
        raise CheckpointError(f"{name} has no array {key!r}")
    array = arrays[key]
    if array.dtype != np.float32:
        raise CheckpointError(f"{name}: {key} is {array.dtype}, expected float32")
    return array


def _callable_name(function) -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"{module}.{name}" if module else name
