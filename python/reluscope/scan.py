"""The exact dead-unit scan of a model over a dataset.

Definitions used everywhere in reluscope:

- A hidden unit *fires* on a sample when its pre-activation is > 0 (strictly).
- A unit is *dead* on a dataset when it fires on none of its samples.
- The output layer is linear and is not scanned.

A unit's largest pre-activation over the data, ``max_pre_activation``, is its
margin: the unit is dead exactly when it is <= 0.

A unit is *dormant* (Sokar et al., "The Dormant Neuron Phenomenon in Deep
Reinforcement Learning", ICML 2023) when its score
s_i = mean|h_i| / (mean over the layer's units k of mean|h_k|) is <= tau, with
mean|h| taken over the samples. As in the authors' code, the score is normalized
by the layer *mean*, not the sum. Default tau: 0.025. A dead ReLU unit has
score 0, so it is always dormant; a dormant unit need not be dead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._strict_json import strict_document
from ._validation import as_features, finite_float, positive_int
from .layer_stream import DEFAULT_CHUNK_ROWS
from .model_input import as_mlp
from .scan_chunks import chunk_scan_parts, is_chunk_iterator
from .scan_dask import dask_scan_parts, is_dask_array
from .scan_parts import ScanParts
from .scan_threads import threaded_scan_parts, worth_threading

if TYPE_CHECKING:
    from ._typing import PathLike

SCHEMA_VERSION = 1
DEFAULT_DORMANT_TAU = 0.025


@dataclass
class LayerScan:
    """Scan result of one hidden layer.

    Attributes
    ----------
    index : int
        Position of the layer in ``model.layers`` (0 is the first hidden layer).
    firing_counts : ndarray (n_units,) int64
        Samples on which each unit's pre-activation was > 0.
    max_pre_activation : ndarray (n_units,) float32
        Largest pre-activation of each unit over the samples.
    n_samples : int
    mean_abs_activation : ndarray (n_units,) float64 or None
        Mean over the samples of |activation| per unit (None when the scan
        was run with ``dormancy=False``).
    name : str or None
        Where the layer is in a model that names its parts, such as the path of
        a PyTorch module ("features.0"); None for a native MLP's layers.
    """

    index: int
    firing_counts: np.ndarray
    max_pre_activation: np.ndarray
    n_samples: int
    mean_abs_activation: np.ndarray | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """The name, or the index for an unnamed layer."""
        return str(self.index) if self.name is None else self.name

    @property
    def n_units(self) -> int:
        """Units of the layer."""
        return self.firing_counts.shape[0]

    @property
    def dead_units(self) -> np.ndarray:
        """Indices of the units that fired on no sample."""
        return np.flatnonzero(self.firing_counts == 0)

    @property
    def n_dead(self) -> int:
        """Units of the layer that fired on no sample."""
        return int(np.count_nonzero(self.firing_counts == 0))

    @property
    def dead_fraction(self) -> float:
        """The share of the layer's units that are dead."""
        return self.n_dead / self.n_units

    @property
    def firing_rate(self) -> np.ndarray:
        """Fraction of samples on which each unit fired."""
        return self.firing_counts / self.n_samples

    @property
    def dormant_scores(self) -> np.ndarray:
        """ReDo score of each unit: mean|h_i| over the layer mean of mean|h_k|.

        All zeros when no unit of the layer is ever active (every unit dormant).
        When some activation overflowed float32 (a network about to diverge), the
        layer mean is infinite and the scores are NaN: no unit counts as dormant.
        """
        if self.mean_abs_activation is None:
            raise ValueError("this scan did not measure activations; run scan(..., dormancy=True)")
        layer_mean = self.mean_abs_activation.mean()
        if layer_mean == 0.0:
            return np.zeros_like(self.mean_abs_activation)
        if not np.isfinite(layer_mean):
            return np.full_like(self.mean_abs_activation, np.nan)
        return self.mean_abs_activation / layer_mean

    def dormant_units(self, tau: float = DEFAULT_DORMANT_TAU) -> np.ndarray:
        """Return the indices of the units whose ReDo score is <= tau (a finite tau >= 0).

        A NaN tau would compare false everywhere and call no unit dormant.
        """
        tau = finite_float(tau, "tau", low=0.0)
        return np.flatnonzero(self.dormant_scores <= tau)

    def to_dict(self) -> dict:
        """Return the layer's scan as a JSON-ready dict."""
        dormant = None if self.mean_abs_activation is None else {
            "tau": DEFAULT_DORMANT_TAU,
            "units": self.dormant_units().tolist(),
            "scores": [float(v) for v in self.dormant_scores],
        }
        named = {} if self.name is None else {"name": self.name}
        return {
            "index": self.index,
            **named,
            "n_units": self.n_units,
            "n_dead": self.n_dead,
            "dead_fraction": self.dead_fraction,
            "dead_units": self.dead_units.tolist(),
            "firing_counts": self.firing_counts.tolist(),
            "max_pre_activation": [float(v) for v in self.max_pre_activation],
            "dormant": dormant,
        }


