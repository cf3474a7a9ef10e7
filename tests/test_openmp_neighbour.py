"""reluscope's OpenMP workers do not keep spinning on the cores after a call returns: a
numpy or PyTorch call made next gets its CPUs (reluscope._openmp_wait)."""

import json
import os
import subprocess
import sys

import pytest

import reluscope as rs
from reluscope._openmp_wait import SPIN_COUNT

IDLE_PROBE = """
import json, os, resource, time
import numpy as np
import reluscope as rs
from reluscope._openmp_wait import SPIN_COUNT
rs.set_num_threads(2)
model = rs.MLP([256, 256, 256, 256], seed=0)
x = np.ones((256, 256), np.float32)
def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
idle = []
for _ in range(5):
    model.forward(x)  # a parallel region on 2 threads
    start = cpu_seconds()
    time.sleep(0.1)  # the caller sleeps: any CPU time now is an idle worker spinning
    idle.append(cpu_seconds() - start)
print(json.dumps({"idle_cpu_seconds": sorted(idle)[2],
                  "environ": os.environ.get("GOMP_SPINCOUNT"),
                  "openmp_wait": rs.build_info()["openmp_wait"]}))
"""


def probe(**env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", IDLE_PROBE], env={**environ, **env},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


two_processors = pytest.mark.skipif(rs.build_info()["available_processors"] < 2 or
                                    not rs.build_info()["openmp"],
                                    reason="needs OpenMP and 2 processors for a worker thread")


@two_processors
def test_idle_workers_sleep_soon_after_a_call():
    result = probe()
    assert result["openmp_wait"] == f"GOMP_SPINCOUNT={SPIN_COUNT}"
    assert result["environ"] is None  # set for libgomp's load only: children do not inherit it
    # libgomp's own default spins for milliseconds of CPU after every region; bounded, the
    # worker is asleep within about 0.1 ms.
    assert result["idle_cpu_seconds"] < 2e-3, result


@two_processors
def test_the_users_wait_policy_wins():
    result = probe(OMP_WAIT_POLICY="active")
    assert result["openmp_wait"] == "OMP_WAIT_POLICY=active"
    assert result["idle_cpu_seconds"] > 2e-2, result  # an active worker spins all the while
