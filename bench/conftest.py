"""Benchmark settings: every file here times reluscope next to a numpy baseline for
the same work, in one process, and asserts that the two agree."""

import numpy as np
import pytest

import reluscope as rs


def pytest_benchmark_update_machine_info(config, machine_info):
    # Saved results carry what they ran on: SIMD target, threads, BLAS, versions.
    machine_info["reluscope"] = rs.build_info()
    machine_info["numpy"] = np.__version__
    try:
        from threadpoolctl import threadpool_info

        machine_info["blas"] = [
            {key: pool.get(key) for key in ("internal_api", "version", "architecture",
                                             "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"
        ]
    except ImportError:
        machine_info["blas"] = "threadpoolctl not installed"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
