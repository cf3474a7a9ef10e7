"""reluscope's worker threads (csrc/runtime/worker_pool.hpp): they give their CPU to other
threads while they wait for work, sleep soon after a call, serve calls from several
threads at once, and come back in a forked child."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import reluscope as rs

two_processors = pytest.mark.skipif(rs.build_info()["available_processors"] < 2,
                                    reason="needs 2 processors for a worker thread")
linux_threads = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                   reason="needs /proc/self/task to place threads on CPUs")


def run_probe(code: str, **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "RELUSCOPE_IDLE_SPIN_US"}
    result = subprocess.run([sys.executable, "-c", code], env={**environment, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


IDLE_PROBE = """
import json, resource, time
import numpy as np
import reluscope as rs
rs.set_num_threads(2)
model = rs.MLP([256, 256, 256, 256], seed=0)
x = np.ones((256, 256), np.float32)
def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
idle = []
for _ in range(5):
    model.forward(x)  # shared with a worker
    start = cpu_seconds()
    time.sleep(0.1)  # the caller sleeps: any CPU time now is an idle worker watching for work
    idle.append(cpu_seconds() - start)
print(json.dumps({"idle_cpu_seconds": sorted(idle)[2], "spin": rs.get_idle_spin_us(),
                  "workers": rs.build_info()["workers_started"]}))
"""


@two_processors
def test_idle_workers_sleep_soon_after_a_call():
    result = run_probe(IDLE_PROBE)
    assert result["spin"] == 300 and result["workers"] == 1
    # 300 us of watching, then asleep: a 0.1 s pause costs well under 2 ms of CPU.
    assert result["idle_cpu_seconds"] < 2e-3, result


@two_processors
def test_the_environment_sets_the_idle_spin():
    result = run_probe(IDLE_PROBE, RELUSCOPE_IDLE_SPIN_US="1000000")
    assert result["spin"] == 1_000_000
    assert result["idle_cpu_seconds"] > 2e-2, result  # watching all through the pause


@pytest.mark.parametrize("value", ["-1", "1000001", "soon", "1.5"])
def test_a_bad_idle_spin_in_the_environment_is_refused_at_import(value):
    environment = {**os.environ, "RELUSCOPE_IDLE_SPIN_US": value}
    result = subprocess.run([sys.executable, "-c", "import reluscope"], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"RELUSCOPE_IDLE_SPIN_US={value}" in result.stderr


def test_set_idle_spin_us_round_trips_and_checks_its_argument():
    previous = rs.get_idle_spin_us()
    try:
        assert rs.set_idle_spin_us(0) == previous
        assert rs.get_idle_spin_us() == 0 == rs.build_info()["idle_spin_us"]
        assert rs.set_idle_spin_us(np.int64(1_000_000)) == 0
        for bad, error in ((-1, ValueError), (1_000_001, ValueError), (2.5, TypeError),
                           (True, TypeError), ("300", TypeError)):
            with pytest.raises(error, match="idle spin"):
                rs.set_idle_spin_us(bad)
        assert rs.get_idle_spin_us() == 1_000_000
    finally:
        rs.set_idle_spin_us(previous)


YIELD_PROBE = """
import json, os, time
import numpy as np
import reluscope as rs
rs.set_num_threads(2)
rs.set_idle_spin_us(1_000_000)
model = rs.MLP([256, 256, 256, 256], seed=0)
x = np.ones((256, 256), np.float32)
before = set(os.listdir("/proc/self/task"))
model.forward(x)  # starts the worker
(worker,) = set(os.listdir("/proc/self/task")) - before
cpu = min(os.sched_getaffinity(0))
for task in os.listdir("/proc/self/task"):  # every thread of the process on one CPU
    os.sched_setaffinity(int(task), {cpu})
def worker_cpu_ns():
    with open(f"/proc/self/task/{worker}/schedstat") as file:
        return int(file.read().split()[0])
