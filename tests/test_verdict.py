"""The report's verdict (reluscope.verdict) and the advice keyed by cause
(reluscope.remedy_advice), on small hand-made monitors."""

import pathlib
import re
from types import SimpleNamespace

import numpy as np
import pytest

from reluscope.causes import CAUSES, DeathCertificate
from reluscope.remedy_advice import REMEDIES, current_cause, remedy_for
from reluscope.scan import LayerScan, ScanReport
from reluscope.verdict import verdict_of

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "experiments"
NEW_CAUSES = ("born dead", "large update", "drift", "upstream shift", "unclassified")


def monitor_with(dead_per_layer, widths, causes, epochs=(0, 1, 2), leaky=False):
    """A monitor-shaped object: the latest scan has ``dead_per_layer`` dead units (the
    first ones of each layer); one certificate per cause in ``causes``."""
    layers = []
    for index, (dead, width) in enumerate(zip(dead_per_layer, widths)):
        counts = np.full(width, 5, dtype=np.int64)
        counts[:dead] = 0
        margins = np.where(counts > 0, 1.0, -1.0).astype(np.float32)
        layers.append(LayerScan(index, counts, margins, 10))
    certificates = [DeathCertificate(0, unit, 1, cause=cause) for unit, cause in enumerate(causes)]
    return SimpleNamespace(reports=[ScanReport(layers, 10)], certificates=certificates,
                           epochs=list(epochs), leaky=leaky)


def test_old_and_new_cause_names_get_the_same_remedy():
    assert current_cause("bias drift") == "drift"
    assert current_cause("starved") == "upstream shift"
    assert remedy_for("bias drift") is remedy_for("drift") is not None
    assert remedy_for("starved") is remedy_for("upstream shift") is not None
    # Every cause the rules can give today, and every name after the renaming.
    for cause in (*CAUSES, *NEW_CAUSES):
        assert remedy_for(cause) is not None, cause
    assert remedy_for("no such cause") is None


def test_the_remedies_quote_the_saved_compare_remedies_run_and_nothing_else():
    table = (DOCS / "compare-remedies.txt").read_text()
    saved = {row.split("  ")[0]: re.findall(r"\d+\.\d%", row) for row in table.splitlines()[2:]}
    quoted_figures = {figure for remedy in REMEDIES.values()
                      for figure in re.findall(r"\d+(?:\.\d)?%", remedy.evidence)}
    assert set(saved["clip grad norm 1.0"][:2]) <= quoted_figures  # 0.0% dead, 81.9% accurate
    assert set(saved["plain"][:2]) <= quoted_figures
    # Every figure quoted is in the saved table or in the documentation's account of the
    # saved runs (docs/experiments.md: the digits run of compare-remedies: 23% plain,
    # 0.4% ReDo; born-dead: 62% -> 9%).
    account = (DOCS.parent / "experiments.md").read_text()
    recorded = set(re.findall(r"\d+(?:\.\d)?%", table + account))
    assert quoted_figures <= recorded
    assert "compare-remedies" in remedy_for("large update").evidence
    assert "reluscope compare-remedies" in remedy_for("unclassified").evidence


def test_the_verdict_counts_dead_units_per_layer_and_names_the_main_cause():
    causes = ["born dead", "born dead", "large update", "starved", "bias drift", "drift",
              "large update", "large update"]
    verdict = verdict_of("lr 0.2", monitor_with([3, 0], [8, 4], causes, epochs=(0, 5, 9)))
    assert verdict.main_cause == "large update"
    assert verdict.born_dead == 2
    # The former name counted with the current one: drift 2, not 1 and 1.
    assert verdict.causes == (("large update", 3), ("drift", 2), ("upstream shift", 1))
    lines = verdict.lines()
    assert lines[0] == "Units dead now, after epoch 9: layer 0 3/8, layer 1 0/4."
    assert lines[1] == ("Main cause of the 6 deaths during training: large update (3); then "
                        "drift 2, upstream shift 1. Also 2 born dead (dead before training).")
    assert lines[2].startswith("Remedy for large update: Take smaller steps")
    assert "clip_norm=1.0" in lines[2] and "compare-remedies" in lines[2]
    assert str(verdict).splitlines() == ["lr 0.2", *lines]


def test_ties_between_causes_go_by_name():
    verdict = verdict_of("t", monitor_with([2], [4], ["unclassified", "drift"]))
    assert verdict.main_cause == "drift"


def test_born_dead_units_only_get_the_born_dead_remedy():
    verdict = verdict_of("t", monitor_with([2], [4], ["born dead", "born dead"]))
    assert verdict.main_cause is None
    assert verdict.lines()[1] == ("No unit died during training; 2 born dead "
                                  "(dead before training).")
    assert verdict.lines()[2].startswith("Remedy for born dead: Initialize with RAI")


def test_a_run_without_dead_units_needs_no_remedy():
    verdict = verdict_of("t", monitor_with([0], [4], []))
    assert verdict.remedy is None
    assert verdict.lines()[2] == "Nothing to remedy: no unit is dead and none died."


def test_leaky_units_are_called_inactive():
    verdict = verdict_of("t", monitor_with([1], [4], ["drift"], leaky=True))
    assert verdict.lines()[0].startswith("Units inactive (leaky ReLU")


def test_a_monitor_without_scans_has_no_verdict():
    empty = SimpleNamespace(reports=[], certificates=[], epochs=[], leaky=False)
    with pytest.raises(ValueError, match="no scans yet"):
        verdict_of("t", empty)
