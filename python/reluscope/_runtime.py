"""Build facts, the CPU profile and SIMD target, and the thread count of the C++ kernels."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable

from . import _core
from ._validation import nonnegative_int, positive_int

SIMD_ENV_VAR = "RELUSCOPE_SIMD"
CPU_PROFILE_ENV_VAR = "RELUSCOPE_CPU_PROFILE"
IDLE_SPIN_ENV_VAR = "RELUSCOPE_IDLE_SPIN_US"

# The error of a bad RELUSCOPE_SIMD, _CPU_PROFILE or _IDLE_SPIN_US when this process
# is the reluscope command, which reports it in one line (see
# _apply_environment_choice); else None.
environment_error: Exception | None = None


def set_cpu_profile(name: str) -> None:
    """Use the CPU profile ``name``: its SIMD target and, for that target, its GEMM tuning.

    The profile detected for this CPU is in use from import on
    (``build_info()["detected_cpu_profile"]``); ``cpu_profiles()`` lists them
    all. Every profile uses the same GEMM inner-dimension blocking, so two
    profiles on the same SIMD target give the same results bit for bit.

    Raises
    ------
    ValueError
        If no profile has that name (the message lists the known ones).
    RuntimeError
        If the profile's SIMD target is one this CPU cannot run.
    """
    if not isinstance(name, str):
        raise TypeError(f"CPU profile must be a string, got {name!r}")
    _core.select_cpu_profile(name)


def get_cpu_profile() -> str:
    """The name of the CPU profile in use."""
    return _core.selected_cpu_profile()


def cpu_profiles() -> dict:
    """Every CPU profile, by name.

    Returns
    -------
    dict
        name -> ``{"description", "simd_target", "gemm_tuning"}``.
        ``simd_target`` None means the best target the CPU can run;
        ``gemm_tuning`` None means that target's defaults, else a dict with
        ``kc`` (the summation block: it alone decides the results),
        ``blocks_per_pass`` (summation blocks packed and multiplied in one
        pass), ``mc_panels``, ``nc`` and ``prefetch_distance``.
    """
    return {
        profile.name: {
            "description": profile.description,
            "simd_target": profile.simd_target,
            "gemm_tuning": None if profile.gemm_tuning is None else _tuning_dict(
                profile.gemm_tuning),
        }
        for profile in _core.cpu_profiles()
    }


def cpu_profile_for(vendor: str, family: int, model: int, flags: Iterable[str],
                    l2_kib: int = 0) -> str:
    """The profile chosen for a CPU with this CPUID vendor, family, model, flags and L2 size.

    ``family`` and ``model`` are as /proc/cpuinfo shows them ("cpu family",
    "model"); ``flags`` are /proc/cpuinfo flag names such as "avx2", "fma",
    "avx512f"; ``l2_kib`` is each core's L2 cache in KiB (0: unknown), which
    tells Intel's AVX-512 parts with 2 MiB of L2 apart. The same function
    picks the profile of this CPU at import. A wrong type or a number out of
    CPUID's range raises a TypeError or ValueError naming the argument.
    """
    if not isinstance(vendor, str):
        raise TypeError(f"vendor must be a CPUID vendor string such as 'AuthenticAMD', "
                        f"got {vendor!r}")
    numbers = {"family": nonnegative_int(_decimal(family), "family"),
               "model": nonnegative_int(_decimal(model), "model"),
               "l2_kib": nonnegative_int(_decimal(l2_kib), "l2_kib")}
    for name, value in numbers.items():
        if value > _LARGEST_CPUID_NUMBER:
            raise ValueError(f"{name} must be at most {_LARGEST_CPUID_NUMBER} (CPUID's range), "
                             f"got {value}")
    if isinstance(flags, (str, bytes)):
        raise TypeError(f"flags must be a list of flag names, not one string ({flags!r})")
    names = list(flags)
    for flag in names:
        if not isinstance(flag, str):
            raise TypeError(f"flags must be strings such as 'avx2', got {flag!r}")
    return _core.profile_for(vendor, numbers["family"], numbers["model"], names,
                             numbers["l2_kib"])


def _decimal(value):
    """``value``, or the int a string of decimal digits spells ("25", as /proc/cpuinfo shows it)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


