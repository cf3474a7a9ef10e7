# Generated from the compiled module by pybind11-stubgen, then formatted with ruff format:
#   pybind11-stubgen reluscope._core -o python && ruff format python/reluscope/_core.pyi
# Regenerate it whenever csrc/bindings/ changes; tests/test_core_stub.py fails until then.
"""
reluscope's C++ kernels (private; use the reluscope package)
"""

from __future__ import annotations

import collections.abc
import typing

import numpy
import numpy.typing

__all__: list[str] = [
    "Activation",
    "Batch",
    "CpuIdentity",
    "CpuProfile",
    "GemmTuning",
    "LAST_FIRING_FIELDS",
    "LayerSpec",
    "LayerVerdict",
    "Loss",
    "MAX_IDLE_SPIN_US",
    "OptimizerKind",
    "OptimizerSettings",
    "ParamState",
    "StepResult",
    "StepSettings",
    "StepStatus",
    "TrainStep",
    "UnitBuffers",
    "adam_update",
    "available_processors",
    "best_target",
    "compiled_targets",
    "count_positive_columns",
    "cpu_profiles",
    "dense_backward",
    "dense_forward",
    "detect_cpu",
    "detected_cpu_profile",
    "gemm",
    "gemm_tuning_in_use",
    "get_num_threads",
    "idle_spin_us",
    "layer_verdict",
    "mean_squared_error",
    "profile_for",
    "random_networks",
    "requested_threads_at_start",
    "select_cpu_profile",
    "select_target",
    "selected_cpu_profile",
    "selected_target",
    "set_gemm_tuning",
    "set_idle_spin_us",
    "set_num_threads",
    "set_threads_for_this_thread",
    "sgd_update",
    "softmax_cross_entropy",
    "supported_targets",
    "thread_count_from_environment_ignored",
    "workers_started",
]

class GemmTuning:
    """
    Cache blocking and prefetch of the blocked GEMM.
    """
    @property
    def blocks_per_pass(self) -> int: ...
    @property
    def kc(self) -> int: ...
    @property
    def mc_panels(self) -> int: ...
    @property
    def nc(self) -> int: ...
    @property
    def prefetch_distance(self) -> int: ...

class CpuProfile:
    """
    What to run on one micro-architecture.
    """
    @property
    def description(self) -> str: ...
    @property
    def gemm_tuning(self) -> GemmTuning | None: ...
    @property
    def name(self) -> str: ...
    @property
    def simd_target(self) -> str | None: ...

class CpuIdentity:
    """
    The CPU as CPUID reports it.
    """
    @property
    def family(self) -> int: ...
    @property
    def flags(self) -> list[str]: ...
    @property
    def l2_kib(self) -> int:
        """
        Each core's L2 in KiB; 0 when unknown.
        """
    @property
    def model(self) -> int: ...
    @property
    def vendor(self) -> str: ...

class Activation:
    """
    A layer's activation, as the kernels know it.

    Members:

      identity

      relu

      leaky_relu
    """

    __members__: typing.ClassVar[dict[str, Activation]]
    identity: typing.ClassVar[Activation]
    leaky_relu: typing.ClassVar[Activation]
    relu: typing.ClassVar[Activation]
    @typing.overload
    def __eq__(self, other: Activation) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: Activation) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class OptimizerKind:
    """
    The optimizers of the training step.

    Members:

      sgd

      adam
    """

    __members__: typing.ClassVar[dict[str, OptimizerKind]]
    adam: typing.ClassVar[OptimizerKind]
    sgd: typing.ClassVar[OptimizerKind]
    @typing.overload
    def __eq__(self, other: OptimizerKind) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: OptimizerKind) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class ParamState:
    """
    An optimizer's buffers for one parameter, each shaped like it.
    """
    def __init__(
        self,
        *,
        velocity: typing.Any = None,
        first_moment: typing.Any = None,
        second_moment: typing.Any = None,
        cohort: typing.Any = None,
    ) -> None: ...
    @property
    def cohort(self) -> numpy.typing.NDArray[numpy.int32] | None: ...
    @property
    def first_moment(self) -> numpy.typing.NDArray[numpy.float32] | None: ...
    @property
    def second_moment(self) -> numpy.typing.NDArray[numpy.float32] | None: ...
    @property
    def velocity(self) -> numpy.typing.NDArray[numpy.float32] | None: ...

