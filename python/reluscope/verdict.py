"""The verdict on one monitored run, in a few sentences.

How many units are dead now in each hidden layer, what killed most of those
that died in training, and what to do.

Data and plain text only; ``html_report`` renders it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .remedy_advice import Remedy, current_cause, remedy_for


@dataclass(frozen=True)
class LayerDeadCount:
    """Dead units of one hidden layer at the latest scan, out of its width."""

    label: str
    dead: int
    width: int


@dataclass(frozen=True)
class Verdict:
    """What a reader needs first about one run.

    ``causes``: (cause, deaths) of the deaths during training (every certificate but
    the born-dead ones), most frequent first, ties by name; causes under a former
    name are counted under the current one. ``born_dead``: units dead at the first
    scan, before training changed anything.
    """

    title: str
    epoch: int
    dead_now: tuple[LayerDeadCount, ...]
    causes: tuple[tuple[str, int], ...]
    born_dead: int
    leaky: bool = False

    @property
    def deaths_in_training(self) -> int:
        """Deaths during training, all causes."""
        return sum(count for _, count in self.causes)

    @property
    def main_cause(self) -> str | None:
        """The most frequent cause of the deaths during training; None if none died."""
        return self.causes[0][0] if self.causes else None

    @property
    def remedy_cause(self) -> str | None:
        """The cause the advice is for.

        The main one, else "born dead" when only born-dead units are dead.
        """
        if self.main_cause is not None:
            return self.main_cause
        return "born dead" if self.born_dead else None

    @property
    def remedy(self) -> Remedy | None:
        """The remedy for ``remedy_cause``, or None."""
        return None if self.remedy_cause is None else remedy_for(self.remedy_cause)

    def dead_now_text(self) -> str:
        """Say how many units are dead now, per hidden layer."""
        counts = ", ".join(f"layer {layer.label} {layer.dead}/{layer.width}"
                           for layer in self.dead_now)
        word = "inactive (leaky ReLU: they still get gradient)" if self.leaky else "dead"
        return f"Units {word} now, after epoch {self.epoch}: {counts}."

    def cause_text(self) -> str:
        """Say what killed most of the units that died in training."""
        born = f"{self.born_dead} born dead (dead before training)."
        if not self.causes:
            return f"No unit died during training; {born}"
        main, count = self.causes[0]
        others = ", ".join(f"{cause} {n}" for cause, n in self.causes[1:])
        return (f"Main cause of the {self.deaths_in_training} deaths during training: "
                f"{main} ({count}){'; then ' + others if others else ''}. Also {born}")

    def remedy_text(self) -> str:
        """Say what to do about it, and on what evidence."""
        remedy = self.remedy
        if self.remedy_cause is None:
            return "Nothing to remedy: no unit is dead and none died."
        if remedy is None:
            return f"No advice for the cause {self.remedy_cause!r}."
        return f"Remedy for {self.remedy_cause}: {remedy.advice} Evidence: {remedy.evidence}."

    def lines(self) -> list[str]:
        """Return the verdict's sentences: dead now, cause, remedy."""
        return [self.dead_now_text(), self.cause_text(), self.remedy_text()]

    def __str__(self) -> str:
        """Return the title and the verdict's lines."""
        return "\n".join([self.title, *self.lines()])


def verdict_of(title: str, monitor) -> Verdict:
    """Return the ``Verdict`` on ``monitor``'s run (a monitor with at least one scan)."""
    if not monitor.reports:
        raise ValueError("the monitor has no scans yet; train with it first")
    latest = monitor.reports[-1]
    dead_now = tuple(LayerDeadCount(layer.label, layer.n_dead, layer.n_units)
                     for layer in latest.layers)
    causes = Counter(current_cause(c.cause) for c in monitor.certificates
                     if c.cause != "born dead")
    born_dead = sum(1 for c in monitor.certificates if c.cause == "born dead")
    ranked = tuple(sorted(causes.items(), key=lambda item: (-item[1], item[0])))
    return Verdict(title, monitor.epochs[-1], dead_now, ranked, born_dead, monitor.leaky)
