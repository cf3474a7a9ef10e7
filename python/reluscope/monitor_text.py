"""Plain-text rendering of a DeadUnitMonitor: the per-layer table and the summary."""

from __future__ import annotations

LEGEND = ("units: units in the layer; dead: fires on no sample of x; dormant: ReDo score "
          "<= 0.025;\nat risk: alive, margin falling toward 0; silent: no firing on the last "
          "epoch's batches;\nrevived: dead -> alive changes so far (a unit that revived twice "
          "counts twice); -: not measured")


def layer_table(monitor) -> str:
    """Per hidden layer at the latest scan: dead, dormant, at risk, silent, revived."""
    history = monitor.history
    if not history.reports:
        return "No scans yet."
    report = history.reports[-1]
    silent = monitor.silent[-1][1] if monitor.silent else None
    # Layers whose training firing was not seen (the PyTorch monitor's `unobserved`).
    unobserved = getattr(monitor, "unobserved", None)
    unknown = set(unobserved[-1][1]) if unobserved else set()
    width = max([5] + [len(layer.label) for layer in report.layers])
    lines = [
        f"Hidden layers at the scan after epoch {history.epochs[-1]} "
        f"({history.n_samples} samples)",
        f"{'layer':>{width}}  {'units':>5}  {'dead':>5}  {'dormant':>7}  {'at risk':>7}  "
        f"{'silent':>6}  {'revived':>7}",
    ]
    for layer in report.layers:
        dormant = ("-" if layer.mean_abs_activation is None
                   else str(len(layer.dormant_units())))
        quiet = ("-" if silent is None or layer.index in unknown
                 else str(len(silent[layer.index])))
        revived = sum(1 for _, k, _ in history.revivals if k == layer.index)
        lines.append(
            f"{layer.label:>{width}}  {layer.n_units:>5}  {layer.n_dead:>5}  {dormant:>7}  "
            f"{len(history.at_risk(layer.index)):>7}  {quiet:>6}  {revived:>7}")
    lines.append(LEGEND)
    return "\n".join(lines)


def summary(monitor) -> str:
    """Return the per-layer table, dead units at each scan, when they died, and why."""
    history = monitor.history
    if not history.reports:
        return "No scans yet."
    lines = [layer_table(monitor), ""] + _dead_counts_lines(history)
    lines += ledger_lines(history)
    lines += _label_lines(history)
    lines += _silent_gradient_lines(monitor)
    lines += _certificate_lines(monitor.certificates,
                                [layer.label for layer in history.reports[-1].layers])
    if history.moved_while_dead:
        why = ("leaky ReLU: gradient through the negative slope, and momentum or weight "
               "decay" if history.leaky else "momentum or weight decay, not gradient")
        lines.append(f"{len(history.moved_while_dead)} time(s) a dead unit's weights still "
                     f"moved between scans ({why})")
    return "\n".join(lines)


def _dead_counts_lines(history) -> list[str]:
    names = [f"layer {layer.label}" for layer in history.reports[-1].layers]
    header = "epoch  " + "  ".join(names)
    lines = [f"Dead units on {history.n_samples} samples, per hidden layer, at the scan after "
             "each epoch (0: before training)", header]
    for epoch, counts in zip(history.epochs, history.dead_counts):
        lines.append(f"{epoch:>5}  " + "  ".join(f"{c:>{len(name)}}"
                                                 for c, name in zip(counts, names)))
    for epoch in sorted({e for e, _, _ in history.deaths}):
        layers = history.reports[-1].layers
        per_layer = ", ".join(f"layer {layers[layer].label}: {len(units)}"
                              for layer, units in sorted(history.died_in(epoch).items()))
        when = "at initialization" if epoch == 0 else f"in epoch {epoch}"
        lines.append(f"died {when}: {per_layer}")
    if history.revivals:
        lines.append(f"revived (dead -> alive): {len(history.revivals)} time(s)")
    return lines