@dataclass
class ScanReport:
    """Dead units of every hidden layer of a model on one dataset."""

    layers: list
    n_samples: int

    @property
    def n_units(self) -> int:
        """Hidden units of the model."""
        return sum(layer.n_units for layer in self.layers)

    @property
    def n_dead(self) -> int:
        """Hidden units that fired on no sample."""
        return sum(layer.n_dead for layer in self.layers)

    @property
    def dead_fraction(self) -> float:
        """Dead units over all hidden units (0.0 for a model without hidden layers)."""
        return self.n_dead / self.n_units if self.layers else 0.0

    def to_dict(self) -> dict:
        """Return a JSON-serializable dict of plain Python types.

        A non-finite number is null, with a "notes" entry naming where.
        """
        return strict_document({
            "schema_version": SCHEMA_VERSION,
            "definition": "dead = pre-activation <= 0 on every sample (exact scan); dormant = "
                          "ReDo score mean|h_i| / layer mean of mean|h_k| <= tau",
            "n_samples": self.n_samples,
            "n_units": self.n_units,
            "n_dead": self.n_dead,
            "dead_fraction": self.dead_fraction,
            "layers": [layer.to_dict() for layer in self.layers],
        })

    def to_html(self, path: PathLike | None = None, *, title: str | None = None) -> str:
        """Return the scan as a self-contained HTML page (plots inline, nothing fetched).

        The summary and table, then per hidden layer the dead units and the
        distribution of margins (largest pre-activations) with 0 marked, dead
        units in a colour of their own. The plots need matplotlib (the ``plot``
        extra); without it the page has everything else and says so.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write the page (atomically: the previous file stays whole
            if writing fails).
        title : str, optional
            The page's title; by default the number of samples.

        Returns
        -------
        str
            The HTML text when ``path`` is None, else the path written.
        """
        from .scan_html import scan_page, write_scan_page

        if title is not None and not isinstance(title, str):
            raise TypeError(f"title must be a string, got {type(title).__name__}")
        title = f"{self.n_samples} samples" if title is None else title
        if path is None:
            return scan_page(self, title)
        return write_scan_page(self, path, title=title)

    def __str__(self) -> str:
        """Return the summary and a table of the hidden layers, as text."""
        width = max([5] + [len(layer.label) for layer in self.layers])
        lines = [
            (f"Dead-unit scan over {self.n_samples} samples "
             "(dead: pre-activation <= 0 on every sample)"),
            (f"{'layer':>{width}}  {'units':>5}  {'dead':>5}  {'dead %':>6}  "
             f"{'dormant':>7}  {'lowest margin':>13}"),
        ]
        for layer in self.layers:
            dormant = ("-" if layer.mean_abs_activation is None
                       else str(len(layer.dormant_units())))
            lines.append(
                f"{layer.label:>{width}}  {layer.n_units:>5}  {layer.n_dead:>5}  "
                f"{100 * layer.dead_fraction:>5.1f}%  {dormant:>7}  "
                f"{float(layer.max_pre_activation.min()):>13.4g}"
            )
        lines.append(
            f"{'all':>{width}}  {self.n_units:>5}  {self.n_dead:>5}  "
            f"{100 * self.dead_fraction:>5.1f}%"
        )
        if any(layer.mean_abs_activation is not None for layer in self.layers):
            lines.append(f"dormant: ReDo score <= {DEFAULT_DORMANT_TAU} (Sokar et al. 2023)")
        return "\n".join(lines)


