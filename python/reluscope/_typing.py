"""Type aliases shared by the public signatures (not part of the API)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Callable, Union

import numpy as np

# What numpy.random.default_rng takes: reluscope seeds every generator through it.
Seed = Union[None, int, Sequence[int], np.random.SeedSequence, np.random.BitGenerator,
             np.random.Generator]

# An initializer: a name in reluscope.initializers.INITIALIZERS, or a callable
# init(fan_in, fan_out, rng, **params) -> weight or (weight, bias).
Init = Union[str, Callable[..., Any]]

# A file to read or write.
PathLike = Union[str, "os.PathLike[str]"]
