"""Born dead: how often a deep narrow ReLU network is a constant function at init.

Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and
Numerical Examples", Commun. Comput. Phys. 28 (2020), arXiv:1903.06733, prove
that the probability tends to 1 with depth. This Monte Carlo estimates it on a
grid of widths N and depths H (hidden layers): each network is drawn once with
``max_depth`` hidden layers, and the network of depth H is its first H hidden
layers (a depth-H network's parameters have exactly that distribution), so one
pass gives every depth.

Three events, each "by depth H" (at some hidden layer <= H):

- mask death: no unit of a layer fires (pre-activation > 0) on any point of
  the data, and some pre-activation is negative: the mask is dead by sign and
  the network is constant there. With zero biases this is the paper's "born
  dead";
- signal collapse (fp32): some layer's output is bitwise the same at every
  point, so the network's output is constant in fp32. It includes mask death
  and the fp32 underflow of a shrinking signal (every pre-activation rounds to
  exactly 0); ``collapse_only`` counts the networks that collapsed with no dead
  mask;
- pointwise death: no unit of a layer fires at one fixed input (x = 1 on the
  default grid).

For one fixed input, zero biases and symmetric weights, each unit of a layer
fed a nonzero input fires with probability 1/2 independently of the others, so
a layer is all zero with probability 2^-N and P(pointwise death by H) =
1 - (1 - 2^-N)^H exactly. Death on a whole grid needs more than death at one
point, so that closed form is an upper reference for the mask-death curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from .._validation import as_features, float32_hyperparameter, nonnegative_int, positive_int
from ..initializers import initialize
from . import _arguments as check
from ._arguments import output_prefix
from ._common import result_header, write_outputs

DEFAULT_WIDTHS = (2, 3, 4, 5, 10)
# What the paper reports (section on the born-dead probability), to show beside
# our estimates; "depth" counts hidden layers.
PAPER_VALUES: list[dict[str, Any]] = [
    {"width": 3, "depth": 10, "claim": "about 60% born dead"},
    {"width": 5, "depth": 10, "claim": "over 10% born dead"},
    {"width": 10, "depth": 10, "claim": "under 1% born dead"},
    {"width": 2, "depth": 10, "claim": "over 90% collapse to a constant when trained on |x| "
                                       "(not trained here; compare with P(born dead))"},
]


def pointwise_closed_form(width: int, depth) -> np.ndarray:
    """1 - (1 - 2^-width)^depth: P(some hidden layer is all zero at one fixed input)."""
    return 1.0 - (1.0 - 2.0 ** -width) ** np.asarray(depth, dtype=np.float64)


def default_grid(n_points: int = 1001) -> np.ndarray:
    """Return the 1-D input grid of the paper's setup: n_points in [-1, 1], as (n_points, 1)."""
    return np.linspace(-1.0, 1.0, n_points, dtype=np.float32)[:, None]


