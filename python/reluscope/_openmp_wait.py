"""How long reluscope's OpenMP workers spin after a parallel region before they sleep.

libgomp's workers spin on a CPU after each parallel region, waiting for the
next, for about 300,000 iterations (several milliseconds) when neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` is set. In a process that also runs
numpy's BLAS or PyTorch, that spinning takes the cores their threads need: a
numpy product called right after a reluscope call ran many times slower than
alone. reluscope bounds the spin to ``SPIN_COUNT`` iterations (tens of
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

SPIN_COUNT = 3000  # about 80 us at the ~27 ns per iteration measured on AMD Zen 3
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
