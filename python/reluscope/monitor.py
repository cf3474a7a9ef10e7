"""A training callback that scans for dead units at initialization and after every epoch."""

from __future__ import annotations

import numpy as np

from ._validation import as_features, positive_int
from .callbacks import Callback
from .scan import SCHEMA_VERSION, ScanReport, scan


class DeadNeuronMonitor(Callback):
    """Exact dead-unit scans of ``x`` at the start of training and after each epoch.

    A unit is dead on ``x`` when its pre-activation is <= 0 for every sample of
    ``x`` (see ``reluscope.scan``). The scan runs at fixed weights between
    epochs, so "died in epoch e" means: alive in the scan after epoch e - 1 (or
    at initialization, epoch 0), dead in the scan after epoch e.

    Attributes
    ----------
    epochs : list of int
        The epoch of each scan; 0 is the model before training.
    reports : list of ScanReport
    deaths : list of (epoch, layer, unit)
        Alive -> dead transitions; epoch 0 lists units dead at initialization.
    revivals : list of (epoch, layer, unit)
        Dead -> alive transitions (possible for units past the first hidden
        layer, whose inputs change as the layers below train).
    silent : list of (epoch, list of ndarray)
        Per epoch, the units of each hidden layer that were *silent during the
        epoch*: zero firings on the epoch's training batches, counted for free in
        the training forward pass (``Trainer(track_firing=True)``). Unlike the
        exact scan, the weights changed while these counts were taken.
    chain_rule : list of (epoch, list of dict)
        With ``Trainer(track_gradients=True)``: per epoch and hidden layer, the
        units silent all epoch and the largest gradient magnitude
        (sum_k |dL/dw_kj| + |dL/db_j| over the epoch) among them, which is
        exactly 0.0 for ReLU, against the smallest among the units that fired.
        The appendix of the problem statement, measured: dL/dw_jk =
        dL/dx_k * f'(s_j) * x_j, and f'(s_j) = 0 whenever the unit is silent.
    moved_while_dead : list of (epoch, layer, unit, weight_change_norm)
        Units dead at two consecutive scans whose incoming weights still moved
        between them: a dead unit gets zero gradient, but momentum and weight
        decay can keep moving its weights for a while.

    certificates : list of dict
        One per death seen by a scan: the layer and unit, the epoch of the scan
        that confirmed it, the last training step in which the unit fired and
        the update made right after it (learning rate, ||dw_j||, db_j,
        ||dw_j|| / ||w_j||, next to the layer's medians of the same at that
        step; from ``Trainer(track_deaths=True)``), and a cause:

        1. ``born dead``: dead at the scan before training;
        2. ``inputs not centered``: a first-layer unit, on data whose features
           are all non-negative, that fires on some sample once the data are
           centered (checked by scanning x - mean(x));
        3. ``large update``: the killing update's relative size
           ||dw_j|| / ||w_j|| is more than ``large_update_factor`` (10) times the
           layer's median at that step; or more than ``large_relative_update``
           (0.5: the step moved the unit's weights by half their norm); or the
           layer's median itself is more than a fifth of that (0.1): a step too
           large for the whole layer at once, which also kills units whose own
           change was modest by moving their inputs;
        4. ``starved``: at this scan, every unit of the layer below that feeds it
           (nonzero weight) is dead or has zero mean |activation|, or at least
           half of the layer below is dead;
        5. ``bias drift``: its bias fell at each of the last two scans;
        6. ``unclassified`` otherwise.

        The first rule that matches is the cause.

    Every dead unit is labelled (``dead_unit_labels``) *permanent* when it is in
    the first hidden layer (its inputs are the fixed data and its weights get
    no gradient, so it can never fire again on this data) or *tentative* deeper
    (it can revive when the layers below it change).
    """

    def __init__(self, x, chunk_size: int = 8192, large_update_factor: float = 10.0,
                 large_relative_update: float = 0.5):
        self.x = as_features(x, "x_scan")
        self.chunk_size = positive_int(chunk_size, "chunk_size")
        self.epochs: list[int] = []
        self.reports: list[ScanReport] = []
        self.deaths: list[tuple[int, int, int]] = []
        self.revivals: list[tuple[int, int, int]] = []
        self.silent: list[tuple[int, list]] = []
        self.chain_rule: list[tuple[int, list]] = []
        self.moved_while_dead: list[tuple[int, int, int, float]] = []
        self.certificates: list[dict] = []
        self.large_update_factor = float(large_update_factor)
        self.large_relative_update = float(large_relative_update)
        self._biases: list[list[np.ndarray]] = []
        self.steps: list[int] = []
        # Samples of each hidden layer's activations at the first and latest scan,
        # for the distribution plots of the HTML report.
        self.activation_samples: dict[str, list[np.ndarray]] = {}
        self._dead_weights: list[dict] = []
        # Leaky ReLU units that fire on no sample still get gradient: the reports
        # call them inactive, never permanently dead.
        self.leaky = False
        self.activation = "relu"

    def on_train_begin(self, trainer) -> None:
        if self.x.shape[1] != trainer.model.n_features:
            raise ValueError(
                f"x_scan has {self.x.shape[1]} features but the first layer expects "
                f"{trainer.model.n_features}"
            )
        self.activation = trainer.model.activation.name
        self.leaky = self.activation == "leaky_relu"
        if not self.reports:
            self._record(trainer.epochs_done, trainer.model, trainer)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if trainer.track_firing:
            self.silent.append((epoch, [np.flatnonzero(c == 0) for c in trainer.firing_counts]))
            if trainer.track_gradients:
                self.chain_rule.append((epoch, [
                    _gradient_evidence(counts, magnitude) for counts, magnitude in
                    zip(trainer.firing_counts, trainer.gradient_magnitude)]))
        self._record(epoch, trainer.model, trainer)

    def _record(self, epoch: int, model, trainer=None) -> None:
        report = scan(model, self.x, self.chunk_size)
        previous = self.reports[-1] if self.reports else None
        dead_weights = []
        for layer in report.layers:
            dead_now = layer.firing_counts == 0
            dead_before = (previous.layers[layer.index].firing_counts == 0 if previous
                           else np.zeros_like(dead_now))
            self.deaths += [(epoch, layer.index, int(u))
                            for u in np.flatnonzero(dead_now & ~dead_before)]
            self.revivals += [(epoch, layer.index, int(u))
                              for u in np.flatnonzero(dead_before & ~dead_now)]
            # Incoming weights of the dead units, to see whether they still move.
            dense = model.layers[layer.index]
            columns = {int(u): np.append(dense.weight[:, u], dense.bias[u])
                       for u in np.flatnonzero(dead_now)}
            if self._dead_weights:
                for unit, before in self._dead_weights[layer.index].items():
                    if unit in columns and not np.array_equal(before, columns[unit]):
                        change = float(np.linalg.norm(columns[unit] - before))
                        self.moved_while_dead.append((epoch, layer.index, unit, change))
            dead_weights.append(columns)
        self._dead_weights = dead_weights
        self.epochs.append(epoch)
        self.steps.append(trainer.steps_done if trainer is not None else 0)
        self.reports.append(report)
        samples = self._activation_sample(model)
        self.activation_samples.setdefault("first", samples)
        self.activation_samples["latest"] = samples
        self._biases.append([layer.bias.copy() for layer in model.hidden_layers])
        first_scan = len(self.reports) == 1
        for death_epoch, layer, unit in self.deaths:
            if death_epoch == epoch:
                self.certificates.append(
                    self._certificate(epoch, layer, unit, model, trainer, first_scan))

    def _certificate(self, epoch, layer, unit, model, trainer, first_scan) -> dict:
        """The death certificate of one unit that the latest scan found dead."""
        certificate = {"layer": layer, "unit": unit, "confirmed_by_scan_after_epoch": epoch,
                       "last_fired_step": None}
        stats = getattr(trainer, "unit_stats", None) if trainer is not None else None
        record = stats[layer].last_fired(unit) if stats and layer < len(stats) else None
        if record is not None:
            certificate.update(record)
            certificate["last_fired_step"] = int(certificate.pop("step"))
        certificate["cause"] = self._cause(certificate, layer, unit, model, first_scan)
        return certificate

    def _cause(self, certificate, layer, unit, model, first_scan) -> str:
        if first_scan:
            return "born dead"
        centered = self._centered_if_nonnegative()
        if layer == 0 and centered is not None:
            dense = model.layers[0]
            if np.any(centered @ dense.weight[:, unit] + dense.bias[unit] > 0):
                return "inputs not centered"
        relative, median = (certificate.get("relative_update"),
                            certificate.get("layer_median_relative_update"))
        if relative is not None and median is not None and (
                relative > self.large_relative_update
                or relative > self.large_update_factor * median
                or median > self.large_relative_update / 5):
            return "large update"
        if layer > 0 and self._starved(layer, unit, model):
            return "starved"
        if len(self._biases) >= 3:
            history = [biases[layer][unit] for biases in self._biases[-3:]]
            if history[0] > history[1] > history[2]:
                return "bias drift"
        return "unclassified"

    def _activation_sample(self, model, rows: int = 512, values: int = 4000) -> list:
        """Up to `values` activations per hidden layer, from the first `rows` samples."""
        rng = np.random.default_rng(0)
        samples = []
        for _, out in model._forward_validated(self.x[:rows])[:-1]:
            flat = out.ravel()
            if flat.size > values:
                flat = rng.choice(flat, values, replace=False)
            samples.append(flat.astype(np.float32))
        return samples

    def to_html(self, path) -> None:
        """Write a self-contained HTML report (plots inline; needs the ``plot`` extra).

        Dead fraction per layer against the training step, each layer's per-unit
        firing rate over the scans, activation distributions at the first and
        latest scan, the per-layer table and the death certificates (sortable).
        """
        from .html_report import write_monitor_report

        write_monitor_report(self, path)

    def _centered_if_nonnegative(self):
        """x - mean(x) when every feature of x is non-negative, else None; computed once
        (x is fixed), not once per dead unit."""
        if not hasattr(self, "_centered"):
            self._centered = self.x - self.x.mean(axis=0) if self.x.min() >= 0 else None
        return self._centered

    def _starved(self, layer: int, unit: int, model) -> bool:
        below = self.reports[-1].layers[layer - 1]
        if below.dead_fraction >= 0.5:
            return True
        feeding = np.flatnonzero(model.layers[layer].weight[:, unit] != 0)
        silent = below.firing_counts[feeding] == 0
        if below.mean_abs_activation is not None:
            silent |= below.mean_abs_activation[feeding] == 0
        return bool(feeding.size and silent.all())

    def margins(self, layer: int) -> np.ndarray:
        """Margin (largest pre-activation over x) of every unit of ``layer`` at each scan.

        Shape (n_scans, n_units). A unit is dead exactly when its margin is <= 0.
        """
        return np.array([r.layers[layer].max_pre_activation for r in self.reports])

    def at_risk(self, layer: int, window: int = 2, fraction: float = 0.25) -> np.ndarray:
        """Alive units of ``layer`` whose margin is heading to zero.

        The rule: alive at the last scan (margin > 0); the margin fell at each
        of the last ``window`` scans; and it is now below ``fraction`` of the
        largest margin the unit has had. Empty until ``window + 1`` scans exist.
        """
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
        report = self.reports[scan_index]
        if self.leaky:
            return [{int(u): "inactive" for u in layer.dead_units} for layer in report.layers]
        return [{int(u): "permanent" if layer.index == 0 else "tentative"
                 for u in layer.dead_units} for layer in report.layers]

    @property
    def dead_counts(self) -> np.ndarray:
        """Dead units per scan and hidden layer, shape (n_scans, n_hidden_layers)."""
        return np.array([[layer.n_dead for layer in r.layers] for r in self.reports],
                        dtype=np.int64).reshape(len(self.reports), -1)

    def died_in(self, epoch: int) -> dict[int, list[int]]:
        """``{layer: [units]}`` of the units that died in ``epoch`` (0: at initialization)."""
        died: dict[int, list[int]] = {}
        for e, layer, unit in self.deaths:
            if e == epoch:
                died.setdefault(layer, []).append(unit)
        return died

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "epochs": list(self.epochs),
            "steps": list(self.steps),
            "dead_counts": self.dead_counts.tolist(),
            "deaths": [list(d) for d in self.deaths],
            "revivals": [list(r) for r in self.revivals],
            "silent_during_epoch": [{"epoch": e, "units": [u.tolist() for u in units]}
                                    for e, units in self.silent],
            "moved_while_dead": [list(m) for m in self.moved_while_dead],
            "chain_rule": [{"epoch": e, "layers": layers} for e, layers in self.chain_rule],
            "activation": self.activation,
            "certificates": list(self.certificates),
            "dead_unit_labels": ([{str(k): v for k, v in labels.items()}
                                  for labels in self.dead_unit_labels()]
                                 if self.reports else []),
            "scans": [r.to_dict() for r in self.reports],
        }

    def layer_table(self) -> str:
        """Per hidden layer at the latest scan: dead, dormant, at risk, silent, revived.

        Each column names its definition: dead and dormant from the exact scan of
        x; at risk from the margin history; silent from the training batches of
        the last epoch; revived counts the dead -> alive transitions so far.
        """
        report = self.reports[-1]
        silent = self.silent[-1][1] if self.silent else None
        lines = [
            f"Hidden layers at the scan after epoch {self.epochs[-1]} ({self.x.shape[0]} samples)",
            f"{'layer':>5}  {'units':>5}  {'dead':>5}  {'dormant':>7}  {'at risk':>7}  "
            f"{'silent':>6}  {'revived':>7}",
        ]
        for layer in report.layers:
            dormant = ("-" if layer.mean_abs_activation is None
                       else str(len(layer.dormant_units())))
            quiet = "-" if silent is None else str(len(silent[layer.index]))
            revived = sum(1 for _, k, _ in self.revivals if k == layer.index)
            lines.append(
                f"{layer.index:>5}  {layer.n_units:>5}  {layer.n_dead:>5}  {dormant:>7}  "
                f"{len(self.at_risk(layer.index)):>7}  {quiet:>6}  {revived:>7}")
        lines.append("dead: fires on no sample of x; dormant: ReDo score <= 0.025; at risk: "
                     "margin falling toward 0; silent: no firing on the last epoch's batches")
        return "\n".join(lines)

    def summary(self) -> str:
        """The per-layer table, dead units at each scan, when they died, and why."""
        if not self.reports:
            return "No scans yet."
        n_layers = self.dead_counts.shape[1]
        header = "epoch  " + "  ".join(f"layer {i}" for i in range(n_layers))
        lines = [self.layer_table(), "",
                 f"Dead units on {self.x.shape[0]} samples, per hidden layer", header]
        for epoch, counts in zip(self.epochs, self.dead_counts):
            lines.append(f"{epoch:>5}  " + "  ".join(f"{c:>7}" for c in counts))
        for epoch in sorted({e for e, _, _ in self.deaths}):
            per_layer = ", ".join(f"layer {layer}: {len(units)}"
                                  for layer, units in sorted(self.died_in(epoch).items()))
            when = "at initialization" if epoch == 0 else f"in epoch {epoch}"
            lines.append(f"died {when}: {per_layer}")
        if self.revivals:
            lines.append(f"revived: {len(self.revivals)} unit(s)")
        labels = self.dead_unit_labels()
        permanent = sum(v == "permanent" for layer in labels for v in layer.values())
        tentative = sum(v == "tentative" for layer in labels for v in layer.values())
        if permanent or tentative:
            lines.append(f"dead now: {permanent} permanent (first layer, fixed inputs), "
                         f"{tentative} tentative (deeper; can revive)")
        inactive = sum(v == "inactive" for layer in labels for v in layer.values())
        if inactive:
            lines.append(f"not firing now: {inactive} unit(s); leaky ReLU, so they still get "
                         "slope x gradient and can recover: inactive, not dead")
        for epoch, layers in self.chain_rule[-1:]:
            for index, evidence in enumerate(layers):
                if evidence["silent_units"]:
                    lines.append(
                        f"chain rule, epoch {epoch}, layer {index}: {evidence['silent_units']} "
                        f"unit(s) silent all epoch received total gradient "
                        f"{evidence['max_silent_gradient']!r}; firing units at least "
                        f"{evidence['min_firing_gradient']!r}"
                        + (" (leaky ReLU: nonzero, through the negative slope)"
                           if self.leaky else ""))
        trained_deaths = [c for c in self.certificates if c["cause"] != "born dead"]
        if trained_deaths:
            causes = {}
            for c in trained_deaths:
                causes[c["cause"]] = causes.get(c["cause"], 0) + 1
            lines.append("death certificates (cause: units): " + ", ".join(
                f"{cause}: {count}" for cause, count in sorted(causes.items())))
            lines.append(f"  {'layer':>5} {'unit':>5} {'last fired':>10} {'lr':>8} "
                         f"{'|dw|/|w|':>9} {'median':>9} {'db':>9}  cause")
            for c in trained_deaths[:10]:
                step = "-" if c["last_fired_step"] is None else c["last_fired_step"]
                lines.append(
                    f"  {c['layer']:>5} {c['unit']:>5} {step!s:>10} {c.get('lr', float('nan')):>8.3g} "
                    f"{c.get('relative_update', float('nan')):>9.3g} "
                    f"{c.get('layer_median_relative_update', float('nan')):>9.3g} "
                    f"{c.get('bias_update', float('nan')):>9.3g}  {c['cause']}")
            if len(trained_deaths) > 10:
                lines.append(f"  ... {len(trained_deaths) - 10} more in to_dict()['certificates']")
        if self.moved_while_dead:
            why = ("leaky ReLU: gradient through the negative slope, and momentum or weight "
                   "decay" if self.leaky else "momentum or weight decay, not gradient")
            lines.append(f"{len(self.moved_while_dead)} time(s) a dead unit's weights still "
                         f"moved between scans ({why})")
        return "\n".join(lines)


def _gradient_evidence(firing_counts: np.ndarray, magnitude: np.ndarray) -> dict:
    """Gradient received by the units silent all epoch against those that fired."""
    silent = firing_counts == 0
    return {
        "silent_units": int(silent.sum()),
        "max_silent_gradient": float(magnitude[silent].max()) if silent.any() else None,
        "min_firing_gradient": float(magnitude[~silent].min()) if (~silent).any() else None,
        "silent_gradient_exactly_zero": bool(np.all(magnitude[silent] == 0.0)),
    }
