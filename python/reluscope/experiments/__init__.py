"""Experiments that reproduce the dying-ReLU claims, each one CLI subcommand.

- ``init_study``: the signal through a deep ReLU stack under several inits;
- ``lr_sweep``: dead fraction against the learning rate;
- ``born_dead_study``: P(born dead) for deep narrow networks (Lu et al. 2020);
- ``compare_remedies``: one setup that kills units, plain and with each remedy;
- ``sweep``: any user grid of trials, in parallel processes through joblib.

Each writes a JSON result (with ``schema_version`` and every parameter, seeds
included) and a PNG figure, and is deterministic given its seed.
"""

from .born_dead import born_dead_study
from .initialization import init_study
from .learning_rate import lr_sweep
from .remedies import compare_remedies
from .sweep import expand_grid, sweep
from .training import train_trial

__all__ = [
    "born_dead_study", "init_study", "lr_sweep", "compare_remedies", "sweep", "expand_grid",
    "train_trial",
]
