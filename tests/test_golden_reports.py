"""Text reports against small golden files (tests/golden/). The network and data
are chosen so that every number is exact in float32 and float64 alike."""

from pathlib import Path

import numpy as np
from test_scan_and_monitor import network_with_dead_units

import reluscope as rs

GOLDEN = Path(__file__).parent / "golden"


def data():
    return np.random.default_rng(0).integers(0, 5, (257, 3)).astype(np.float32)


def check(name: str, text: str) -> None:
    expected = (GOLDEN / name).read_text()
    assert text + "\n" == expected, f"{name} differs from the golden file:\n{text}"


def test_scan_report_text(simd_target):
    check("scan_report.txt", str(rs.scan(rs.MLP.from_weights(network_with_dead_units()), data())))


def test_born_dead_report_text():
    check("born_dead_report.txt",
          str(rs.born_dead(rs.MLP.from_weights(network_with_dead_units()), data())))


def test_monitor_layer_table_text():
    model = rs.MLP.from_weights(network_with_dead_units())
    monitor = rs.DeadUnitMonitor(data())
    monitor.observe(0, model)
    model.layers[0].bias[4] = 0.0  # unit 4 of layer 0 comes back
    monitor.observe(1, model)
    check("layer_table.txt", monitor.layer_table())
