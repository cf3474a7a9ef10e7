"""rs.scan of a dask array: one task per row block on the workers, the statistics combined
in a tree, the report that of the local scan of the concatenated rows."""

import numpy as np
import pytest
from clusters import local_dask_cluster
from scan_equality import assert_same_scan, data

import reluscope as rs

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

WORKER_MEMORY = 256 * 2**20  # headroom over a worker's own ~100 MiB


@pytest.fixture(scope="module")
def client():
    """Two worker processes on the loopback, each with a memory limit the big test exceeds."""
    with local_dask_cluster(distributed, memory_limit=WORKER_MEMORY) as cluster, \
            distributed.Client(cluster, timeout="60s") as client:
        yield client


def model_with_dead_units(sizes, seed=0):
    model = rs.MLP(sizes, seed=seed)
    model.layers[0].bias[:4] = -100.0  # 4 dead units: counts of 0 are compared too
    return model


def test_dask_scan_on_a_cluster_equals_the_local_scan(client):
    model = model_with_dead_units([16, 48, 32, 5])
    x = data(4000, 16)
    local = rs.scan(model, x)
    # 9 row blocks (a tree of two levels), the columns split too: rechunked to whole rows.
    remote = rs.scan(model, da.from_array(x, chunks=(450, 7)))
    assert remote.layers[0].n_dead >= 4
    assert_same_scan(local, remote, exact_sums=False)
    assert str(remote) == str(local)


def test_a_dataset_larger_than_the_workers_memory_streams_through_them(client, tmp_path):
    # 18 files of 16 MiB (float64) = 288 MiB, more than either worker may hold;
    # each file is read by the task that scans it, on a worker, never here.
    model = model_with_dead_units([256, 16, 4])
    rows, n_files = 8192, 18
    paths = []
    for index in range(n_files):
        path = tmp_path / f"part-{index}.npy"
        np.save(path, np.random.default_rng(index).standard_normal((rows, 256)))
        paths.append(str(path))
    assert n_files * rows * 256 * 8 > WORKER_MEMORY
    blocks = [da.from_delayed(dask.delayed(np.load)(path), shape=(rows, 256), dtype=np.float64)
              for path in paths]
    workers_before = set(client.scheduler_info()["workers"])
    remote = rs.scan(model, da.concatenate(blocks), chunk_size=4096)
    local = rs.scan(model, (np.load(path) for path in paths), chunk_size=4096)
    assert remote.n_samples == n_files * rows
    assert_same_scan(local, remote, exact_sums=False)
    # Neither worker went past its limit: the nanny would have restarted it, on a new port.
    assert set(client.scheduler_info()["workers"]) == workers_before


def test_dask_scan_without_a_cluster_uses_dask_local_threads():
    model = model_with_dead_units([6, 20, 3])
    x = data(700, 6)
    assert_same_scan(rs.scan(model, x, chunk_size=64),
                     rs.scan(model, da.from_array(x, chunks=128), chunk_size=64),
                     exact_sums=False)


def test_bad_dask_arrays_are_refused_before_anything_runs():
    model = rs.MLP([4, 6, 2], seed=0)
    with pytest.raises(ValueError, match=r"2-dimensional .* dask array of shape \(8,\)"):
        rs.scan(model, da.ones(8, chunks=4))
    with pytest.raises(ValueError, match="x has 3 features but the first layer expects 4"):
        rs.scan(model, da.ones((8, 3), chunks=4))
    with pytest.raises(ValueError, match="x is empty: it has 0 samples"):
        rs.scan(model, da.ones((0, 4), chunks=4))
    with pytest.raises(ValueError, match="chunk 1 of x contains NaN or Inf"):
        rs.scan(model, da.from_array(np.r_[np.ones((4, 4)), np.full((4, 4), np.nan)],
                                     chunks=4))


def test_a_dask_array_of_unknown_width_is_scanned_and_checked_block_by_block():
    # from_delayed with shape (n, nan): the width is known only on the workers.
    import dask

    model = model_with_dead_units([6, 20, 3])
    x = data(300, 6)

    def unknown_width(rows):
        return da.from_delayed(dask.delayed(lambda: rows)(), shape=(len(rows), np.nan),
                               dtype=np.float32)

    blocks = da.concatenate([unknown_width(x[:100]), unknown_width(x[100:])], axis=0,
                            allow_unknown_chunksizes=True)
    assert_same_scan(rs.scan(model, x, chunk_size=64), rs.scan(model, blocks, chunk_size=64),
                     exact_sums=False)
    narrow = da.concatenate([unknown_width(x[:100]), unknown_width(x[100:, :5])], axis=0,
                            allow_unknown_chunksizes=True)
    with pytest.raises(ValueError, match="chunk 1 of x has 5 features"):
        rs.scan(model, narrow)
    split = da.from_delayed(dask.delayed(lambda: x)(), shape=(300, np.nan), dtype=np.float32)
    split = da.concatenate([split, split], axis=1, allow_unknown_chunksizes=True)
    with pytest.raises(ValueError, match="column blocks of unknown width"):
        rs.scan(model, split)