class OptimizerSettings:
    """
    Hyper-parameters of one update (fields an optimizer does not use are ignored).
    """
    def __init__(
        self,
        kind: OptimizerKind,
        lr: typing.SupportsFloat | typing.SupportsIndex,
        *,
        weight_decay: typing.SupportsFloat | typing.SupportsIndex = 0.0,
        momentum: typing.SupportsFloat | typing.SupportsIndex = 0.0,
        nesterov: bool = False,
        beta1: typing.SupportsFloat | typing.SupportsIndex = 0.8999999761581421,
        beta2: typing.SupportsFloat | typing.SupportsIndex = 0.9990000128746033,
        eps: typing.SupportsFloat | typing.SupportsIndex = 9.99999993922529e-09,
        clip_norm: typing.SupportsFloat | typing.SupportsIndex = 0.0,
        update_number: typing.SupportsInt | typing.SupportsIndex = 1,
        cohort_start: typing.Any = None,
    ) -> None: ...
    @property
    def beta1(self) -> float: ...
    @property
    def beta2(self) -> float: ...
    @property
    def clip_norm(self) -> float: ...
    @property
    def cohort_start(self) -> numpy.typing.NDArray[numpy.int64] | None: ...
    @property
    def eps(self) -> float: ...
    @property
    def kind(self) -> OptimizerKind: ...
    @property
    def lr(self) -> float:
        """
        of this update, warmup included
        """
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None: ...
    @property
    def momentum(self) -> float: ...
    @property
    def nesterov(self) -> bool: ...
    @property
    def update_number(self) -> int: ...
    @update_number.setter
    def update_number(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def weight_decay(self) -> float: ...

class Loss:
    """
    The loss a TrainStep minimizes.

    Members:

      cross_entropy

      mse
    """

    __members__: typing.ClassVar[dict[str, Loss]]
    cross_entropy: typing.ClassVar[Loss]
    mse: typing.ClassVar[Loss]
    @typing.overload
    def __eq__(self, other: Loss) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: Loss) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class StepStatus:
    """
    What became of a step (nothing is written unless ok).

    Members:

      ok

      loss_not_finite

      update_not_finite

      x_not_finite

      targets_not_finite
    """

    __members__: typing.ClassVar[dict[str, StepStatus]]
    loss_not_finite: typing.ClassVar[StepStatus]
    ok: typing.ClassVar[StepStatus]
    targets_not_finite: typing.ClassVar[StepStatus]
    update_not_finite: typing.ClassVar[StepStatus]
    x_not_finite: typing.ClassVar[StepStatus]
    @typing.overload
    def __eq__(self, other: StepStatus) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: StepStatus) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class UnitBuffers:
    """
    A hidden layer's per-unit statistics that the step accumulates (None: not tracked).
    """
    def __init__(
        self,
        *,
        firing_counts: typing.Any = None,
        gradient_magnitude: typing.Any = None,
        last_firing: typing.Any = None,
    ) -> None: ...
    @property
    def firing_counts(self) -> numpy.typing.NDArray[numpy.int64] | None: ...
    @property
    def gradient_magnitude(self) -> numpy.typing.NDArray[numpy.float64] | None: ...
    @property
    def last_firing(self) -> numpy.typing.NDArray[numpy.float64] | None: ...

class LayerSpec:
    """
    One dense layer of a TrainStep and the buffers it updates.
    """
    def __init__(
        self,
        weight: typing.Any,
        bias: typing.Any,
        activation: Activation,
        negative_slope: typing.SupportsFloat | typing.SupportsIndex = 0.0,
        *,
        weight_state: ParamState = ...,
        bias_state: ParamState = ...,
        units: UnitBuffers = ...,
    ) -> None: ...
    @property
    def activation(self) -> Activation: ...
    @property
    def bias(self) -> numpy.typing.NDArray[numpy.float32]: ...
    @property
    def negative_slope(self) -> float: ...
    @property
    def weight(self) -> numpy.typing.NDArray[numpy.float32]: ...

