"""A scan of a dask array, computed where its chunks live.

One task per block of rows turns the block into its scan statistics
(``ScanParts``, a few numbers per unit); those are combined in a tree of
``TREE_FAN_IN`` at a time, and only the root comes back to the caller. No block
of data ever travels to the client, and each worker holds one block at a time
per thread, so a dataset larger than the cluster's memory streams through it.

The tasks run on dask's active scheduler: a ``distributed.Client`` when one is
open (a ``LocalCluster`` or a remote scheduler), else dask's local threads.
dask itself is imported only here, when a dask array is given.
"""

from __future__ import annotations

import math

from .scan_chunks import add_chunk, checked_chunk
from .scan_parts import ScanParts

TREE_FAN_IN = 8
"""Partials per combine: each is a few numbers per unit, so a wide fan-in costs
little and keeps the tree shallow (3 levels for 512 blocks). The tree's shape
depends only on the number of blocks, so the order of the float sums, and the
result, are the same on every run."""


def is_dask_array(x) -> bool:
    """Tell whether x is a dask array, by its class's module (dask is not imported to ask)."""
    return (type(x).__module__.partition(".")[0] == "dask"
            and hasattr(x, "to_delayed") and hasattr(x, "chunks"))


def dask_scan_parts(model, x, chunk_size: int, dormancy: bool) -> ScanParts:
    """Return the scan statistics of a 2-D dask array's rows (``model`` an already checked MLP)."""
    import dask

    if x.ndim != 2:
        raise ValueError(f"x must be 2-dimensional (n_samples, n_features), got a dask array "
                         f"of shape {x.shape}")
    if math.isnan(x.shape[1]):
        # Known only once the blocks are computed (an array made with from_delayed
        # and shape (n, nan), say): each block's width is checked on its worker,
        # and the error names the block. Column blocks of unknown width cannot be
        # joined into whole rows.
        if len(x.chunks[1]) > 1:
            raise ValueError("x is split into column blocks of unknown width: call "
                             "x.compute_chunk_sizes() first, or give the blocks' shapes")
    elif x.shape[1] != model.n_features:
        raise ValueError(f"x has {x.shape[1]} features but the first layer expects "
                         f"{model.n_features}")
    if x.shape[0] == 0:
        raise ValueError("x is empty: it has 0 samples")
    if len(x.chunks[1]) > 1:
        # The kernel needs whole rows: the columns of a row block go into one
        # block, moved between workers, never to the client.
        x = x.rechunk({1: -1})
    # One copy of the model in the graph, shared by every task.
    model_node = dask.delayed(model, traverse=False)
    parts = [dask.delayed(block_parts)(model_node, block, index, chunk_size, dormancy)
             for index, block in enumerate(x.to_delayed().ravel())]
    while len(parts) > 1:
        parts = [dask.delayed(ScanParts.combine)(*parts[start:start + TREE_FAN_IN])
                 for start in range(0, len(parts), TREE_FAN_IN)]
    (total,) = dask.compute(parts[0])
    if total.n_samples == 0:
        raise ValueError("x is empty: its chunks hold 0 samples")
    return total


def block_parts(model, block, index: int, chunk_size: int, dormancy: bool) -> ScanParts:
    """Return the statistics of row block ``index`` (runs on the worker that holds the block)."""
    hidden = model.hidden_layers
    rows = checked_chunk(block, index, model.n_features)
    return add_chunk(ScanParts.empty(hidden, dormancy), hidden, rows, index, chunk_size)