model.forward(x)  # the worker now watches for work for a second, on the caller's CPU
start_ns, start = worker_cpu_ns(), time.perf_counter()
while time.perf_counter() - start < 0.3:
    pass
share = (worker_cpu_ns() - start_ns) / 1e9 / (time.perf_counter() - start)
print(json.dumps({"worker_share": share}))
"""


@two_processors
@linux_threads
@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"),
                    reason="needs /proc schedstat for a thread's CPU time")
def test_a_waiting_worker_yields_its_cpu_to_a_busy_thread():
    # The worker's CPU time while a busy thread shares its CPU: one that spun without
    # yielding (as libgomp's do) took about half of it (measured 0.50); one that yields
    # takes next to nothing. Other load on that CPU only lowers the figure.
    result = run_probe(YIELD_PROBE)
    assert result["worker_share"] < 0.15, result


BOUND_CALLER_PROBE = """
import json, os
import numpy as np
import reluscope as rs
cpus = sorted(os.sched_getaffinity(0))
os.sched_setaffinity(0, {cpus[0]})  # as PyTorch's libgomp does under OMP_PROC_BIND
before = set(os.listdir("/proc/self/task"))
applied = rs.set_num_threads(2)
rs.MLP([256, 256, 256, 256], seed=0).forward(np.ones((256, 256), np.float32))
workers = set(os.listdir("/proc/self/task")) - before
print(json.dumps({"applied": applied, "caller": sorted(os.sched_getaffinity(0)),
                  "workers": [sorted(os.sched_getaffinity(int(w))) for w in workers],
                  "all": cpus}))
"""


@two_processors
@linux_threads
def test_workers_run_on_every_processor_when_the_caller_is_bound_to_one():
    result = run_probe(BOUND_CALLER_PROBE)
    assert result["applied"] == 2  # counted from the CPUs at load, not the caller's one
    assert len(result["caller"]) == 1
    assert result["workers"] == [result["all"]]


ONE_THREAD_PROBE = """
import json
import numpy as np
import reluscope as rs
rs.set_num_threads(1)
model = rs.MLP([256, 256, 256, 256], seed=0)
model.forward(np.ones((256, 256), np.float32))
print(json.dumps({"workers": rs.build_info()["workers_started"]}))
"""


def test_one_thread_starts_no_worker():
    assert run_probe(ONE_THREAD_PROBE)["workers"] == 0


@two_processors
def test_calls_from_several_threads_at_once_get_their_own_workers():
    rs.set_num_threads(2)
    rng = np.random.default_rng(0)
    model = rs.MLP([64, 300, 300, 10], seed=1)
    inputs = [rng.standard_normal((200, 64)).astype(np.float32) for _ in range(4)]
    expected = [model.forward(x) for x in inputs]
    failures = []

    def call_repeatedly(i):
        for _ in range(30):
            if not np.array_equal(model.forward(inputs[i]), expected[i]):
                failures.append(i)

    threads = [threading.Thread(target=call_repeatedly, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


FORK_PROBE = """
import json, os
import numpy as np
import reluscope as rs
rs.set_num_threads(2)
model = rs.MLP([64, 300, 300, 10], seed=1)
x = np.random.default_rng(0).standard_normal((200, 64)).astype(np.float32)
expected = model.forward(x)
started = rs.build_info()["workers_started"]
pid = os.fork()
if pid == 0:  # the child has none of the parent's workers
    same = np.array_equal(model.forward(x), expected)
    os._exit(0 if same and rs.build_info()["workers_started"] > started else 1)
_, status = os.waitpid(pid, 0)
print(json.dumps({"child_exit": os.waitstatus_to_exitcode(status), "started": started}))
"""


@two_processors
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_workers_of_its_own():
    result = run_probe(FORK_PROBE)  # a child waiting on its parent's workers would hang here
    assert result == {"child_exit": 0, "started": 1}