def draw_networks(width: int, depth: int, n_networks: int, n_inputs: int, rng,
                  init="he_normal", init_params=None,
                  bias: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameters of ``n_networks`` networks as the C++ kernel takes them.

    Returns (first_weight (R, n_inputs, N), weights (R, depth - 1, N, N),
    biases (R, depth, N)), drawn network by network, layer by layer, with the
    named initializer (its own bias when it draws one, else ``bias``).
    """
    first = np.empty((n_networks, n_inputs, width), dtype=np.float32)
    weights = np.empty((n_networks, max(depth - 1, 0), width, width), dtype=np.float32)
    biases = np.full((n_networks, depth, width), bias, dtype=np.float32)
    for r in range(n_networks):
        for layer in range(depth):
            fan_in = n_inputs if layer == 0 else width
            weight, drawn_bias = initialize(init, fan_in, width, rng, init_params)
            if layer == 0:
                first[r] = weight
            else:
                weights[r, layer - 1] = weight
            if drawn_bias is not None:
                biases[r, layer] = drawn_bias
    return first, weights, biases


def run_networks(x: np.ndarray, first, weights, biases, reference_point: int):
    """(dead_at, constant_at, dead_at_point) per network, from the C++ kernel."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return _core.random_networks(x, first, weights, biases, int(reference_point))


def abs_fit_trial(width: int, depth: int, seed: int, steps: int = 1000, lr: float = 1e-3,
                  init="he_normal") -> dict:
    """Train one network of ``depth`` hidden layers of ``width`` on |x| over the grid.

    Full-batch Adam on the mean squared error, ``steps`` updates. Returns whether
    it was born dead (a dead mask at init) and whether it ended constant: the
    output's range over the grid is 0 in fp32, or below 1% of the target's range.
    """
    from ..diagnosis import born_dead
    from ..errors import TrainingDiverged
    from ..model import MLP
    from ..optim import Adam
    from ..trainer import Trainer

    grid = default_grid()
    target = np.abs(grid)
    model = MLP([1] + [width] * depth + [1], init=init, seed=seed)
    born = born_dead(model, grid).mask_death  # the same rule as the kernel's dead_at
    trainer = Trainer(model, loss="mse", optimizer=Adam(lr=lr), batch_size=len(grid),
                      track_firing=False, track_deaths=False)
    diverged = False
    try:
        for _ in range(steps):
            trainer.step(grid, target)
    except TrainingDiverged:
        diverged = True
    output = model.forward(grid)
    spread = float(output.max() - output.min())
    return {"seed": seed, "born_dead": bool(born), "diverged": diverged,
            "output_range": spread, "constant_fp32": spread == 0.0,
            "collapsed": spread < 0.01 * float(target.max() - target.min()),
            "final_mse": float(np.mean((output - target) ** 2))}


def abs_fit_collapse(width: int = 2, depth: int = 10, n_networks: int = 100,
                     steps: int = 1000, lr: float = 1e-3, init="he_normal", seed: int = 0,
                     n_jobs: int = -1) -> dict:
    """How many ``width`` x ``depth`` networks trained on |x| end as a constant function.

    The setting of Lu et al.'s numerical example (networks of width 2 and 10
    hidden layers fitted to |x|). Our training schedule (full-batch Adam,
    ``steps`` updates at ``lr``) is our own choice, recorded in the result.
    """
    from .sweep import sweep

    width, depth = positive_int(width, "width"), positive_int(depth, "depth")
    n_networks = positive_int(n_networks, "n_networks")  # 0 would divide by zero below
    steps = positive_int(steps, "steps")
    lr = check.learning_rate(lr)
    seed = nonnegative_int(seed, "seed")
    n_jobs = check.n_jobs(n_jobs)
    trials = sweep(abs_fit_trial, [{"width": width, "depth": depth, "seed": seed * 100003 + r,
                                    "steps": steps, "lr": lr, "init": init}
                                   for r in range(n_networks)], n_jobs=n_jobs)
    n = len(trials)
    return {"width": width, "depth": depth, "n_networks": n, "steps": steps, "lr": lr,
            "optimizer": "adam, full batch, mse", "init": init,
            "born_dead": sum(t["born_dead"] for t in trials) / n,
            "collapsed": sum(t["collapsed"] for t in trials) / n,
            "constant_fp32": sum(t["constant_fp32"] for t in trials) / n,
            "diverged": sum(t["diverged"] for t in trials),
            "collapsed_although_alive_at_init": sum(
                t["collapsed"] and not t["born_dead"] for t in trials) / n}


def born_dead_study(widths=DEFAULT_WIDTHS, max_depth: int = 50, n_networks: int = 2000,
                    init="he_normal", init_params=None, bias: float = 0.0, x=None,
                    reference_point: int | None = None, seed: int = 0,
                    abs_fit_networks: int = 100, n_jobs: int = -1) -> dict:
    """Monte Carlo estimate of P(born dead) on a grid of widths and depths 1..max_depth.

    ``x`` (n_points, n_inputs) defaults to 1001 points in [-1, 1]; the pointwise
    event uses ``x[reference_point]`` (default: the point x = 1 of the grid,
    else the first row). Each width uses its own generator, seeded from
    (seed, width), so adding a width changes no other column.

    With the default grid and ``abs_fit_networks`` > 0, it also trains that many
    width-2, 10-layer networks on |x| (``abs_fit_collapse``) to set beside the
    paper's collapse figure.
    """
    widths = check.positive_ints(widths, "widths")
    max_depth = positive_int(max_depth, "max_depth")
    n_networks = positive_int(n_networks, "n_networks")
    bias = float32_hyperparameter(bias, "bias")
    seed = nonnegative_int(seed, "seed")
    abs_fit_networks = nonnegative_int(abs_fit_networks, "abs_fit_networks")
    n_jobs = check.n_jobs(n_jobs)
    grid = x is None
    # as_features refuses complex, times and non-numbers, and NaN or Inf.
    x = default_grid() if grid else as_features(x, "x")
    if x.shape[0] < 2:
        raise ValueError(f"x must be (n_points >= 2, n_inputs), got shape {x.shape}")
    if reference_point is None:
        reference_point = x.shape[0] - 1 if grid else 0
    elif nonnegative_int(reference_point, "reference_point") >= x.shape[0]:
        raise ValueError(f"reference_point {reference_point} is not a row of x, which has "
                         f"{x.shape[0]} points")
    depths = np.arange(1, max_depth + 1)
    columns = []
    for width in widths:
        rng = np.random.default_rng([seed, width])
        networks = draw_networks(width, max_depth, n_networks, x.shape[1], rng, init,
                                 init_params, bias)
        dead_at, constant_at, dead_at_point = run_networks(x, *networks, reference_point)
        mask = _by_depth(dead_at, depths)
        collapse = _by_depth(constant_at, depths)
        point = _by_depth(dead_at_point, depths)
        columns.append({
            "width": width,
            "mask_death": mask, "mask_death_se": _standard_error(mask, n_networks),
            "signal_collapse": collapse,
            "signal_collapse_se": _standard_error(collapse, n_networks),
            "collapse_only": _by_depth(np.where(dead_at > max_depth, constant_at,
                                                max_depth + 1), depths),
            "pointwise_death": point, "pointwise_death_se": _standard_error(point, n_networks),
            "pointwise_closed_form": pointwise_closed_form(width, depths),
        })
    parameters = {"widths": widths, "max_depth": max_depth, "n_networks": n_networks,
                  "init": init if isinstance(init, str) else getattr(init, "__name__", "custom"),
                  "init_params": init_params or {}, "bias": bias, "seed": seed,
                  "data": "grid of 1001 points in [-1, 1]" if grid else
                  f"user data, {x.shape[0]} points x {x.shape[1]} features",
                  "reference_point": x[reference_point].tolist()}
    parameters["abs_fit_networks"] = abs_fit_networks if grid else 0
    result = result_header("born-dead", parameters)
    trained = (abs_fit_collapse(n_networks=abs_fit_networks, init=init, seed=seed, n_jobs=n_jobs)
               if grid and abs_fit_networks > 0 else None)
    result.update({"depths": depths, "columns": columns, "trained_on_abs": trained,
                   "paper": _paper_comparison(columns, trained)})
    return result


def _by_depth(first_layer: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """Fraction of networks whose event happened at a hidden layer <= each depth."""
    counts = np.bincount(np.minimum(first_layer, depths[-1] + 1), minlength=depths[-1] + 2)
    return np.cumsum(counts)[1:depths[-1] + 1] / len(first_layer)


def _standard_error(p: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt(p * (1.0 - p) / n)


def _paper_comparison(columns: list, trained: dict | None = None) -> list:
    rows = []
    if trained is not None:
        rows.append({"width": trained["width"], "depth": trained["depth"],
                     "claim": "over 90% collapse to a constant when trained on |x|",
                     "trained_collapsed": trained["collapsed"],
                     "trained_born_dead": trained["born_dead"],
                     "trained_networks": trained["n_networks"]})
    for claim in PAPER_VALUES:
        column = next((c for c in columns if c["width"] == claim["width"]), None)
        if column is None or claim["depth"] > len(column["mask_death"]):
            continue
        if "trained" in claim["claim"] and trained is not None:
            continue
        h = claim["depth"] - 1
        rows.append({**claim, "mask_death": column["mask_death"][h],
                     "mask_death_se": column["mask_death_se"][h],
                     "signal_collapse": column["signal_collapse"][h],
                     "pointwise_closed_form": column["pointwise_closed_form"][h]})
    return rows


def table(result: dict, depths=(1, 2, 5, 10, 20, 30, 50)) -> str:
    """Text table: P(mask death) +- s.e. per width and depth, then the paper's values."""
    available = [h for h in depths if h <= len(result["depths"])]
    lines = ["P(born dead) = P(some hidden layer fires on no point), Monte Carlo "
             f"({result['parameters']['n_networks']} networks per cell, "
             f"{result['parameters']['init']})",
             "width " + "".join(f"{'H=' + str(h):>14}" for h in available)]
    for column in result["columns"]:
        cells = "".join(f"{column['mask_death'][h - 1]:>8.3f}+-{column['mask_death_se'][h - 1]:.3f}"
                        for h in available)
        lines.append(f"{column['width']:>5} " + cells)
    lines.append("P(signal collapse without a dead layer): the output is constant in fp32 "
                 "although every layer fires somewhere:")
    for column in result["columns"]:
        lines.append(f"{column['width']:>5} " + "".join(
            f"{column['collapse_only'][h - 1]:>14.3f}" for h in available))
    lines.append("closed form 1-(1-2^-N)^H (one fixed input; an upper reference):")
    for column in result["columns"]:
        lines.append(f"{column['width']:>5} " + "".join(
            f"{column['pointwise_closed_form'][h - 1]:>14.3f}" for h in available))
    if result["paper"]:
        lines.append("against Lu et al. (2020):")
        for row in result["paper"]:
            if "trained_collapsed" in row:
                lines.append(
                    f"  width {row['width']}, {row['depth']} layers: paper {row['claim']}; "
                    f"here {100 * row['trained_collapsed']:.0f}% of {row['trained_networks']} "
                    f"networks trained on |x| ended constant ({100 * row['trained_born_dead']:.0f}%"
                    f" were born dead)")
                continue
            lines.append(f"  width {row['width']}, {row['depth']} layers: paper {row['claim']}; "
                         f"here {100 * row['mask_death']:.1f}% +- {100 * row['mask_death_se']:.1f}"
                         f" born dead, {100 * row['signal_collapse']:.1f}% constant in fp32")
    return "\n".join(lines)


def figure(result: dict):
    """P(born dead) against depth per width, with the closed-form reference."""
    from ..html_report import figure_class

    Figure = figure_class()
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    depths = np.asarray(result["depths"])
    for i, column in enumerate(result["columns"]):
        color = f"C{i}"
        p, se = np.asarray(column["mask_death"]), np.asarray(column["mask_death_se"])
        ax.plot(depths, p, color=color, label=f"N={column['width']} mask death (MC)")
        ax.fill_between(depths, p - 3 * se, p + 3 * se, color=color, alpha=0.2, linewidth=0)
        ax.plot(depths, column["signal_collapse"], color=color, linestyle=":", linewidth=1)
        ax.plot(depths, column["pointwise_closed_form"], color=color, linestyle="--",
                linewidth=1)
    ax.plot([], [], color="gray", linestyle="--", linewidth=1,
            label="closed form 1-(1-2^-N)^H (one input)")
    ax.plot([], [], color="gray", linestyle=":", linewidth=1, label="constant in fp32")
    ax.set_xlabel("depth H (hidden layers)")
    ax.set_ylabel("probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Born dead at init ({result['parameters']['init']}, "
                 f"{result['parameters']['n_networks']} networks per point, band = 3 s.e.)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def run(out_prefix: str, **kwargs) -> dict:
    """Run with ``kwargs``, write ``out_prefix``.json and .png, return the result."""
    out_prefix = output_prefix(out_prefix)
    result = born_dead_study(**kwargs)
    return write_outputs(result, figure(result), out_prefix)
