"""reluscope: train multilayer perceptrons with a C++ core and see which ReLU units die.

A hidden unit *fires* on a sample when its pre-activation is > 0 (strictly); it
is *dead* on a dataset when it fires on none of its samples. The output layer is
linear and is not scanned.
"""

from . import _core
from ._runtime import (
    _cap_threads_from_environment,
    _select_idle_spin_from_environment,
    _select_profile_from_environment,
    _select_target_from_environment,
)

__version__ = _core.__version__

_select_profile_from_environment()  # before the target: RELUSCOPE_SIMD may override its target
_select_target_from_environment()
_cap_threads_from_environment()
_select_idle_spin_from_environment()

# The order below is the order the package is built in: checkpoint last.
# isort: off
from ._runtime import (  # noqa: E402
    build_info,
    cpu_profile_for,
    cpu_profiles,
    get_cpu_profile,
    get_idle_spin_us,
    get_num_threads,
    set_cpu_profile,
    set_idle_spin_us,
    set_num_threads,
    set_simd_target,
)
from . import datasets, experiments  # noqa: E402
from .callbacks import Callback, CallbackState  # noqa: E402
from .diagnosis import BornDeadReport, born_dead  # noqa: E402
from .errors import CheckpointError, NonFiniteActivations, TrainingDiverged  # noqa: E402
from .layers import Dense  # noqa: E402
from .causes import CauseRules, DeathCertificate  # noqa: E402
from .model import MLP  # noqa: E402
from .monitor import DeadNeuronMonitor, DeadUnitMonitor  # noqa: E402
from .optim import SGD, Adam  # noqa: E402
from .redo import ReDo  # noqa: E402
from .scan import LayerScan, ScanReport, scan  # noqa: E402
from .tracking import UnitStats  # noqa: E402
from .trainer import History, Trainer  # noqa: E402
from .unit_history import UnitHistory  # noqa: E402
from . import checkpoint  # noqa: E402  (needs the trainer and the callbacks above)
# isort: on

__all__ = [
    "MLP", "Dense", "Trainer", "History", "SGD", "Adam", "Callback", "DeadUnitMonitor",
    "DeadNeuronMonitor", "UnitHistory", "CauseRules", "DeathCertificate", "UnitStats",
    "scan", "ScanReport", "LayerScan", "TrainingDiverged", "CheckpointError", "CallbackState",
    "NonFiniteActivations", "checkpoint", "build_info", "set_num_threads",
    "get_num_threads", "set_idle_spin_us", "get_idle_spin_us", "set_simd_target",
    "set_cpu_profile", "get_cpu_profile", "cpu_profiles",
    "cpu_profile_for", "born_dead", "BornDeadReport", "ReDo", "datasets", "experiments",
    "__version__",
]