def scan(model: Any, x: npt.ArrayLike | Iterable[npt.ArrayLike],
         chunk_size: int = DEFAULT_CHUNK_ROWS, dormancy: bool = True) -> ScanReport:
    """Count, for every hidden unit, the samples of ``x`` on which it fires.

    The data is streamed through the fused forward kernel ``chunk_size`` rows at
    a time: the counts and maxima accumulate in the kernel's epilogue, and only
    one chunk of activations is held at once, whatever the size of ``x``.

    ``x`` may also come in pieces: a dask array is scanned where its chunks
    live, one task per chunk, the partial statistics combined in a tree
    (``reluscope.scan_dask``); an iterator of 2-D chunks, such as a generator
    reading files, is scanned one chunk at a time (``reluscope.scan_chunks``).
    Firing counts and margins are bit for bit those of one scan over all the
    rows; ``reluscope.scan_parts`` says how the dormancy sums combine.

    Parameters
    ----------
    model : MLP, torch.nn.Sequential, or fitted sklearn MLPClassifier/MLPRegressor
        A PyTorch or scikit-learn model is converted first (``MLP.from_torch``,
        ``MLP.from_sklearn``); layer indices are those of the converted model's
        hidden layers. Anything else is a TypeError naming the converters.
    x : array-like (n_samples, n_features), dask array, or iterator of 2-D chunks
        A list or tuple is an array-like (rows); for a list of chunks pass
        ``iter(chunks)``.
    chunk_size : int
        Rows through the kernel at a time (within each chunk of a chunked ``x``).
    dormancy : bool
        Also measure mean|activation| per unit, for the ReDo dormancy score
        (one extra read of each chunk's activations, after the kernel).

    Returns
    -------
    ScanReport

    Raises
    ------
    NonFiniteActivations (a ValueError)
        When some hidden pre-activation is NaN or Inf (x overflows float32 on
        the way through the layers, or a weight is NaN or Inf): such a unit is
        neither dead nor alive, and is never counted as dead. The error names
        the layer, the samples and units affected, and the likely cause.
    """
    model = as_mlp(model)
    model.check_layers()
    chunk_size = positive_int(chunk_size, "chunk_size")
    if is_dask_array(x):
        parts = dask_scan_parts(model, x, chunk_size, dormancy)
    elif is_chunk_iterator(x):
        parts = chunk_scan_parts(model, x, chunk_size, dormancy)
    else:
        x = as_features(x, n_features=model.n_features)
        n_threads = _core.get_num_threads()
        if worth_threading(x.shape[0], chunk_size, n_threads):
            parts = threaded_scan_parts(model.hidden_layers, x, chunk_size, dormancy,
                                        n_threads)
        else:
            parts = ScanParts.empty(model.hidden_layers, dormancy)
            parts.add_rows(model.hidden_layers, x, chunk_size)
    return report_of(parts)


def report_of(parts: ScanParts) -> ScanReport:
    """Return the report of a scan's statistics over at least one sample."""
    n = parts.n_samples
    sums = parts.abs_sums or [None] * len(parts.firing_counts)
    layers = [LayerScan(i, c, m, n, None if a is None else a / n)
              for i, (c, m, a) in enumerate(zip(parts.firing_counts,
                                                 parts.max_pre_activation, sums))]
    return ScanReport(layers, n)