class StepSettings:
    """
    What one step does besides the batch.
    """
    def __init__(
        self, optimizer: OptimizerSettings, step_number: typing.SupportsInt | typing.SupportsIndex
    ) -> None: ...
    @property
    def optimizer(self) -> OptimizerSettings: ...
    @property
    def step_number(self) -> int: ...
    @step_number.setter
    def step_number(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...

class Batch:
    """
    x (or its rows `rows`) with integer labels (cross-entropy) or float targets (mse).
    """
    @staticmethod
    def labelled(x: typing.Any, labels: typing.Any) -> Batch:
        """
        A cross-entropy batch: all rows of x with their integer labels.
        """
    @staticmethod
    def with_targets(x: typing.Any, targets: typing.Any) -> Batch:
        """
        An mse batch: all rows of x with their float targets.
        """
    def __init__(
        self,
        x: typing.Any,
        *,
        rows: typing.Any = None,
        labels: typing.Any = None,
        targets: typing.Any = None,
        check_values: bool = False,
    ) -> None: ...
    @property
    def check_values(self) -> bool:
        """
        refuse NaN or Inf in x and the targets first
        """
    @check_values.setter
    def check_values(self, arg0: bool) -> None: ...
    @property
    def rows(self) -> numpy.typing.NDArray[numpy.int64] | None:
        """
        the rows of x (and of the labels) to train on, or None for all
        """
    @rows.setter
    def rows(self, arg1: typing.Any) -> None: ...

class StepResult:
    @property
    def applied(self) -> bool:
        """
        whether the update was applied (status ok)
        """
    @property
    def correct(self) -> int:
        """
        argmax hits, before the update
        """
    @property
    def grad_norm(self) -> float:
        """
        the gradients' global norm before clipping (NaN when not clipping)
        """
    @property
    def loss(self) -> float: ...
    @property
    def status(self) -> StepStatus: ...

class TrainStep:
    """
    A whole training step (forward, loss, backward, update) in one call, over workspaces allocated once.
    """
    def __init__(self, layers: collections.abc.Sequence[LayerSpec], loss: Loss) -> None: ...
    def flush_last_firing(self) -> None:
        """
        Write last_firing rows for the units that fired in the latest step.
        """
    def release(self) -> None:
        """
        Free the batch-sized workspaces; the next run allocates them again.
        """
    def run(self, batch: Batch, settings: StepSettings) -> StepResult:
        """
        One step; nothing is written unless the result's status is ok.
        """
    def run_whole_batch(
        self,
        x: typing.Any,
        targets: typing.Any,
        optimizer: OptimizerSettings,
        step_number: typing.SupportsInt | typing.SupportsIndex,
    ) -> StepResult:
        """
        As run, on all rows of x with NaN and Inf refused: integer labels for cross-entropy, float targets for mse.
        """

class LayerVerdict:
    """
    What a hidden layer is on a dataset: fires, dead_by_sign, or underflowed (no unit fires and every pre-activation is exactly 0).

    Members:

      fires

      dead_by_sign

      underflowed
    """

    __members__: typing.ClassVar[dict[str, LayerVerdict]]
    dead_by_sign: typing.ClassVar[LayerVerdict]
    fires: typing.ClassVar[LayerVerdict]
    underflowed: typing.ClassVar[LayerVerdict]
    @typing.overload
    def __eq__(self, other: LayerVerdict) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: LayerVerdict) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

def adam_update(
    param: numpy.typing.NDArray[numpy.float32],
    grad: numpy.typing.NDArray[numpy.float32],
    first_moment: numpy.typing.NDArray[numpy.float32],
    second_moment: numpy.typing.NDArray[numpy.float32],
    lr: typing.SupportsFloat | typing.SupportsIndex,
    beta1: typing.SupportsFloat | typing.SupportsIndex,
    beta2: typing.SupportsFloat | typing.SupportsIndex,
    eps: typing.SupportsFloat | typing.SupportsIndex,
    weight_decay: typing.SupportsFloat | typing.SupportsIndex,
    step: typing.SupportsInt | typing.SupportsIndex,
    commit: bool,
    cohort: numpy.typing.NDArray[numpy.int32] | None = None,
    cohort_start: numpy.typing.NDArray[numpy.int64] | None = None,
) -> bool:
    """
    Adam step in place (commit=True) or a dry run (commit=False); returns whether every new value is finite. cohort (int32 per element) and cohort_start (int64 per cohort) give elements whose moments restarted after update cohort_start[cohort[i]] their own bias correction. param and both moments share no memory with the other arguments (ValueError).
    """

