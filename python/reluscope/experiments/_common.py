"""What every experiment shares: its data, its JSON result, its PNG figure."""

from __future__ import annotations

import platform
import time

import numpy as np

from .. import _files, _strict_json
from .._core import __version__
from .._validation import generator, positive_int

# Version of the experiments' JSON layout; bumped when a field changes meaning.
SCHEMA_VERSION = 1


def load_data(dataset: str = "auto", max_train: int | None = None, seed: int = 0):
    """(name, x_train, y_train, x_test, y_test, n_classes) for "digits", "fashion-mnist" or "auto".

    "auto" is Fashion-MNIST when its files are installed, digits otherwise.
    ``max_train`` (>= 1) keeps a seeded random subset of the training set (the
    test set is cut to the same size at most), to fit a time budget;
    ``n_classes`` is the whole dataset's, which a small subset may not show.
    """
    from .. import datasets

    if dataset == "auto":
        dataset = "fashion-mnist" if datasets.fashion_mnist_available() else "digits"
    if dataset == "digits":
        x, y, x_test, y_test = datasets.load_digits(seed=seed)
    elif dataset == "fashion-mnist":
        x, y, x_test, y_test = datasets.load_fashion_mnist()
    else:
        raise ValueError(f"dataset must be 'auto', 'digits' or 'fashion-mnist', got {dataset!r}")
    n_classes = int(max(y.max(), y_test.max())) + 1
    if max_train is not None:
        max_train = positive_int(max_train, "max_train")
    if max_train is not None and x.shape[0] > max_train:
        rng = generator(seed)
        keep = np.sort(rng.choice(x.shape[0], max_train, replace=False))
        x, y = x[keep], y[keep]
        keep = np.sort(rng.choice(x_test.shape[0], min(max_train, x_test.shape[0]),
                                  replace=False))
        x_test, y_test = x_test[keep], y_test[keep]
    return dataset, x, y, x_test, y_test, n_classes


def result_header(experiment: str, parameters: dict) -> dict:
    """The fields every result starts with: what ran, with which parameters, where."""
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment,
        "parameters": parameters,
        "reluscope_version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(result: dict, path) -> str:
    """Write ``result`` as indented strict JSON, atomically, and return the path.

    NaN and infinities are written as null, and a top-level "notes" entry
    names the fields where that happened (see ``reluscope._strict_json``).
    """
    return _strict_json.write_json(result, path)


def save_figure(figure, path) -> str:
    """Save a matplotlib ``Figure`` as PNG, atomically (nothing to close: pyplot never knew it)."""
    return _files.save_figure(figure, path, format="png", dpi=110, bbox_inches="tight")


def write_outputs(result: dict, figure, out_prefix: str) -> dict:
    """Write ``out_prefix``.json and ``out_prefix``.png; return the result."""
    write_json(result, out_prefix + ".json")
    save_figure(figure, out_prefix + ".png")
    return result
