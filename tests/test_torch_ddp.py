"""DeadUnitMonitor under DistributedDataParallel: two gloo ranks on the loopback, each
scanning and training on its own shard, book the firing of both shards together."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

import ddp_ranks

from reluscope.torch import DeadUnitMonitor


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ranks_book_the_firing_of_every_shard(tmp_path):
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, str(Path(ddp_ranks.__file__)),
                             str(free_loopback_port()), str(tmp_path)],
                            capture_output=True, text=True, timeout=240, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank holds the same book
    booked = ranks[0]
    assert booked["layer_names"] == ["0"]  # the wrapped module's names, not "module.0"
    # The reference: one monitor in this process over both shards together.
    both = torch.cat([ddp_ranks.shard(0), ddp_ranks.shard(1)])
    with DeadUnitMonitor(ddp_ranks.model(), both) as whole:
        expected = whole.history.reports[0].to_dict()
    for report in booked["reports"]:  # at construction and after the epoch (lr 0)
        layer, reference = report["layers"][0], expected["layers"][0]
        assert report["n_samples"] == 2 * ddp_ranks.N_PER_RANK
        assert layer["firing_counts"] == reference["firing_counts"]
        assert layer["max_pre_activation"] == reference["max_pre_activation"]
        np.testing.assert_allclose(layer["dormant"]["scores"], reference["dormant"]["scores"],
                                   rtol=1e-12)
        # Unit 0 fires only on rank 1's shard: alive for both ranks. Unit 2 is dead.
        assert layer["dead_units"] == [2]
    assert booked["silent"] == [[2]]  # in training too, unit 0 fired on rank 1's batches


def test_a_process_group_needs_torch_distributed_initialized():
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    with pytest.raises(RuntimeError, match="torch.distributed is not initialized"):
        DeadUnitMonitor(ddp_ranks.model(), process_group=object())
