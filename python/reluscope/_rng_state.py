"""A numpy Generator's exact state as JSON values, and the Generator back from them.

``Generator.bit_generator.state`` is a dict of ints and strings for PCG64,
PCG64DXSM and SFC64; MT19937 and Philox also hold small unsigned integer
arrays, written here as ``{"array": [...], "dtype": "uint32" | "uint64"}``.
The bit generator is looked up by name in a fixed table: a file never names
code to run.
"""

from __future__ import annotations

import numpy as np

BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}

_ARRAY_DTYPES = ("uint32", "uint64")


def generator_state(rng: np.random.Generator) -> dict:
    """The state of ``rng`` as JSON values."""
    name = type(rng.bit_generator).__name__
    if name not in BIT_GENERATORS:
        raise TypeError(f"a random generator on {name} cannot be saved; known bit generators: "
                        f"{', '.join(BIT_GENERATORS)}")
    return _arrays_out(rng.bit_generator.state)


def generator_from_state(state: dict) -> np.random.Generator:
    """A Generator in the state ``generator_state`` gave (ValueError or KeyError when unsound)."""
    name = state["bit_generator"]
    if name not in BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {name!r}; known: {', '.join(BIT_GENERATORS)}")
    bit_generator = BIT_GENERATORS[name]()
    bit_generator.state = _arrays_in(state)
    return np.random.Generator(bit_generator)


def _arrays_out(value):
    if isinstance(value, dict):
        return {key: _arrays_out(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _arrays_in(value):
    if isinstance(value, dict):
        if set(value) == {"array", "dtype"}:
            if value["dtype"] not in _ARRAY_DTYPES:
                raise ValueError(f"unexpected dtype {value['dtype']!r} in a generator state")
            return np.array(value["array"], dtype=value["dtype"])
        return {key: _arrays_in(item) for key, item in value.items()}
    return value