# CPUID's family (base 4 bits plus extended 8) and model (4 plus 4) fit in 9 and 8
# bits, AMD's L2 size in KiB in 16 (detection reports a larger size from Intel's
# leaf 4 as unknown, 0); anything above this bound is not a CPU's.
_LARGEST_CPUID_NUMBER = 0xFFFF


def _tuning_dict(tuning) -> dict:
    return {"kc": tuning.kc, "blocks_per_pass": tuning.blocks_per_pass,
            "mc_panels": tuning.mc_panels, "nc": tuning.nc,
            "prefetch_distance": tuning.prefetch_distance}


def set_simd_target(name: str) -> None:
    """Use the kernels compiled for ``name`` ("portable", "avx2" or "avx512").

    Raises
    ------
    ValueError
        If ``name`` is not compiled into this build.
    RuntimeError
        If this CPU cannot run it.
    """
    if not isinstance(name, str):
        raise TypeError(f"SIMD target must be a string, got {name!r}")
    compiled = _core.compiled_targets()
    if name not in compiled:
        raise ValueError(f"unknown SIMD target {name!r}; compiled targets: {', '.join(compiled)}")
    if name not in _core.supported_targets():
        raise RuntimeError(
            f"SIMD target {name!r} is compiled in but this CPU cannot run it; "
            f"it can run: {', '.join(_core.supported_targets())}"
        )
    _core.select_target(name)


def _select_profile_from_environment() -> None:
    """Honour RELUSCOPE_CPU_PROFILE once, at import; "auto" or unset keeps the detected one."""
    _apply_environment_choice(CPU_PROFILE_ENV_VAR, set_cpu_profile)


def _select_target_from_environment() -> None:
    """Honour RELUSCOPE_SIMD once, at import, after the profile; "auto" or unset keeps
    the profile's target."""
    _apply_environment_choice(SIMD_ENV_VAR, set_simd_target)


def _select_idle_spin_from_environment() -> None:
    """Honour RELUSCOPE_IDLE_SPIN_US once, at import; "auto" or unset keeps the default."""
    def select(text: str) -> None:
        try:
            us = int(text)
        except ValueError:
            raise ValueError("expected a whole number of microseconds") from None
        set_idle_spin_us(us)

    _apply_environment_choice(IDLE_SPIN_ENV_VAR, select)


def _apply_environment_choice(variable: str, select) -> None:
    """Pass the value of ``variable``, unless empty or "auto", to ``select``.

    A bad value makes ``import reluscope`` fail, except in the reluscope command
    itself: the package is imported before the command's ``main`` can catch
    anything, so the (first) error is kept in ``environment_error`` for ``main``
    to report in one line instead of a traceback.
    """
    global environment_error
    requested = os.environ.get(variable, "").strip().lower()
    if requested in ("", "auto"):
        return
    try:
        select(requested)
    except (ValueError, RuntimeError) as error:
        error = type(error)(f"{variable}={requested}: {error}")
        if not _running_the_command():
            raise error from None
        if environment_error is None:
            environment_error = error


def _running_the_command() -> bool:
    """Whether this process is the reluscope command: its script, or python -m reluscope."""
    first = sys.argv[0] if sys.argv else ""
    if first == "-m":  # python -m <module>, while <module>'s packages are imported
        command_line = getattr(sys, "orig_argv", None)  # Python >= 3.10
        if command_line is None:
            return True
        # Only the command reports the stored error: other reluscope modules run
        # with -m must fail at import as any import would.
        return any(option == "-m" and module in ("reluscope", "reluscope.cli")
                   for option, module in zip(command_line, command_line[1:]))
    name = os.path.basename(first)
    return name in ("reluscope", "reluscope.exe", "reluscope-script.py")


def set_num_threads(n: int) -> int:
    """Set the number of threads every kernel call may use; returns the count applied.

    The count is capped at the processors this process may run on
    (``build_info()["available_processors"]``), with a RuntimeWarning: beyond
    that, threads only wait for each other, and a count the operating system
    refuses is never asked for. OMP_NUM_THREADS sets the start, under the same
    cap.
    """
    requested = positive_int(n, "number of threads")
    # Capped here too: the binding takes a C int.
    applied = _core.set_num_threads(min(requested, _core.available_processors()))
    if applied < requested:
        _warn_capped(requested, applied, "set_num_threads")
    return applied


