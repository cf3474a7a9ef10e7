"""Init study: the signal through a deep ReLU stack after one forward pass.

The setup of a well-known reference plot (an intoli.com article on
weight initialization, January 2018): no training; a linear first layer of 100
units, then 5 ReLU layers of 100; zero biases; weights N(0, sigma^2) with
sigma in {0.10, 0.14, 0.28}. For fan-in 100, He's std is sqrt(2/100) = 0.141,
so 0.14 holds the signal, 0.10 shrinks it by about 0.10/0.14 per layer and
0.28 doubles it. We add Glorot, He, LeCun, orthogonal (gain sqrt(2), the ReLU
gain) and RAI (Lu et al. 2020), each applied to all six layers.

Per init and layer: mean and std of the outputs, the fraction of outputs that
are exactly zero, the number of dead units (ReLU units that fire on no sample),
and the distribution of the outputs (violin plot).
"""

from __future__ import annotations

import numpy as np

from .._validation import nonnegative_int, positive_int
from ..activations import IDENTITY, get_activation
from ..initializers import initialize
from ..layers import Dense
from ._arguments import output_prefix
from ._common import load_data, result_header, write_outputs

# (label, initializer, its parameters)
DEFAULT_INITS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("N(0, 0.10)", "normal", {"std": 0.10}),
    ("N(0, 0.14)", "normal", {"std": 0.14}),
    ("N(0, 0.28)", "normal", {"std": 0.28}),
    ("Glorot", "glorot_normal", {}),
    ("He", "he_normal", {}),
    ("LeCun", "lecun_normal", {}),
    ("orthogonal", "orthogonal", {"gain": float(np.sqrt(2.0))}),
    ("RAI", "rai", {}),
)


def stack(n_features: int, init, init_params, rng, width: int = 100, relu_layers: int = 5,
          biases: str = "zero") -> list[Dense]:
    """Return a linear layer of ``width`` units then ``relu_layers`` ReLU layers of ``width``.

    Biases are zero (the article's setup) unless the initializer draws its own
    (RAI) and ``biases == "init"``. A list of layers, not an ``MLP``: its first
    layer is linear and its last one ReLU, the reverse of an MLP's.
    """
    layers = []
    for i in range(relu_layers + 1):
        fan_in = n_features if i == 0 else width
        weight, bias = initialize(init, fan_in, width, rng, init_params)
        if bias is None or biases == "zero":
            bias = np.zeros(width, dtype=np.float32)
        layers.append(Dense(weight, bias, IDENTITY if i == 0 else get_activation("relu")))
    return layers


def layer_statistics(outputs: np.ndarray, relu: bool) -> dict:
    """Mean, std, zero fraction and dead units of one layer's (n, units) outputs."""
    values = outputs.astype(np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "zero_fraction": float(np.mean(outputs == 0.0)),
        "dead_units": int(np.count_nonzero(~(outputs > 0.0).any(axis=0))) if relu else None,
    }


