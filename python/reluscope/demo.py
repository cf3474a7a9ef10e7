"""``reluscope demo``: the same network trained at a sensible and at a killing learning rate."""

from __future__ import annotations

from .datasets import load_digits
from .errors import TrainingDiverged
from .model import MLP
from .monitor import DeadUnitMonitor
from .monitor_text import ledger_lines
from .optim import SGD
from .trainer import Trainer

LAYER_SIZES = [64, 128, 128, 128, 10]
SEED = 0
EPOCHS = 20
SENSIBLE_LR = 0.05
LARGE_LR = 0.2


def train_once(lr: float, data, epochs: int = EPOCHS) -> dict:
    """Train the demo network once at ``lr``; return what the demo prints."""
    x_train, y_train, x_test, y_test = data
    model = MLP(LAYER_SIZES, activation="relu", init="he_normal", seed=SEED)
    trainer = Trainer(model, loss="cross_entropy", optimizer=SGD(lr=lr, momentum=0.9),
                      batch_size=32, seed=SEED)
    monitor = DeadUnitMonitor(x_train)
    diverged = None
    try:
        trainer.fit(x_train, y_train, epochs=epochs, callbacks=[monitor])
    except TrainingDiverged as error:
        diverged = str(error)
    return {
        "lr": lr,
        "test_accuracy": trainer.evaluate(x_test, y_test)["accuracy"],
        "monitor": monitor,
        "diverged": diverged,
    }


def format_run(title: str, run: dict) -> str:
    """Format one demo run as text: accuracy, dead units per layer, and when they died."""
    monitor = run["monitor"]
    counts = monitor.dead_counts
    sizes = [layer.n_units for layer in monitor.reports[0].layers]
    lines = [f"== {title}: SGD lr={run['lr']}, momentum 0.9, {EPOCHS} epochs =="]
    if run["diverged"]:
        lines.append(f"training diverged: {run['diverged']}")
    lines.append(f"test accuracy: {100 * run['test_accuracy']:.1f}%")
    lines.append("dead units per hidden layer (exact scan of the training set):")
    lines.append("  at init:        " + "  ".join(f"{c:>3}/{n}" for c, n in zip(counts[0], sizes)))
    lines.append("  after training: " + "  ".join(f"{c:>3}/{n}" for c, n in zip(counts[-1], sizes)))
    lines.append("  deaths during training per hidden layer, as epoch:deaths "
                 "(2:3 = 3 units alive after epoch 1 were dead after epoch 2):")
    for layer in range(len(sizes)):
        epochs = [e for e, k, _ in monitor.deaths if k == layer and e > 0]
        text = " ".join(f"{e}:{epochs.count(e)}" for e in sorted(set(epochs))) or "none"
        lines.append(f"    layer {layer}: {text}")
    lines.extend("  " + line for line in ledger_lines(monitor.history))
    lines.append("")
    lines.append(monitor.layer_table())
    lines.extend(cause_lines(monitor.certificates))
    return "\n".join(lines)


def cause_lines(certificates) -> list[str]:
    """How many deaths during training each cause explains, with one example certificate."""
    trained = [c for c in certificates if c.cause != "born dead"]
    if not trained:
        return []
    by_cause: dict[str, list] = {}
    for certificate in trained:
        by_cause.setdefault(certificate.cause_text, []).append(certificate)
    lines = [f"causes of the {len(trained)} deaths during training (death certificates; "
             "own / below = share of\n  the fall of the unit's margin caused by its own weights "
             "and bias / by the layer below):"]
    for cause, group in sorted(by_cause.items(), key=lambda item: -len(item[1])):
        example = group[0]
        share = ("" if example.attribution is None else
                 f", own {100 * example.attribution.own_share:.0f}%"
                 f" below {100 * example.attribution.upstream_share:.0f}%")
        step = ("" if example.last_fired_step is None else
                f", last fired at step {example.last_fired_step}, |dw|/|w| "
                f"{example.relative_update:.3g} (layer median "
                f"{example.layer_median_relative_update:.3g})")
        lines.append(f"  {cause:<16} {len(group):>4}   e.g. layer {example.layer} unit "
                     f"{example.unit}, dead after epoch {example.confirmed_by_scan_after_epoch}"
                     f"{share}")
        if step:
            lines.append(f"  {'':<16} {'':>4}   {step[2:]}")
    conditions: dict[str, int] = {}
    for certificate in trained:
        for condition in certificate.conditions:
            conditions[condition] = conditions.get(condition, 0) + 1
    if conditions:
        lines.append("  contributing conditions (deaths): " + ", ".join(
            f"{name} {count}" for name, count in sorted(conditions.items(),
                                                         key=lambda item: -item[1])))
    return lines


def main(report: str | None = None) -> None:
    """Print both runs; with ``report``, also write their HTML report there."""
    data = load_digits()
    print(f"digits: {len(data[1])} training and {len(data[3])} test samples; "
          f"network {'-'.join(map(str, LAYER_SIZES))}, He-normal init, seed {SEED}")
    print("A unit is dead when its pre-activation is <= 0 on every training sample.\n")
    sensible = train_once(SENSIBLE_LR, data)
    print(format_run("sensible learning rate", sensible))
    print()
    large = train_once(LARGE_LR, data)
    print(format_run("large learning rate", large))
    if report is not None:
        from .html_report import write_report

        write_report([(f"Sensible learning rate (SGD lr={SENSIBLE_LR})", sensible["monitor"]),
                      (f"Large learning rate (SGD lr={LARGE_LR})", large["monitor"])], report)
        print(f"\nHTML report written to {report}")