def _warn_capped(requested: int, applied: int, source: str) -> None:
    warnings.warn(f"{source} asked for {requested} threads but this process may run on "
                  f"{applied} processors; reluscope uses {applied}", RuntimeWarning, stacklevel=3)


def _cap_threads_from_environment() -> None:
    """Say once, at import, when OMP_NUM_THREADS asked for more threads than processors,
    or held something that is not a thread count."""
    if _core.thread_count_from_environment_ignored():
        warnings.warn(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')!r} is not a thread "
                      f"count (a positive integer, or a list starting with one); reluscope "
                      f"uses {_core.get_num_threads()} threads, one per processor",
                      RuntimeWarning, stacklevel=2)
    requested = _core.requested_threads_at_start()
    if requested > _core.available_processors():
        _warn_capped(requested, _core.get_num_threads(), "OMP_NUM_THREADS")


def get_num_threads() -> int:
    """The number of threads every kernel call may use."""
    return _core.get_num_threads()


def set_idle_spin_us(us: int) -> int:
    """Set how long an idle worker thread watches for work before it sleeps; returns the old value.

    After a kernel call, reluscope's worker threads keep watching for the next
    one for ``us`` microseconds (300 by default), offering their CPU to any
    other thread that wants it (``sched_yield``) between looks, and then
    sleep. Watching carries a worker from one kernel call of a training step
    to the next without the cost of waking it; yielding lets numpy's,
    PyTorch's or any other threads run on that CPU meanwhile. 0 puts workers
    to sleep at once (the least CPU time, the slowest small calls). The
    ``RELUSCOPE_IDLE_SPIN_US`` environment variable sets it at import.

    Raises
    ------
    TypeError
        If ``us`` is not an integer.
    ValueError
        If ``us`` is below 0 or above 1,000,000 (one second).
    """
    us = nonnegative_int(us, "idle spin (microseconds)")
    if us > _core.MAX_IDLE_SPIN_US:
        raise ValueError(f"idle spin (microseconds) must be <= {_core.MAX_IDLE_SPIN_US}, "
                         f"got {us}")
    previous = _core.idle_spin_us()
    _core.set_idle_spin_us(us)
    return previous


def get_idle_spin_us() -> int:
    """How long, in microseconds, an idle worker thread watches for work before it sleeps."""
    return _core.idle_spin_us()


def build_info() -> dict:
    """Facts about this build and the CPU it runs on.

    Returns
    -------
    dict
        ``version``, ``compiled_targets`` (SIMD targets in this build),
        ``supported_targets`` (those this CPU can run), ``selected_target``
        (in use), ``cpu`` (``vendor``, ``family``, ``model`` as CPUID reports
        them, and ``l2_kib``, each core's L2 in KiB, 0 when unknown),
        ``detected_cpu_profile`` (chosen for this CPU at import),
        ``cpu_profile`` (in use), ``gemm_tuning`` (the blocking and prefetch of
        the target in use, see ``cpu_profiles()``), ``num_threads`` and
        ``available_processors`` (the cap on ``num_threads``), ``idle_spin_us``
        (how long idle worker threads watch for work before they sleep, see
        ``set_idle_spin_us``) and ``workers_started`` (worker threads started
        so far in this process).
    """
    cpu = _core.detect_cpu()
    return {
        "version": _core.__version__,
        "compiled_targets": list(_core.compiled_targets()),
        "supported_targets": list(_core.supported_targets()),
        "selected_target": _core.selected_target(),
        "cpu": {"vendor": cpu.vendor, "family": cpu.family, "model": cpu.model,
                "l2_kib": cpu.l2_kib},
        "detected_cpu_profile": _core.detected_cpu_profile(),
        "cpu_profile": _core.selected_cpu_profile(),
        "gemm_tuning": _tuning_dict(_core.gemm_tuning_in_use()),
        "num_threads": _core.get_num_threads(),
        "available_processors": _core.available_processors(),
        "idle_spin_us": _core.idle_spin_us(),
        "workers_started": _core.workers_started(),
    }