def available_processors() -> int:
    """
    The processors this process may run on: the most threads a kernel call uses.
    """

def best_target() -> str:
    """
    The best target this CPU can run.
    """

def compiled_targets() -> list[str]:
    """
    SIMD targets compiled into this build.
    """

def count_positive_columns(
    a: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.int64]
) -> None:
    """
    counts[c] += rows of a (float32, C-contiguous) whose column c is > 0.
    """

def cpu_profiles() -> list[CpuProfile]:
    """
    Every CPU profile, 'generic' first.
    """

def dense_backward(
    x: numpy.typing.NDArray[numpy.float32],
    weight: numpy.typing.NDArray[numpy.float32],
    pre: numpy.typing.NDArray[numpy.float32],
    grad_out: numpy.typing.NDArray[numpy.float32],
    grad_pre: numpy.typing.NDArray[numpy.float32],
    grad_weight: numpy.typing.NDArray[numpy.float32],
    grad_bias: numpy.typing.NDArray[numpy.float32],
    grad_x: numpy.typing.NDArray[numpy.float32] | None,
    activation: Activation,
    negative_slope: typing.SupportsFloat | typing.SupportsIndex,
) -> None:
    """
    grad_pre = grad_out * act'(pre); grad_weight = x.T @ grad_pre; grad_bias = grad_pre.sum(0); grad_x = grad_pre @ weight.T when grad_x is given. Arrays written share no memory with other arguments (ValueError), except in place: grad_pre may be grad_out, and grad_x may be grad_out or x.
    """

def dense_forward(
    x: numpy.typing.NDArray[numpy.float32],
    weight: numpy.typing.NDArray[numpy.float32],
    bias: numpy.typing.NDArray[numpy.float32],
    pre: numpy.typing.NDArray[numpy.float32],
    out: numpy.typing.NDArray[numpy.float32],
    activation: Activation,
    negative_slope: typing.SupportsFloat | typing.SupportsIndex,
    firing_counts: numpy.typing.NDArray[numpy.int64] | None = None,
    max_pre: numpy.typing.NDArray[numpy.float32] | None = None,
    nonfinite_counts: numpy.typing.NDArray[numpy.int64] | None = None,
) -> None:
    """
    pre = x @ weight + bias; out = act(pre); optionally firing_counts += (pre > 0).sum(0), max_pre = maximum(max_pre, pre.max(0)) and nonfinite_counts += (~isfinite(pre)).sum(0), all in one pass. Arrays written share no memory with other arguments (ValueError), except that out may be pre.
    """

def detect_cpu() -> CpuIdentity:
    """
    The CPU this process runs on.
    """

def detected_cpu_profile() -> str:
    """
    The CPU profile detected at load.
    """

def gemm(
    a: numpy.typing.NDArray[numpy.float32],
    b: numpy.typing.NDArray[numpy.float32],
    c: numpy.typing.NDArray[numpy.float32],
    transpose_a: bool = False,
    transpose_b: bool = False,
) -> None:
    """
    c = op(a) @ op(b), written into c, which shares no memory with a or b (ValueError).
    """

def gemm_tuning_in_use() -> GemmTuning:
    """
    The GEMM tuning of the target in use.
    """

def get_num_threads() -> int:
    """
    Threads each kernel call uses.
    """

def idle_spin_us() -> int:
    """
    Microseconds an idle worker watches for work, yielding its CPU, before it sleeps.
    """

def layer_verdict(fires_anywhere: bool, negative_anywhere: bool) -> LayerVerdict:
    """
    The verdict on a layer from whether some unit fires on some sample and whether some pre-activation is negative.
    """

def mean_squared_error(
    out: numpy.typing.NDArray[numpy.float32],
    target: numpy.typing.NDArray[numpy.float32],
    grad: numpy.typing.NDArray[numpy.float32],
) -> float:
    """
    Mean over all elements of (out - target)**2; writes its gradient into grad, which shares no memory with out or target (ValueError).
    """

