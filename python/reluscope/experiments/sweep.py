"""Run independent trials in parallel processes through joblib, locally or on a cluster.

``sweep(fn, grid)`` calls ``fn(**params)`` for every point of the grid and
returns the results in the grid's order. The trials run on joblib's active
backend: loky (separate worker processes, started fresh) unless the caller
chose another one with ``joblib.parallel_config``, for example::

    from dask.distributed import Client
    from joblib import parallel_config

    client = Client("tcp://scheduler:8786")       # or a LocalCluster
    with parallel_config(backend="dask"):
        results = sweep(train_one, {"lr": [0.01, 0.1, 1.0], "seed": [0, 1]})

``backend="ray"`` works the same way after ``ray.util.joblib.register_ray()``.
The trial function must be importable by the workers (defined at module level
in an installed module), and its arguments and result picklable.

Forking is refused: reluscope's own worker threads survive a fork (the child
starts new ones), but a trial may use a library whose threads do not, such as
PyTorch's OpenMP (GNU libgomp), where a child forked after OpenMP ran in the
parent can hang. So joblib's "multiprocessing" backend (which forks on Linux)
raises an error; loky, dask and ray start their workers without forking the parent.

Threads per worker: each worker's kernels use ``OMP_NUM_THREADS`` as the backend
sets it in the worker's environment (loky: cores / workers; dask's nanny: 1 by
default). Each trial result can record ``reluscope.get_num_threads()`` to show it.
"""

from __future__ import annotations

import itertools


def expand_grid(grid) -> list[dict]:
    """Return a list of parameter dicts: ``grid`` itself, or the product of a dict of lists."""
    if isinstance(grid, dict):
        names = list(grid)
        for name in names:
            if isinstance(grid[name], (str, bytes)) or not hasattr(grid[name], "__iter__"):
                raise TypeError(f"grid[{name!r}] must be a list of values, got {grid[name]!r}")
        return [dict(zip(names, values))
                for values in itertools.product(*(list(grid[n]) for n in names))]
    points = list(grid)
    for point in points:
        if not isinstance(point, dict):
            raise TypeError(f"a grid given as a list must hold dicts of parameters, got {point!r}")
    return points


def sweep(fn, grid, n_jobs: int = -1) -> list:
    """``[fn(**params) for params in expand_grid(grid)]``, run in parallel.

    ``n_jobs``: workers (default -1: every core, or every worker of a cluster
    backend). One trial, or ``n_jobs=1``,
    runs in this process.
    """
    points = expand_grid(grid)
    if not points:
        return []
    if n_jobs == 1 or len(points) == 1:
        return [fn(**params) for params in points]
    try:
        from joblib import Parallel, delayed
        from joblib.parallel import get_active_backend
    except ImportError:
        raise ImportError("parallel sweeps need joblib: pip install 'reluscope[experiments]'") \
            from None
    backend, _ = get_active_backend()
    if type(backend).__name__ == "MultiprocessingBackend":
        raise RuntimeError(
            "joblib's 'multiprocessing' backend forks this process, and a child forked after "
            "OpenMP has run (PyTorch's, for one) can hang; use the default 'loky', or 'dask' "
            "or 'ray'")
    return Parallel(n_jobs=n_jobs)(delayed(fn)(**params) for params in points)
