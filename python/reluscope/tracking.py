"""Per-unit statistics of the hidden layers, accumulated by the C++ training step.

One ``UnitStats`` per hidden layer owns the arrays the step writes into:

- ``firing_counts`` (int64): training samples on which each unit fired (its
  pre-activation was > 0), counted in the forward pass of each step;
- ``gradient_magnitude`` (float64): sum_k |dL/dw_kj| + |dL/db_j| over the steps;
- ``last_firing``: one record per unit (a numpy structured array, fields
  ``LAST_FIRING_FIELDS``): the last step in which the unit fired on its batch
  and the update made right after it; ``step`` is -1 (and the rest NaN) until
  the unit fires.
"""

from __future__ import annotations

import numpy as np

from . import _core

LAST_FIRING_FIELDS: tuple[str, ...] = tuple(_core.LAST_FIRING_FIELDS)
"""Fields of a ``last_firing`` record, in the order the C++ step writes them."""

LAST_FIRING_DTYPE = np.dtype([(name, np.float64) for name in LAST_FIRING_FIELDS])


class UnitStats:
    """The per-unit statistics of one hidden layer of ``n_units`` units."""

    def __init__(self, n_units: int):
        self.firing_counts = np.zeros(n_units, dtype=np.int64)
        self.gradient_magnitude = np.zeros(n_units, dtype=np.float64)
        self.last_firing = np.full(n_units, np.nan, dtype=LAST_FIRING_DTYPE)
        self.last_firing["step"] = -1

    @property
    def n_units(self) -> int:
        """Units of the layer."""
        return self.firing_counts.shape[0]

    def reset_counts(self) -> None:
        """Zero the firing counts and gradient magnitudes (a new epoch starts)."""
        self.firing_counts.fill(0)
        self.gradient_magnitude.fill(0.0)

    def last_fired(self, unit: int) -> dict | None:
        """Return the last-firing record of ``unit`` as a dict, or None if it never fired."""
        record = self.last_firing[unit]
        if record["step"] < 0:
            return None
        return {name: float(record[name]) for name in LAST_FIRING_FIELDS}

    def buffers(self, firing: bool, gradients: bool, deaths: bool) -> _core.UnitBuffers:
        """Return the arrays the C++ step fills, for what is tracked (deaths need firing)."""
        records = self.last_firing.view(np.float64).reshape(self.n_units, len(LAST_FIRING_FIELDS))
        return _core.UnitBuffers(
            firing_counts=self.firing_counts if firing else None,
            gradient_magnitude=self.gradient_magnitude if gradients else None,
            last_firing=records if firing and deaths else None)


def stats_for(existing: list[UnitStats], widths: list[int]) -> list[UnitStats]:
    """One UnitStats per hidden layer of these widths: the existing one where it still fits."""
    return [existing[i] if i < len(existing) and existing[i].n_units == width
            else UnitStats(width) for i, width in enumerate(widths)]
