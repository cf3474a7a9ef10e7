"""The book of a model's hidden units over a series of exact scans of one dataset.

``UnitHistory.observe(epoch, model, step)`` scans the model on ``x`` and
records what changed since the previous scan: deaths (alive -> dead),
revivals (dead -> alive) and dead units whose incoming weights still moved.
Queries (margins, units at risk, labels of the dead units) read the book; they
never scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ._validation import (
    as_features,
    finite_float,
    index_into,
    integer,
    nonnegative_int,
    positive_int,
)
from .callbacks import CallbackState
from .layer_stream import stream_layers
from .layer_weights import HiddenLayerWeights, Rectifier
from .scan import LayerScan, ScanReport, scan

if TYPE_CHECKING:
    from .model import MLP


@dataclass(frozen=True)
class LayerLedger:
    """One hidden layer's deaths and revivals, from the first scan to the latest.

    Counts are events (alive -> dead, dead -> alive between consecutive scans);
    ``died_again`` counts the units among them that died more than once.
    """

    layer: int
    dead_at_first_scan: int
    died: int
    revived: int
    dead_now: int
    died_again: int = 0

    @property
    def adds_up(self) -> bool:
        """Whether dead at the first scan + died - revived equals dead now."""
        return self.dead_at_first_scan + self.died - self.revived == self.dead_now


class UnitHistory:
    """Exact dead-unit scans of ``x``, one per ``observe`` call, and what changed between them.

    Attributes
    ----------
    x : ndarray (n_samples, n_features), float32, or None
        None when the scans are taken elsewhere (``record``), on data that is
        not a feature matrix, such as a PyTorch model's images.
    epochs, steps : list of int
        The epoch (0: before training) and training step of each scan.
    reports : list of ScanReport
    deaths, revivals : list of (epoch, layer, unit)
        Alive -> dead and dead -> alive transitions, in scan order; the first
        scan's entries (epoch 0 when it is taken before training) are the units
        dead at that scan. They are events, not units: a unit that died, revived
        and died again is in ``deaths`` twice. See ``ledger``.
    moved_while_dead : list of (epoch, layer, unit, weight_change_norm)
        Units dead at two consecutive scans whose incoming weights and bias still
        moved between them.
    bias_history : list of list of ndarray
        The hidden layers' biases at each scan.
    activation_samples : dict
        ``"first"`` and ``"latest"``: per hidden layer, up to 4000 pre-activations
        (before the ReLU, so the values <= 0 are told apart; the name is kept for
        checkpoints) from the first 512 samples of x, at the first and the latest
        scan. A checkpoint written before they were pre-activations holds the
        ReLU's outputs.
    leaky : bool
        Whether the model's hidden units are leaky ReLU (inactive, not dead).
    """

    def __init__(self, x: npt.ArrayLike | None, chunk_size: int = 8192) -> None:
        self.x = None if x is None else as_features(x, "x")
        self.chunk_size = positive_int(chunk_size, "chunk_size")
        self.epochs: list[int] = []
        self.steps: list[int] = []
        self.reports: list[ScanReport] = []
        self.deaths: list[tuple[int, int, int]] = []
        self.revivals: list[tuple[int, int, int]] = []
        self.moved_while_dead: list[tuple[int, int, int, float]] = []
        self.bias_history: list[list[np.ndarray]] = []
        self.activation_samples: dict[str, list[np.ndarray]] = {}
        self.activation = "relu"
        self._dead_weights: list[dict] = []
        # The hidden layers' weights at the latest scan and at the one before it: the two
        # ends of every death the latest scan found (see reluscope.attribution).
        self.latest_weights: HiddenLayerWeights | None = None
        self.weights_before_latest: HiddenLayerWeights | None = None
        self._centered = None
        self._centered_known = False
        self._latest_deaths_start = 0  # where the latest scan's deaths begin in `deaths`

    def state_dict(self) -> CallbackState:
        """Everything ``observe`` and the queries read, for a checkpoint.

        Per hidden layer the scans are stacked, (n_scans, n_units), under
        ``scans/<layer>/...``; the biases at each scan under ``bias_history/<layer>``.
        """
        n_layers = len(self.reports[0].layers) if self.reports else 0
        settings = {
            "chunk_size": self.chunk_size,
            "epochs": list(self.epochs),
            "steps": list(self.steps),
            "deaths": [list(d) for d in self.deaths],
            "revivals": [list(r) for r in self.revivals],
            "moved_while_dead": [list(m) for m in self.moved_while_dead],
            "activation": self.activation,
            "n_hidden_layers": n_layers,
            "n_samples": [r.n_samples for r in self.reports],
            "dormancy_measured": [[layer.mean_abs_activation is not None for layer in r.layers]
                                  for r in self.reports],
            "dead_weight_units": [list(columns) for columns in self._dead_weights],
            "activation_samples": sorted(self.activation_samples),
            "latest_weights": _weights_settings(self.latest_weights),
        }
        # Only the native monitor checkpoints, and it always scans an x.
        assert self.x is not None
        arrays = {"x": self.x}
        for i in range(n_layers):
            scans = [r.layers[i] for r in self.reports]
            arrays[f"scans/{i}/firing_counts"] = np.stack([s.firing_counts for s in scans])
            arrays[f"scans/{i}/max_pre_activation"] = np.stack(
                [s.max_pre_activation for s in scans])
            arrays[f"scans/{i}/mean_abs_activation"] = np.stack(
                [np.full(s.n_units, np.nan) if s.mean_abs_activation is None
                 else s.mean_abs_activation for s in scans])
            arrays[f"bias_history/{i}"] = np.stack([biases[i] for biases in self.bias_history])
        for i, columns in enumerate(self._dead_weights):
            arrays[f"dead_weights/{i}"] = (np.stack(list(columns.values())) if columns
                                           else np.zeros((0, 0), dtype=np.float32))
        for key, samples in self.activation_samples.items():
            for i, values in enumerate(samples):
                arrays[f"activation_samples/{key}/{i}"] = values
        if self.latest_weights is not None:
            for i, (incoming, bias) in enumerate(zip(self.latest_weights.incoming,
                                                     self.latest_weights.biases)):
                arrays[f"latest_weights/{i}/incoming"] = incoming
                arrays[f"latest_weights/{i}/bias"] = bias
        return CallbackState(settings, arrays)

    @classmethod
    def from_state_dict(cls, state: CallbackState) -> UnitHistory:
        """Return the history ``state_dict`` saved."""
        settings, arrays = state.settings, state.arrays
        history = cls(arrays["x"], settings["chunk_size"])
        history.epochs = [int(e) for e in settings["epochs"]]
        history.steps = [int(s) for s in settings["steps"]]
        history.deaths = [tuple(d) for d in settings["deaths"]]
        history.revivals = [tuple(r) for r in settings["revivals"]]
        history.moved_while_dead = [tuple(m) for m in settings["moved_while_dead"]]
        history.activation = settings["activation"]
        n_layers = settings["n_hidden_layers"]
        stacks = [{name: arrays[f"scans/{i}/{name}"] for name in
                   ("firing_counts", "max_pre_activation", "mean_abs_activation")}
                  for i in range(n_layers)]
        history.reports = [
            ScanReport([LayerScan(i, stacks[i]["firing_counts"][s].copy(),
                                  stacks[i]["max_pre_activation"][s].copy(), n_samples,
                                  stacks[i]["mean_abs_activation"][s].copy() if measured[i]
                                  else None)
                        for i in range(n_layers)], n_samples)
            for s, (n_samples, measured) in enumerate(zip(settings["n_samples"],
                                                           settings["dormancy_measured"]))]
        history.bias_history = [[arrays[f"bias_history/{i}"][s].copy() for i in range(n_layers)]
                                for s in range(len(history.reports))]
        history._dead_weights = [
            {int(unit): arrays[f"dead_weights/{i}"][row].copy() for row, unit in enumerate(units)}
            for i, units in enumerate(settings["dead_weight_units"])]
        history.activation_samples = {
            key: [arrays[f"activation_samples/{key}/{i}"] for i in range(n_layers)]
            for key in settings["activation_samples"]}
        history._latest_deaths_start = len(history.deaths)  # certified before the save
        # Absent from checkpoints of earlier versions: the next deaths are then unclassified.
        kept = settings.get("latest_weights")
        if kept is not None:
            history.latest_weights = HiddenLayerWeights(
                [arrays[f"latest_weights/{i}/incoming"] for i in range(len(kept["chained"]))],
                [arrays[f"latest_weights/{i}/bias"] for i in range(len(kept["chained"]))],
                [bool(c) for c in kept["chained"]],
                None if kept["rectifiers"] is None
                else [Rectifier.from_dict(r) for r in kept["rectifiers"]])
        return history

    @property
    def n_samples(self) -> int:
        """Samples per scan: those of x, or of the latest recorded scan."""
        if self.x is not None:
            return self.x.shape[0]
        return self.reports[-1].n_samples if self.reports else 0

    @property
    def leaky(self) -> bool:
        """Whether the activation is leaky ReLU (inactive units, not dead ones)."""
        return self.activation == "leaky_relu"

    def observe(self, epoch: int, model: MLP, step: int = 0) -> ScanReport:
        """Scan ``model`` on x as the state after ``epoch`` (training step ``step``)."""
        nonnegative_int(epoch, "epoch")  # checked before the scan, not after it
        nonnegative_int(step, "step")
        self.check_model(model)
        assert self.x is not None  # as check_model found
        report = scan(model, self.x, self.chunk_size)
        self.record(epoch, step, report, HiddenLayerWeights.of_mlp(model),
                    self._activation_sample(model), model.activation.name)
        return report

    def record(self, epoch: int, step: int, report: ScanReport, weights: HiddenLayerWeights,
               activation_samples: list, activation: str = "relu") -> None:
        """Book a scan taken elsewhere as the state after ``epoch`` (training step ``step``).

        ``weights`` are the hidden layers' incoming weights at the scan;
        ``activation_samples`` a few activations per hidden layer (for the
        report's histograms); ``activation`` is "relu" or "leaky_relu".
        """
        epoch, step = nonnegative_int(epoch, "epoch"), nonnegative_int(step, "step")
        previous = self.reports[-1] if self.reports else None
        if previous is not None:  # before anything is booked: a refused scan changes nothing
            _check_same_widths(_hidden_widths(previous), _hidden_widths(report))
        self.activation = activation
        self._latest_deaths_start = len(self.deaths)
        dead_weights = []
        for layer in report.layers:
            dead_now = layer.firing_counts == 0
            dead_before = (previous.layers[layer.index].firing_counts == 0 if previous
                           else np.zeros_like(dead_now))
            self.deaths += [(epoch, layer.index, int(u))
                            for u in np.flatnonzero(dead_now & ~dead_before)]
            self.revivals += [(epoch, layer.index, int(u))
                              for u in np.flatnonzero(dead_before & ~dead_now)]
            dead_weights.append(self._note_moved_while_dead(epoch, layer.index, weights, dead_now))
        self._dead_weights = dead_weights
        self.epochs.append(epoch)
        self.steps.append(step)
        self.reports.append(report)
        self.activation_samples.setdefault("first", activation_samples)
        self.activation_samples["latest"] = activation_samples
        self.bias_history.append([np.array(bias, dtype=np.float32) for bias in weights.biases])
        self.weights_before_latest, self.latest_weights = self.latest_weights, weights.copy()

    def check_model(self, model: MLP) -> None:
        """Raise a ValueError unless ``model`` takes the features of x.

        Its layers must also pass ``MLP.check_layers``.
        """
        model.check_layers()
        # Only the native monitor scans through here, and it always has an x.
        assert self.x is not None
        if self.x.shape[1] != model.n_features:
            raise ValueError(f"x_scan has {self.x.shape[1]} features but the first layer "
                             f"expects {model.n_features}")
        if self.reports:
            _check_same_widths(_hidden_widths(self.reports[-1]), model.layer_sizes[1:-1])

    def _note_moved_while_dead(self, epoch: int, index: int, weights: HiddenLayerWeights,
                               dead_now) -> dict:
        """Incoming weights of the dead units of one layer, noting those that moved since."""
        columns = {
            int(u): weights.incoming_with_bias(index, int(u)) for u in np.flatnonzero(dead_now)
        }
        if self._dead_weights:
            for unit, before in self._dead_weights[index].items():
                if unit in columns and not np.array_equal(before, columns[unit]):
                    # In float64: weights that blew up overflow a float32 norm.
                    change = float(np.linalg.norm(columns[unit].astype(np.float64) - before))
                    self.moved_while_dead.append((epoch, index, unit, change))
        return columns

    def _activation_sample(self, model, rows: int = 512, values: int = 4000) -> list:
        """Up to `values` pre-activations per hidden layer, from the first `rows` samples.

        Pre-activations, not the ReLU's outputs: those are a spike at 0 that hides how
        far below 0 the silent units are.
        """
        assert self.x is not None  # called from observe, after check_model
        rng = np.random.default_rng(0)
        samples: list[np.ndarray] = []
        # The hidden layers only: the scan, which succeeded, covers no more, and an
        # output layer that overflows must not fail it.
        first_rows = self.x[:rows]
        if not model.hidden_layers:
            return samples
        for _, _, pre_activation, _ in stream_layers(model.hidden_layers, first_rows,
                                                     max(first_rows.shape[0], 1),
                                                     keep_pre=True):
            flat = pre_activation.ravel()
            if flat.size > values:
                flat = rng.choice(flat, values, replace=False)
            samples.append(flat.astype(np.float32))
        return samples

    def centered_if_nonnegative(self) -> np.ndarray | None:
        """X - mean(x) when every feature of x is non-negative, else None.

        Computed once (x is fixed), not once per dead unit. None without x.
        """
        if self.x is None:
            return None
        if not self._centered_known:
            self._centered = self.x - self.x.mean(axis=0) if self.x.min() >= 0 else None
            self._centered_known = True
        return self._centered

    def margins(self, layer: int) -> np.ndarray:
        """Margin (largest pre-activation over x) of every unit of ``layer`` at each scan.

        Shape (n_scans, n_units). A unit is dead exactly when its margin is <= 0.
        """
        layer = self._hidden_layer(layer)
        return np.array([r.layers[layer].max_pre_activation for r in self.reports])

    def _hidden_layer(self, layer) -> int:
        """``layer`` as the index of a hidden layer of the scans, or a ValueError saying why not."""
        if not self.reports:
            integer(layer, "layer")  # nothing scanned yet: any layer's answer is empty
            return 0
        return index_into(layer, len(self.reports[-1].layers), "layer",
                          "hidden layers in the scans")

    def at_risk(self, layer: int, window: int = 2, fraction: float = 0.25) -> np.ndarray:
        """Alive units of ``layer`` whose margin is heading to zero.

        The rule: alive at the last scan (margin > 0); the margin fell at each
        of the last ``window`` scans; and it is now below ``fraction`` of the
        largest margin the unit has had. Empty until ``window + 1`` scans exist.
        """
        window = positive_int(window, "window")
        fraction = finite_float(fraction, "fraction", low=0.0)
        history = self.margins(layer)
        if history.shape[0] < window + 1:
            return np.array([], dtype=np.int64)
        last = history[-1]
        falling = np.all(np.diff(history[-(window + 1):], axis=0) < 0, axis=0)
        low = last < fraction * history.max(axis=0)
        return np.flatnonzero((last > 0) & falling & low)

    def dead_unit_labels(self, scan_index: int = -1) -> list[dict[int, str]]:
        """Per hidden layer, ``{unit: "permanent" | "tentative"}`` for the dead units.

        Permanent: first hidden layer, on fixed data (zero gradient, fixed
        inputs: it cannot fire again). Tentative: deeper, where the inputs can
        change as the layers below train. With leaky ReLU every such unit is
        ``"inactive"``: it still gets slope x gradient and can recover.
        """
        report = self.reports[index_into(scan_index, len(self.reports), "scan_index", "scans")]
        if self.leaky:
            return [{int(u): "inactive" for u in layer.dead_units} for layer in report.layers]
        return [{int(u): "permanent" if layer.index == 0 else "tentative"
                 for u in layer.dead_units} for layer in report.layers]

    @property
    def dead_counts(self) -> np.ndarray:
        """Dead units per scan and hidden layer, shape (n_scans, n_hidden_layers)."""
        n_layers = len(self.reports[0].layers) if self.reports else 0
        return np.array([[layer.n_dead for layer in r.layers] for r in self.reports],
                        dtype=np.int64).reshape(len(self.reports), n_layers)

    def ledger(self) -> list[LayerLedger]:
        """Per hidden layer, the deaths and revivals that account for the latest dead count.

        ``record`` books every change between two consecutive scans, so for every
        layer ``dead_at_first_scan + died - revived == dead_now`` holds exactly.
        The first scan's deaths are told apart by position (they are booked
        first), not by epoch: a first scan after training began, or two scans
        given the same epoch, would make "deaths at epoch 0" miscount them.
        """
        if not self.reports:
            return []
        first = self.reports[0]
        booked_at_first = sum(layer.n_dead for layer in first.layers)
        ledgers = []
        for layer, latest in zip(first.layers, self.reports[-1].layers):
            later = [unit for _, k, unit in self.deaths[booked_at_first:] if k == layer.index]
            revived = [unit for _, k, unit in self.revivals if k == layer.index]
            ledgers.append(LayerLedger(
                layer.index, layer.n_dead, len(later), len(revived), latest.n_dead,
                len({u for u in later if later.count(u) > 1 or u in layer.dead_units})
                if revived else 0))
        return ledgers

    def died_in_latest_scan(self) -> dict[int, list[int]]:
        """``{layer: [units]}`` of the units the latest scan found newly dead."""
        died: dict[int, list[int]] = {}
        for _, layer, unit in self.deaths[self._latest_deaths_start:]:
            died.setdefault(layer, []).append(unit)
        return died

    def died_in(self, epoch: int) -> dict[int, list[int]]:
        """``{layer: [units]}`` of the units that died in ``epoch`` (0: at initialization)."""
        epoch = nonnegative_int(epoch, "epoch")
        died: dict[int, list[int]] = {}
        for e, layer, unit in self.deaths:
            if e == epoch:
                died.setdefault(layer, []).append(unit)
        return died

    def to_dict(self) -> dict:
        """Return the ledger as a JSON-ready dict."""
        return {
            "epochs": list(self.epochs),
            "steps": list(self.steps),
            "dead_counts": self.dead_counts.tolist(),
            "deaths": [list(d) for d in self.deaths],
            "revivals": [list(r) for r in self.revivals],
            # A change that overflowed (weights gone to Inf or NaN) is null: strict JSON.
            "moved_while_dead": [[epoch, layer, unit, change if np.isfinite(change) else None]
                                 for epoch, layer, unit, change in self.moved_while_dead],
            "activation": self.activation,
            "dead_unit_labels": ([{str(k): v for k, v in labels.items()}
                                  for labels in self.dead_unit_labels()]
                                 if self.reports else []),
            "scans": [r.to_dict() for r in self.reports],
        }


def _weights_settings(weights: HiddenLayerWeights | None) -> dict | None:
    """Return the JSON part of kept weights (their arrays go beside it), or None."""
    if weights is None:
        return None
    return {"chained": [bool(c) for c in weights.chained],
            "rectifiers": None if weights.rectifiers is None
            else [r.to_dict() for r in weights.rectifiers]}


def _hidden_widths(report: ScanReport) -> list[int]:
    return [layer.n_units for layer in report.layers]


def _check_same_widths(widths_before: list[int], widths_now: list[int]) -> None:
    """Raise a ValueError unless the hidden layers' widths are those of the scans before.

    Deaths and revivals compare each unit with itself in the scan before.
    """
    if widths_now != widths_before:
        raise ValueError(
            f"the model's hidden layers changed since the first scan (widths {widths_before}, "
            f"now {widths_now}); a monitor follows one set of units: start a new monitor for "
            f"the changed model")
