"""Datasets that need no download.

Digits ships with scikit-learn; Fashion-MNIST is read when its IDX files are on
disk, e.g. from Debian's dataset-fashion-mnist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._validation import generator

if TYPE_CHECKING:
    from ._typing import PathLike


def _require_sklearn():
    try:
        import sklearn.datasets
    except ImportError:
        raise ImportError(
            "the digits dataset comes with scikit-learn; install it with "
            "pip install 'reluscope[examples]'"
        ) from None
    return sklearn.datasets


def load_digits(test_fraction: float = 0.25,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the 8x8 handwritten digits bundled with scikit-learn (1797 samples, 10 classes).

    Pixels (0..16) are scaled to [0, 1]. The split is a seeded permutation.

    Returns
    -------
    x_train, y_train, x_test, y_test : ndarrays
        x is (n, 64) float32, y is (n,) int64.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = _require_sklearn().load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = generator(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


# Where Debian's package dataset-fashion-mnist installs the original IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def _idx_path(folder, name: str):
    """Return the file ``name`` in ``folder``, plain or gzipped, or None."""
    import os

    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def fashion_mnist_available(path: PathLike | None = None) -> bool:
    """Tell whether the four Fashion-MNIST IDX files are in ``path`` (default: Debian's place)."""
    folder = FASHION_MNIST_DIR if path is None else path
    return all(_idx_path(folder, name) for name in _FASHION_FILES.values())


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format; gzipped when the name ends in .gz).

    The header is two zero bytes, a type code (0x08 = unsigned byte), the
    number of dimensions, then each dimension as a big-endian uint32.
    """
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: IDX type code {data[2]:#04x} is not unsigned byte (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(f"{path}: header says {shape} ({expected} bytes) but the file holds "
                         f"{len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(
    path: PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; MIT license) from its IDX files.

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each plain or
    ``.gz``) from ``path``, by default from where Debian's package
    ``dataset-fashion-mnist`` installs them. Pixels are scaled to [0, 1].

    Returns
    -------
    x_train (60000, 784) float32, y_train (60000,) int64, x_test (10000, 784), y_test (10000,)
    """
    folder = FASHION_MNIST_DIR if path is None else path
    arrays = {}
    for key, name in _FASHION_FILES.items():
        file = _idx_path(folder, name)
        if file is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {name}[.gz] not found in {folder}; on Debian or Ubuntu, "
                f"apt install dataset-fashion-mnist puts it in {FASHION_MNIST_DIR}")
        arrays[key] = read_idx(file)
    result = []
    for part in ("train", "test"):
        images, labels = arrays["x_" + part], arrays["y_" + part]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"Fashion-MNIST {part} files disagree: images {images.shape}, "
                             f"labels {labels.shape}")
        result += [(images.reshape(len(images), -1) / np.float32(255)).astype(np.float32),
                   labels.astype(np.int64)]
    return tuple(result)
