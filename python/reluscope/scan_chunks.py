"""A scan over data that arrives in chunks of rows, one chunk in memory at a time.

Any iterator of 2-D chunks will do: a generator reading one file after
another, ``map(np.load, paths)``, a database cursor's batches. Each chunk goes
through the same checks as a whole ``x`` and then through the kernel
``chunk_size`` rows at a time; the statistics accumulate left to right, so when
every chunk but the last has a multiple of ``chunk_size`` rows the report is bit
for bit that of the scan of the concatenated rows (see ``scan_parts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ._validation import as_features, as_numpy
from .errors import NonFiniteActivations
from .scan_parts import ScanParts


def is_chunk_iterator(x) -> bool:
    """Tell whether x is an iterable that is not an array-like: a generator, an iterator, a reader.

    Sequences (lists, tuples) stay array-likes (rows), as do numpy arrays,
    tensors and data frames (anything numpy converts through ``__array__``); a
    mapping is refused as before, as data that is not numbers.
    """
    return (isinstance(x, Iterable) and not isinstance(x, (Sequence, Mapping, np.ndarray))
            and not hasattr(x, "__array__") and not hasattr(x, "__array_interface__"))


def chunk_scan_parts(model, chunks, chunk_size: int, dormancy: bool) -> ScanParts:
    """Return the scan statistics of every row of every chunk (``model`` an already checked MLP)."""
    hidden = model.hidden_layers
    parts = ScanParts.empty(hidden, dormancy)
    n_chunks = 0
    for index, chunk in enumerate(chunks):
        n_chunks += 1
        add_chunk(parts, hidden, checked_chunk(chunk, index, model.n_features), index,
                  chunk_size)
    if n_chunks == 0:
        raise ValueError("x is an empty iterator: it yielded no chunks to scan")
    if parts.n_samples == 0:
        raise ValueError(f"x is empty: its {n_chunks} chunk(s) hold 0 samples")
    return parts


def add_chunk(parts: ScanParts, hidden, rows: np.ndarray, index: int, chunk_size: int) -> ScanParts:
    """``parts.add_rows(hidden, rows, chunk_size)``, a non-finite error saying which chunk."""
    try:
        return parts.add_rows(hidden, rows, chunk_size)
    except NonFiniteActivations as error:
        # The stream numbers the samples within the chunk; say so rather than
        # pretend they are positions in the whole dataset.
        raise NonFiniteActivations(
            f"in chunk {index} of x (samples numbered within the chunk): {error}",
            layer=error.layer, n_samples=error.n_samples, n_units=error.n_units,
            first_sample=error.first_sample, cause=error.cause) from None


def checked_chunk(chunk, index: int, n_features: int) -> np.ndarray:
    """Chunk ``index`` as C-contiguous float32 (n_rows, n_features); an empty chunk is allowed."""
    name = f"chunk {index} of x"
    array = as_numpy(chunk)
    if array.ndim == 2 and array.shape[0] == 0:
        if array.shape[1] != n_features:
            raise ValueError(f"{name} has {array.shape[1]} features but the first layer "
                             f"expects {n_features}")
        return np.empty((0, n_features), dtype=np.float32)
    if array.ndim == 1:
        raise ValueError(f"{name} must be 2-dimensional (n_samples, n_features), got shape "
                         f"{array.shape}; a single sample is array.reshape(1, -1)")
    return as_features(array, name=name, n_features=n_features)
