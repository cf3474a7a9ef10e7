"""How long reluscope's OpenMP workers spin after a parallel region before they sleep.

libgomp's workers spin on a CPU after each parallel region, waiting for the
next, for about 300,000 iterations (several milliseconds) when neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` is set. In a process that also runs
numpy's BLAS or PyTorch, that spinning takes the cores their threads need: a
numpy product called right after a reluscope call ran many times slower than
alone. reluscope bounds the spin to ``SPIN_COUNT`` iterations (a hundred or so
microseconds: long enough to carry a worker from one kernel call of a training
step to the next, short enough to be gone before a neighbour's call).

libgomp reads the setting once, when it loads, so it is set only around the
first import of the C++ module and removed again: child processes do not
inherit it. A user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` always wins.
When libgomp was already loaded (PyTorch ships a ``libgomp.so.1`` too, and the
dynamic loader shares one copy per name), its settings stand and both
libraries use one pool of workers.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

# About 160 us at the ~27 ns per iteration measured on AMD Zen 3. Half that
# (3000) let workers fall asleep between the kernel calls of a deep-narrow training
# step (100-128^10-10, batch 256): in a virtual machine each wake-up of a sleeping
# worker then cost its CPU's exit from the hypervisor's idle, and for the first 50 to
# 100 ms after an idle spell the steps took 10-15 ms instead of 4. At 6000 they take
# 4-4.6 ms from the first step, and numpy's products beside reluscope's calls
# slowed no more than at 3000 (bench/neighbours.py: 2.32 against 2.30 times the sum).
SPIN_COUNT = 6000
USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

applied: str | None = None
"""``"GOMP_SPINCOUNT=<n>"`` when reluscope set the spin at import, None when the
user's own setting stood."""


@contextmanager
def bounded_spin():
    """Set ``GOMP_SPINCOUNT`` for the load of the C++ module, unless the user chose."""
    global applied
    if any(name in os.environ for name in USER_SETTINGS):
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    applied = f"GOMP_SPINCOUNT={SPIN_COUNT}"
    try:
        yield
    finally:
        os.environ.pop("GOMP_SPINCOUNT", None)
