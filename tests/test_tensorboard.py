"""rs.callbacks.TensorBoard: what the monitors scanned, read back from the event files."""

import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import reluscope as rs

pytest.importorskip("tensorboardX", reason="the tensorboard extra (installed by the test extra)")
from tensorboardX.proto.event_pb2 import Event  # noqa: E402


def read_events(logdir):
    """Scalars as {tag: {step: value}} and histograms as {tag: {step: HistogramProto}}.

    The event files are TFRecords: a little-endian uint64 length, its uint32
    CRC, the serialized Event, the Event's uint32 CRC (not checked here).
    """
    scalars, histograms = defaultdict(dict), defaultdict(dict)
    files = sorted(Path(logdir).glob("events.out.tfevents.*"))
    assert files, f"no event file in {logdir}"
    for path in files:
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("histo"):
                    histograms[value.tag][event.step] = value.histo
                else:
                    scalars[value.tag][event.step] = value.simple_value
    return scalars, histograms


def check_board_matches(history, logdir, tau=0.025):
    """Every scan of ``history`` is in ``logdir``, at its epoch, and nothing else."""
    scalars, histograms = read_events(logdir)
    n_layers = len(history.reports[0].layers)
    expected_tags = {f"{kind}/layer_{i}" for kind in ("dead_fraction", "dormant_fraction")
                     for i in range(n_layers)}
    assert set(scalars) == expected_tags
    assert set(histograms) == {f"{kind}/layer_{i}" for kind in ("margin", "firing_rate")
                               for i in range(n_layers)}
    for epoch, report in zip(history.epochs, history.reports):
        for i, layer in enumerate(report.layers):
            # Written as float32 by the writer.
            assert scalars[f"dead_fraction/layer_{i}"][epoch] == np.float32(layer.dead_fraction)
            dormant = len(layer.dormant_units(tau)) / layer.n_units
            assert scalars[f"dormant_fraction/layer_{i}"][epoch] == np.float32(dormant)
            margin = histograms[f"margin/layer_{i}"][epoch]
            assert margin.num == layer.n_units
            assert margin.max == pytest.approx(float(layer.max_pre_activation.max()))
            assert margin.min == pytest.approx(float(layer.max_pre_activation.min()))
            rate = histograms[f"firing_rate/layer_{i}"][epoch]
            assert rate.num == layer.n_units
            assert rate.sum == pytest.approx(float(layer.firing_rate.sum()))
    for tag in expected_tags:
        assert sorted(scalars[tag]) == history.epochs
    return scalars


def native_run():
    rng = np.random.default_rng(0)
    x = rng.random((120, 6)).astype(np.float32)
    y = rng.integers(0, 3, 120)
    model = rs.MLP([6, 16, 12, 3], seed=0)
    model.layers[0].bias[[3, 9]] = -50.0  # two units dead from the start
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.5), batch_size=20, seed=0)
    return trainer, x, y


@pytest.mark.parametrize("board_first", [False, True])
def test_native_fit_writes_every_scan_of_the_monitor(tmp_path, board_first):
    trainer, x, y = native_run()
    monitor = rs.DeadUnitMonitor(x)
    with rs.callbacks.TensorBoard(tmp_path, monitor=monitor) as board:
        # After the monitor each epoch's scan is written at that epoch's end; before
        # it, one epoch late, and the last at on_train_end: the same files either way.
        callbacks = [board, monitor] if board_first else [monitor, board]
        trainer.fit(x, y, epochs=3, callbacks=callbacks, verbose=False)
        assert board.scans_written == 4
    assert monitor.history.epochs == [0, 1, 2, 3]
    scalars = check_board_matches(monitor.history, tmp_path)
    assert {3, 9} <= set(monitor.history.reports[0].layers[0].dead_units)
    assert scalars["dead_fraction/layer_0"][0] >= 2 / 16


def test_the_scan_before_training_is_written_at_train_begin(tmp_path):
    trainer, x, y = native_run()
    monitor = rs.DeadUnitMonitor(x)
    board = rs.callbacks.TensorBoard(tmp_path, monitor=monitor)

    class Peek(rs.Callback):
        def on_train_begin(self, trainer):
            self.written = board.scans_written

    peek = Peek()
    trainer.fit(x, y, epochs=1, callbacks=[monitor, board, peek], verbose=False)
    board.close()
    assert peek.written == 1


def test_the_torch_monitor_through_log(tmp_path):
    torch = pytest.importorskip("torch")
    import reluscope.torch as rt

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(90, 5, generator=generator)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 10), torch.nn.ReLU(), torch.nn.Linear(10, 8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        net[0].bias[[1, 4]] = -50.0
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor, \
            rs.callbacks.TensorBoard.from_monitor(monitor, tmp_path) as board:
        assert board.log() == 1  # the scan at construction, epoch 0
        for _ in range(3):
            for start in range(0, 90, 30):
                loss = torch.nn.functional.cross_entropy(net(x[start:start + 30]),
                                                         y[start:start + 30])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            monitor.end_epoch()
            assert board.log() == 1
        assert board.log() == 0  # nothing new: each scan is written once
    assert monitor.history.epochs == [0, 1, 2, 3]
    scalars = check_board_matches(monitor.history, tmp_path)
    assert {1, 4} <= set(monitor.history.reports[0].layers[0].dead_units)
    assert scalars["dead_fraction/layer_0"][0] >= 2 / 10


def test_a_history_or_a_monitor_given_to_log(tmp_path):
    trainer, x, y = native_run()
    monitor = rs.DeadUnitMonitor(x)
    trainer.fit(x, y, epochs=2, callbacks=[monitor], verbose=False)
    with rs.callbacks.TensorBoard(tmp_path / "history") as board:
        assert board.log(monitor.history) == 3
    check_board_matches(monitor.history, tmp_path / "history")


def test_bad_monitors_are_named(tmp_path):
    with pytest.raises(TypeError, match="monitor must be a DeadUnitMonitor.*got list"):
        rs.callbacks.TensorBoard(tmp_path, monitor=[])
    trainer, x, y = native_run()
    with rs.callbacks.TensorBoard(tmp_path) as board:
        with pytest.raises(TypeError, match="needs a monitor"):
            board.log()
        with pytest.raises(TypeError, match="needs monitor="):
            trainer.fit(x, y, epochs=1, callbacks=[board], verbose=False)


def test_reluscope_never_imports_tensorboardx_and_names_the_extra():
    script = """if True:
        import sys
        import reluscope
        assert "tensorboardX" not in sys.modules, "import reluscope imported tensorboardX"
        board_class = reluscope.callbacks.TensorBoard  # the class alone imports nothing
        assert "tensorboardX" not in sys.modules, "the class imported tensorboardX"
        sys.modules["tensorboardX"] = None  # as if it were not installed
        try:
            board_class("unused")
        except ImportError as error:
            print(error)
        """
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "pip install reluscope[tensorboard]" in result.stdout


def test_the_log_folder_must_be_a_path():
    with pytest.raises(TypeError, match="logdir must be a folder path"):
        rs.callbacks.TensorBoard(None)
