"""What to do about the deaths of one cause.

And what the compare-remedies experiment measured for it.

The one place that maps a death certificate's cause to advice. It knows the cause
names of ``causes.py`` past and present: "bias drift" is now "drift" and "starved"
"upstream shift", so certificates written under either name get the same advice.

The figures quoted are the saved outputs of the default runs in ``docs/experiments/``
(compare-remedies: Fashion-MNIST, plain SGD at lr=0.5, 10 epochs, layers
784-128-128-128-10, means over 3 seeds; the digits figures in ``docs/experiments.md``
are of the same command with ``--dataset digits``). Where no saved run measured a
remedy, the advice says how to measure it instead of quoting a number.
"""

from __future__ import annotations

from dataclasses import dataclass

# Former cause name -> current one.
RENAMED_CAUSES = {"bias drift": "drift", "starved": "upstream shift"}

MEASURE_IT = ("none saved for this cause; run `reluscope compare-remedies` to measure each "
              "remedy (on the digits or Fashion-MNIST)")


@dataclass(frozen=True)
class Remedy:
    """The remedy for one cause of death.

    ``advice``: what to change, with the call that changes it; ``evidence``:
    what the compare-remedies experiment measured, or how to measure it.
    """

    advice: str
    evidence: str


_CLIPPING = ("compare-remedies: clipping the gradient norm at 1.0 left 0.0% of the hidden "
             "units dead against 51.9% without a remedy, at 81.9% test accuracy against "
             "30.9% (Fashion-MNIST, SGD lr=0.5, 3 seeds)")

REMEDIES = {
    "born dead": Remedy(
        "Initialize with RAI, `MLP(..., init=\"rai\")`, or make narrow layers wider.",
        "compare-remedies: RAI init left 37.3% of the hidden units dead against 51.9% with "
        "He init (Fashion-MNIST, SGD lr=0.5, 3 seeds); born-dead: RAI cuts the networks of "
        "width 3 and depth 10 born dead from 62% to 9%"),
    "large update": Remedy(
        "Take smaller steps: clip the gradient norm, `SGD(..., clip_norm=1.0)`, or lower "
        "the learning rate.",
        _CLIPPING),
    "drift": Remedy(
        "Recycle the units that go dormant: `rs.ReDo(every=...)` as a callback of `fit`.",
        "compare-remedies: ReDo every 100 steps left 26.0% of the hidden units dead against "
        "51.9% without a remedy (Fashion-MNIST, SGD lr=0.5, 3 seeds); on the digits 0.4% "
        "against 23%"),
    "upstream shift": Remedy(
        "Treat the layer below first: its units died or moved under these. Clip the "
        "gradient norm, `SGD(..., clip_norm=1.0)`, so that one step cannot move a layer's "
        "inputs far.",
        _CLIPPING),
    # A contributing condition now, not a cause; kept for certificates saved before.
    "inputs not centered": Remedy(
        "Center the inputs: subtract the training data's per-feature mean, "
        "`x - x_train.mean(axis=0)`, in training and in use.",
        "none saved (compare-remedies does not try centering); train once on centered "
        "inputs and compare the dead counts"),
    "unclassified": Remedy(
        "These deaths could not be attributed (each certificate's note says why, e.g. "
        "scanned data that are not one 2-D array), so there is no single cause to treat: "
        "try the remedies one at a time (clipping, ReDo, RAI init, leaky ReLU).",
        MEASURE_IT),
}


def current_cause(cause: str) -> str:
    """Return the cause's current name ("bias drift" -> "drift"); other names unchanged."""
    return RENAMED_CAUSES.get(cause, cause)


def remedy_for(cause: str) -> Remedy | None:
    """Return the remedy for deaths of ``cause`` (a current or former name).

    None for a cause this table does not know.
    """
    return REMEDIES.get(current_cause(cause))