def init_study(inits=DEFAULT_INITS, dataset: str = "auto", n_samples: int = 1000,
               width: int = 100, relu_layers: int = 5, biases: str = "zero", seed: int = 0,
               violin_values: int = 20000) -> tuple[dict, dict]:
    """One forward pass of the stack under each init; statistics per layer.

    Returns the result (its ``inits`` rows hold the statistics) and, by label,
    the output values sampled from each layer for the violins.

    ``inits``: (label, initializer name, parameters) triples. The same
    ``n_samples`` inputs (a seeded sample of the training set, pixels in [0, 1])
    go through every stack; each init draws from its own generator seeded
    from (seed, its index).
    """
    if biases not in ("zero", "init"):
        raise ValueError(f"biases must be 'zero' or 'init', got {biases!r}")
    # Zero samples gave NaN statistics; zero ReLU layers leave nothing to study.
    n_samples = positive_int(n_samples, "n_samples")
    width = positive_int(width, "width")
    relu_layers = positive_int(relu_layers, "relu_layers")
    seed = nonnegative_int(seed, "seed")
    violin_values = positive_int(violin_values, "violin_values")
    inits = list(inits)
    if not inits:
        raise ValueError("inits must name at least one initializer: (label, name, parameters)")
    name, x, _, _, _, _ = load_data(dataset, seed=seed)
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(x[np.sort(rng.choice(x.shape[0], min(n_samples, x.shape[0]),
                                                  replace=False))])
    rows, samples = [], {}
    for index, (label, init, params) in enumerate(inits):
        layers = stack(x.shape[1], init, params, np.random.default_rng([seed, index]), width,
                       relu_layers, biases)
        layer_input, stats, picked = x, [], []
        pick = np.random.default_rng([seed, index, 1])
        for i, layer in enumerate(layers):
            _, output = layer.forward(layer_input)
            stats.append({"layer": i, "kind": "linear" if i == 0 else "relu",
                          **layer_statistics(output, relu=i > 0)})
            flat = output.ravel()
            picked.append(flat[pick.choice(flat.size, min(violin_values, flat.size),
                                           replace=False)])
            layer_input = output
        rows.append({"label": label, "init": init, "init_params": params, "layers": stats})
        samples[label] = picked
    parameters = {"inits": [[label, init, params] for label, init, params in inits],
                  "dataset": name, "n_samples": int(x.shape[0]), "width": width,
                  "relu_layers": relu_layers, "biases": biases, "seed": seed,
                  "input_scaling": "pixels in [0, 1]"}
    result = result_header("init-study", parameters)
    result["inits"] = rows
    result["findings"] = findings(rows)
    return result, samples


def findings(rows: list) -> list[str]:
    """Say in words whether the std of the ReLU layers shrinks, holds or explodes with depth."""
    lines = []
    for row in rows:
        stds = [layer["std"] for layer in row["layers"][1:]]
        ratio = stds[-1] / stds[0] if stds[0] > 0 else float("nan")
        # A std that overflowed float32 (inf or NaN) exploded; read as a ratio it was
        # once called "shrinks".
        if not np.all(np.isfinite(stds)):
            verdict = "explodes past float32"
        elif not np.isfinite(ratio) or ratio < 0.5:
            verdict = "shrinks"
        elif ratio > 2.0:
            verdict = "explodes"
        else:
            verdict = "holds"
        dead = sum(layer["dead_units"] for layer in row["layers"][1:])
        lines.append(f"{row['label']}: std {verdict} with depth ({stds[0]:.3g} in the first "
                     f"ReLU layer, {stds[-1]:.3g} in the last, x{ratio:.3g}); "
                     f"{dead} dead units in the ReLU layers")
    return lines


def table(result: dict) -> str:
    """Format the init study's result as a text table, one row per init and layer."""
    parameters = result["parameters"]
    width, relu_layers = parameters["width"], parameters["relu_layers"]
    lines = [(f"Init study: {parameters['n_samples']} {parameters['dataset']} samples, one "
              f"forward pass, linear {width} then {relu_layers} ReLU "
              f"layer{'s' if relu_layers != 1 else ''} of {width}"),
             f"{'init':<12} {'layer':>5} {'mean':>10} {'std':>10} {'zeros':>7} {'dead':>5}"]
    for row in result["inits"]:
        for layer in row["layers"]:
            dead = "-" if layer["dead_units"] is None else str(layer["dead_units"])
            lines.append(f"{row['label']:<12} {layer['layer']:>5} {layer['mean']:>10.4g} "
                         f"{layer['std']:>10.4g} {100 * layer['zero_fraction']:>6.1f}% "
                         f"{dead:>5}")
    return "\n".join(lines + ["", *result["findings"]])


def figure(result: dict, samples: dict):
    """Return the result as a matplotlib ``Figure`` (drawn in ``initialization_figure``)."""
    from .initialization_figure import figure as draw

    return draw(result, samples)


def run(out_prefix: str, **kwargs) -> dict:
    """Run with ``kwargs``, write ``out_prefix``.json and .png, return the result."""
    out_prefix = output_prefix(out_prefix)
    result, samples = init_study(**kwargs)
    return write_outputs(result, figure(result, samples), out_prefix)