def ledger_lines(history) -> list[str]:
    """Per hidden layer: dead at the first scan + died - revived = dead at the latest scan.

    The counts are changes between consecutive scans, so a unit that died,
    revived and died again counts twice in "died"; the line says how many did.
    """
    ledgers = history.ledger()
    if not ledgers:
        return []
    labels = [layer.label for layer in history.reports[-1].layers]
    first = ("at init" if history.epochs[0] == 0
             else f"at the first scan (epoch {history.epochs[0]})")
    lines = [f"Deaths and revivals per hidden layer, between the scans "
             f"(dead {first} + died - revived = dead now):"]
    for ledger in ledgers:
        line = (f"  layer {labels[ledger.layer]}: {ledger.dead_at_first_scan} dead {first} "
                f"+ {ledger.died} died - {ledger.revived} revived = {ledger.dead_now} dead now")
        if ledger.died_again:
            line += f" ({ledger.died_again} unit(s) died again after reviving)"
        if not ledger.adds_up:  # never, as record() books every change; said if it happens
            line += " (does NOT add up: the book is incomplete)"
        lines.append(line)
    return lines


def _label_lines(history) -> list[str]:
    labels = history.dead_unit_labels()
    lines = []
    permanent = sum(v == "permanent" for layer in labels for v in layer.values())
    tentative = sum(v == "tentative" for layer in labels for v in layer.values())
    if permanent or tentative:
        lines.append(f"dead now: {permanent} permanent (first layer, fixed inputs), "
                     f"{tentative} tentative (deeper; can revive)")
    inactive = sum(v == "inactive" for layer in labels for v in layer.values())
    if inactive:
        lines.append(f"not firing now: {inactive} unit(s); leaky ReLU, so they still get "
                     "slope x gradient and can recover: inactive, not dead")
    return lines


def _silent_gradient_lines(monitor) -> list[str]:
    lines = []
    for epoch, layers in monitor.silent_unit_gradients[-1:]:
        for index, evidence in enumerate(layers):
            if evidence["silent_units"]:
                lines.append(
                    f"chain rule, epoch {epoch}, layer {index}: {evidence['silent_units']} "
                    f"unit(s) silent all epoch received total gradient "
                    f"{evidence['max_silent_gradient']!r}; firing units at least "
                    f"{evidence['min_firing_gradient']!r}"
                    + (" (leaky ReLU: nonzero, through the negative slope)"
                       if monitor.history.leaky else ""))
    return lines


def _certificate_lines(certificates, layer_labels) -> list[str]:
    """Return the causes, then a table of the first deaths; layers named as in the tables above."""
    trained_deaths = [c for c in certificates if c.cause != "born dead"]
    if not trained_deaths:
        return []
    causes: dict[str, int] = {}
    for c in trained_deaths:
        causes[c.cause_text] = causes.get(c.cause_text, 0) + 1
    lines = ["Certificate columns: last fired = the unit's last training step with a firing; "
             "at that step, lr = learning rate,\n  |dw|/|w| = its update / its weight norm, "
             "median = the layer's median |dw|/|w|, db = its bias update;\n  own, below = "
             "shares of its margin's fall between the scans caused by its own weights and "
             "bias,\n  and by the layer below; conditions: what contributed; -: not tracked",
             "death certificates (cause: units): " + ", ".join(
        f"{cause}: {count}" for cause, count in sorted(causes.items())),
        f"  {'layer':>5} {'unit':>5} {'last fired':>10} {'lr':>8} "
        f"{'|dw|/|w|':>9} {'median':>9} {'db':>9} {'own':>5} {'below':>5}  cause"]
    for c in trained_deaths[:10]:
        step = "-" if c.last_fired_step is None else c.last_fired_step
        own, below = ((None, None) if c.attribution is None
                      else (c.attribution.own_share, c.attribution.upstream_share))
        conditions = f"; {', '.join(c.conditions)}" if c.conditions else ""
        lines.append(
            f"  {layer_labels[c.layer]:>5} {c.unit:>5} {step!s:>10} {_number(c.lr):>8} "
            f"{_number(c.relative_update):>9} "
            f"{_number(c.layer_median_relative_update):>9} "
            f"{_number(c.bias_update):>9} {_share(own):>5} {_share(below):>5}  "
            f"{c.cause_text}{conditions}")
    unexplained = [c for c in trained_deaths if c.note]
    if unexplained:
        lines.append(f"  {len(unexplained)} death(s) unclassified: {unexplained[0].note}")
    if len(trained_deaths) > 10:
        lines.append(f"  ... {len(trained_deaths) - 10} more in to_dict()['certificates']")
    return lines


def _share(value) -> str:
    """Return a share as a whole percentage; "-" when there is none."""
    return "-" if value is None else f"{100 * value:.0f}%"


def _number(value) -> str:
    """Return a certificate's number in 3 significant digits; "-" when not tracked (None)."""
    return "-" if value is None else f"{value:.3g}"
