"""Damaged and hand-edited files end in CheckpointError at load, never in another
exception or in a trainer that fails later; writes that cannot happen say why."""

import io
import json
import zipfile

import numpy as np
import pytest

import reluscope as rs


@pytest.fixture
def model_file(tmp_path):
    return rs.MLP([5, 8, 3], seed=0).save(tmp_path / "model.rsm")


@pytest.fixture
def checkpoint_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    trainer = rs.Trainer(rs.MLP([5, 8, 3], seed=0), optimizer=rs.Adam(lr=1e-2), seed=1)
    monitor = rs.DeadUnitMonitor(x)
    trainer.fit(x, y, epochs=2, callbacks=[monitor])
    return trainer.save_checkpoint(tmp_path / "run.ckpt", callbacks=[monitor])


def rewrite_members(source, destination, edit):
    """Copy the archive, passing each member's (name, bytes) through ``edit``."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(destination, "w") as copy:
        for name in original.namelist():
            data = edit(name, original.read(name))
            if data is not None:
                copy.writestr(name, data)
    return destination


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def with_array_replaced(source, destination, member, change):
    """Copy the archive with the array ``member`` replaced by ``change(array)``."""
    return rewrite_members(source, destination, lambda name, data: (
        npy_bytes(change(np.load(io.BytesIO(data)))) if name == member else data))


def edited_manifest(source, destination, change):
    def edit(name, data):
        if name != "manifest.json.npy":
            return data
        manifest = json.loads(np.load(io.BytesIO(data)).tobytes().decode())
        change(manifest)
        return npy_bytes(np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8))
    return rewrite_members(source, destination, edit)


def test_a_flipped_encryption_flag_is_a_checkpoint_error(model_file, tmp_path):
    with open(model_file, "rb") as stream:
        data = bytearray(stream.read())
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x40  # "strong encryption": zipfile raises NotImplementedError
    damaged = tmp_path / "damaged.rsm"
    damaged.write_bytes(bytes(data))
    with pytest.raises(rs.CheckpointError, match="damaged.rsm"):
        rs.MLP.load(damaged)


def test_a_damaged_npy_header_is_a_checkpoint_error(model_file, tmp_path):
    def edit(name, data):
        if name.endswith("weight.npy"):
            start = data.index(b"{")
            return data[:start] + b"{'descr': '<f4', 'fortran_order': (" + data[start + 36:]
        return data
    damaged = rewrite_members(model_file, tmp_path / "damaged.rsm", edit)
    with pytest.raises(rs.CheckpointError, match="damaged.rsm"):
        rs.MLP.load(damaged)


def test_an_array_declared_too_large_to_load_is_a_checkpoint_error(model_file, tmp_path):
    def edit(name, data):
        if name.endswith("layers/0/bias.npy"):
            header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
            header += b" " * (118 - len(header)) + b"\n"
            return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
        return data
    damaged = rewrite_members(model_file, tmp_path / "damaged.rsm", edit)
    with pytest.raises(rs.CheckpointError, match="damaged.rsm"):
        rs.MLP.load(damaged)


def test_a_deeply_nested_manifest_is_a_checkpoint_error(model_file, tmp_path):
    damaged = with_array_replaced(
        model_file, tmp_path / "damaged.rsm", "manifest.json.npy",
        lambda _: np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8))
    with pytest.raises(rs.CheckpointError, match="damaged.rsm"):
        rs.MLP.load(damaged)


@pytest.mark.parametrize("sizes", ["583", [5, 8.7, 3], [5, {"non_finite": "inf"}, 3],
                                   [5, -8, 3], [5], [5, True, 3]])
def test_layer_sizes_that_are_not_positive_integers_are_refused(model_file, tmp_path, sizes):
    def change(manifest):
        manifest["layer_sizes"] = sizes
    damaged = edited_manifest(model_file, tmp_path / "damaged.rsm", change)
    with pytest.raises(rs.CheckpointError, match="layer_sizes"):
        rs.MLP.load(damaged)


EDITS = {
    "negative optimizer steps": (lambda m: m["optimizer"].update(steps=-3), "steps"),
    "huge trainer steps": (lambda m: m["trainer"].update(steps_done=10 ** 30), "steps_done"),
    "negative epochs": (lambda m: m["trainer"].update(epochs_done=-1), "epochs_done"),
    "a flag that is a string": (lambda m: m["trainer"].update(track_firing="no"),
                                "track_firing"),
    "a history of text": (lambda m: m["trainer"]["history"].update(loss="abc"), "history"),
    "a history of the wrong length": (lambda m: m["trainer"]["history"]["loss"].append(1.0),
                                      "history holds 3 epochs"),
    "unit statistics for no layer": (lambda m: m["trainer"].update(unit_stats_layers=-1),
                                     "unit_stats_layers"),
    "a loss that is not a name": (lambda m: m["trainer"].update(loss=3), "loss"),
    "a callback kind from elsewhere": (
        lambda m: m["callbacks"][0].update(kind="builtins.eval"), "not registered"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_checkpoints_are_refused_at_load(checkpoint_file, tmp_path, edit):
    change, message = EDITS[edit]
    damaged = edited_manifest(checkpoint_file, tmp_path / "damaged.ckpt", change)
    with pytest.raises(rs.CheckpointError, match=message):
        rs.Trainer.load_checkpoint(damaged)


def test_non_finite_optimizer_moments_are_refused_at_load(checkpoint_file, tmp_path):
    def poisoned(moments):
        moments[0, 0] = np.nan
        return moments
    damaged = with_array_replaced(checkpoint_file, tmp_path / "damaged.ckpt",
                                  "optimizer/state/0/first_moment.npy", poisoned)
    with pytest.raises(rs.CheckpointError, match="first_moment holds NaN or Inf"):
        rs.Trainer.load_checkpoint(damaged)


def test_fortran_order_optimizer_state_loads_and_trains(checkpoint_file, tmp_path):
    edited = with_array_replaced(checkpoint_file, tmp_path / "fortran.ckpt",
                                 "optimizer/state/0/first_moment.npy", np.asfortranarray)
    trainer, _ = rs.Trainer.load_checkpoint(edited)
    original, _ = rs.Trainer.load_checkpoint(checkpoint_file)
    x = np.ones((4, 5), np.float32)
    y = np.zeros(4, np.int64)
    assert trainer.step(x, y) == original.step(x, y)
    for a, b in zip(trainer.model.parameters(), original.model.parameters()):
        np.testing.assert_array_equal(a, b)


def test_writing_over_a_folder_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        rs.MLP([2, 2]).save(tmp_path)


def test_writing_below_a_regular_file_names_the_file(tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="plain is a file, not a folder"):
        rs.MLP([2, 2]).save(tmp_path / "plain" / "model.rsm")


def test_any_legal_file_name_can_be_written(tmp_path):
    longest = tmp_path / ("m" * 255)
    model = rs.MLP([2, 3, 2], seed=1)
    model.save(longest)
    np.testing.assert_array_equal(rs.MLP.load(longest).layers[0].weight, model.layers[0].weight)
    model.save(bytes(tmp_path / "bytes.rsm"))
    assert (tmp_path / "bytes.rsm").exists()


@pytest.mark.parametrize("make", [lambda: rs.SGD(weight_decay=1e-46),
                                  lambda: rs.MLP([2, 3, 2], "leaky_relu", negative_slope=1e-46),
                                  lambda: rs.SGD(momentum=1e-50)])
def test_a_hyperparameter_asked_for_but_rounded_to_zero_is_refused(make):
    with pytest.raises(ValueError, match="becomes 0.0 in float32"):
        make()


def test_an_empty_path_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="the path to write is empty"):
        rs.MLP([2, 2]).save("")
