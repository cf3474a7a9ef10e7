"""Text reports against small golden files (tests/golden/). The network and data
are chosen so that every number is exact in float32 and float64 alike.

To change a report on purpose, regenerate the files and read the diff before committing:
``RELUSCOPE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_reports.py; git diff tests/golden``.
"""

import os
from pathlib import Path

import numpy as np
from test_scan_and_monitor import network_with_dead_units

import reluscope as rs

GOLDEN = Path(__file__).parent / "golden"


def data():
    return np.random.default_rng(0).integers(0, 5, (257, 3)).astype(np.float32)


def check(name: str, text: str) -> None:
    if os.environ.get("RELUSCOPE_UPDATE_GOLDEN") == "1":
        (GOLDEN / name).write_text(text + "\n")
    expected = (GOLDEN / name).read_text()
    assert text + "\n" == expected, f"{name} differs from the golden file:\n{text}"


def test_scan_report_text(simd_target):
    check("scan_report.txt", str(rs.scan(rs.MLP.from_weights(network_with_dead_units()), data())))


def test_born_dead_report_text():
    check("born_dead_report.txt",
          str(rs.born_dead(rs.MLP.from_weights(network_with_dead_units()), data())))


def monitor_with_a_revival_and_a_second_death():
    model = rs.MLP.from_weights(network_with_dead_units())
    monitor = rs.DeadUnitMonitor(data())
    monitor.observe(0, model)
    bias = model.layers[0].bias[4]
    model.layers[0].bias[4] = 0.0  # unit 4 of layer 0 comes back
    monitor.observe(1, model)
    return monitor, model, bias


def test_monitor_layer_table_text():
    monitor, _, _ = monitor_with_a_revival_and_a_second_death()
    check("layer_table.txt", monitor.layer_table())


def test_monitor_summary_text():
    monitor, model, bias = monitor_with_a_revival_and_a_second_death()
    model.layers[0].bias[4] = bias  # and dies again: two deaths of one unit
    monitor.observe(2, model)
    check("monitor_summary.txt", monitor.summary())