def profile_for(
    vendor: str,
    family: typing.SupportsInt | typing.SupportsIndex,
    model: typing.SupportsInt | typing.SupportsIndex,
    flags: collections.abc.Sequence[str],
    l2_kib: typing.SupportsInt | typing.SupportsIndex = 0,
) -> str:
    """
    The name of the profile for a CPU with this CPUID vendor, family, model, flags and L2 per core in KiB (0: unknown).
    """

def random_networks(
    x: numpy.typing.NDArray[numpy.float32],
    first_weight: numpy.typing.NDArray[numpy.float32],
    weights: numpy.typing.NDArray[numpy.float32],
    biases: numpy.typing.NDArray[numpy.float32],
    reference_point: typing.SupportsInt | typing.SupportsIndex,
) -> tuple:
    """
    Run many random ReLU networks on the points x. Returns int32 arrays (dead_at, constant_at, dead_at_point): per network, the first hidden layer (from 1; depth + 1 if none) where no unit fires on any point, where the output is the same at every point, and where no unit fires at x[reference_point].
    """

def requested_threads_at_start() -> int:
    """
    The thread count asked for at start (OMP_NUM_THREADS, else the processors), before the cap.
    """

def select_cpu_profile(name: str) -> None:
    """
    Use the named CPU profile: its SIMD target and GEMM tuning.
    """

def select_target(name: str) -> None:
    """
    Use the named SIMD target.
    """

def selected_cpu_profile() -> str:
    """
    The CPU profile in use.
    """

def selected_target() -> str:
    """
    The SIMD target in use.
    """

def set_gemm_tuning(
    kc: typing.SupportsInt | typing.SupportsIndex,
    mc_panels: typing.SupportsInt | typing.SupportsIndex,
    nc: typing.SupportsInt | typing.SupportsIndex,
    prefetch_distance: typing.SupportsInt | typing.SupportsIndex,
    blocks_per_pass: typing.SupportsInt | typing.SupportsIndex = 1,
) -> None:
    """
    Replace the GEMM tuning of the target in use until the next target or profile is selected (benchmarks, tests).
    """

def set_idle_spin_us(us: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set how long idle workers watch for work before they sleep.
    """

def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Set the threads each kernel call uses, at most available_processors(); returns the count applied.
    """

def set_threads_for_this_thread(n: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Threads the kernel calls of the calling thread use (0: the process-wide count); returns the count applied.
    """

def sgd_update(
    param: numpy.typing.NDArray[numpy.float32],
    grad: numpy.typing.NDArray[numpy.float32],
    velocity: numpy.typing.NDArray[numpy.float32] | None,
    lr: typing.SupportsFloat | typing.SupportsIndex,
    momentum: typing.SupportsFloat | typing.SupportsIndex,
    weight_decay: typing.SupportsFloat | typing.SupportsIndex,
    nesterov: bool,
    commit: bool,
) -> bool:
    """
    SGD step in place (commit=True) or a dry run (commit=False); returns whether every new value is finite. param and velocity share no memory with the other arguments (ValueError).
    """

def softmax_cross_entropy(
    logits: numpy.typing.NDArray[numpy.float32],
    labels: numpy.typing.NDArray[numpy.int64],
    grad: numpy.typing.NDArray[numpy.float32],
) -> float:
    """
    Mean softmax cross-entropy; writes d loss / d logits into grad (sharing no memory with logits or labels: ValueError) and returns the loss.
    """

def supported_targets() -> list[str]:
    """
    Compiled targets this CPU can run.
    """

def thread_count_from_environment_ignored() -> bool:
    """
    Whether OMP_NUM_THREADS held something that is not a thread count.
    """

def workers_started() -> int:
    """
    Worker threads started so far in this process, over all calling threads.
    """

LAST_FIRING_FIELDS: tuple = (
    "step",
    "lr",
    "update_norm",
    "bias_update",
    "relative_update",
    "layer_median_update_norm",
    "layer_median_bias_update",
    "layer_median_relative_update",
)
MAX_IDLE_SPIN_US: int = 1000000
__version__: str = "0.1.0"
