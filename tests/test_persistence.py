"""Model files bit for bit; damaged, foreign and newer files named in a CheckpointError;
atomic writes that leave the previous file whole; strict JSON."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

import reluscope as rs
from reluscope import _files, _strict_json
from reluscope.experiments import _common


def assert_same_model(a, b):
    assert a.layer_sizes == b.layer_sizes
    assert a.activation == b.activation
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.dtype == q.dtype == np.float32 and p.flags.c_contiguous
        assert p.tobytes() == q.tobytes()


@pytest.mark.parametrize("model", [
    lambda: rs.MLP([5, 7, 3], seed=0),
    lambda: rs.MLP([5, 7, 6, 3], "leaky_relu", negative_slope=0.123456789, seed=1,
                   init="normal", init_params={"std": 0.3}),
    lambda: rs.MLP([4, 2], "identity", init="orthogonal", init_params={"gain": 2.0}, seed=2),
    lambda: rs.MLP.from_weights([(np.full((3, 2), np.float32(1 / 3)), [np.float32(1e-45), 0]),
                                 (np.ones((2, 1)), [-0.0])], "leaky_relu", negative_slope=0.2),
], ids=["relu", "leaky", "linear", "from_weights"])
def test_model_round_trip_is_bit_exact(tmp_path, model):
    model = model()
    path = tmp_path / "model.rsm"
    assert model.save(path) == str(path)
    loaded = rs.MLP.load(path)
    assert_same_model(model, loaded)
    assert (loaded.init, loaded.init_params) == (model.init, model.init_params)
    x = np.random.default_rng(0).normal(size=(9, model.n_features)).astype(np.float32)
    assert model.forward(x).tobytes() == loaded.forward(x).tobytes()


def break_weight_value(model):
    model.layers[0].weight[0, 0] = np.nan


def break_weight_dtype(model):
    model.layers[0].weight = model.layers[0].weight.astype(np.float64)


def break_bias_shape(model):
    model.layers[1].bias = np.zeros(5, np.float32)


@pytest.mark.parametrize("damage,error,message", [
    (break_weight_value, ValueError, r"layers\[0\]\.weight holds 1 NaN or Inf value"),
    (break_weight_dtype, TypeError, r"layers\[0\]\.weight has dtype float64"),
    (break_bias_shape, ValueError, r"layers\[1\]\.bias has shape \(5,\)"),
])
def test_a_model_that_would_not_load_again_is_not_written(tmp_path, damage, error, message):
    model = rs.MLP([4, 8, 3], seed=0)
    model.save(tmp_path / "m.npz")
    trainer = rs.Trainer(model)
    trainer.save_checkpoint(tmp_path / "c.npz")
    saved = {name: (tmp_path / name).read_bytes() for name in ("m.npz", "c.npz")}
    damage(model)
    with pytest.raises(error, match=message):
        model.save(tmp_path / "m.npz")
    with pytest.raises(error, match=message):
        trainer.save_checkpoint(tmp_path / "c.npz")
    # The files written before are left whole, and still load.
    assert {name: (tmp_path / name).read_bytes() for name in saved} == saved
    rs.MLP.load(tmp_path / "m.npz")
    rs.Trainer.load_checkpoint(tmp_path / "c.npz")


def test_a_model_drawn_by_a_callable_is_saved_without_it(tmp_path):
    def constant(fan_in, fan_out, rng):
        return np.full((fan_in, fan_out), 0.5)

    model = rs.MLP([3, 4, 2], init=constant)
    model.save(tmp_path / "m")
    loaded = rs.MLP.load(tmp_path / "m")
    assert_same_model(model, loaded)
    assert loaded.init is None


def test_the_manifest_says_what_the_file_is(tmp_path):
    rs.MLP([5, 7, 3], "leaky_relu", negative_slope=0.25, seed=0).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        manifest = json.loads(archive["manifest.json"].tobytes().decode())
        assert archive["layers/0/weight"].shape == (5, 7)
    assert manifest["format"] == "reluscope.model" and manifest["schema_version"] == 1
    assert manifest["reluscope_version"] == rs.__version__
    assert manifest["layer_sizes"] == [5, 7, 3]
    assert (manifest["activation"], manifest["negative_slope"]) == ("leaky_relu", 0.25)
    assert manifest["init"] == "he_normal"


# Damaged and foreign files.

def _saved_model(tmp_path):
    path = tmp_path / "model.rsm"
    rs.MLP([5, 7, 3], seed=0).save(path)
    return path


def _rewrite_manifest(path, change):
    """Write the archive at ``path`` again with ``change(manifest)`` applied."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = json.loads(arrays["manifest.json"].tobytes().decode())
    change(manifest)
    arrays["manifest.json"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


def test_a_truncated_file_is_named(tmp_path):
    path = _saved_model(tmp_path)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:size])
        with pytest.raises(rs.CheckpointError, match=str(path)):
            rs.MLP.load(path)


def test_a_corrupted_byte_is_caught(tmp_path):
    path = _saved_model(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("layers/0/weight.npy")
    data[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF  # inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(rs.CheckpointError, match="corrupted"):
        rs.MLP.load(path)


@pytest.mark.parametrize("content, message", [
    (b"not a model at all" * 20, "is not a reluscope file: not an .npz archive"),
    (b"\x00" * 300, "not an .npz archive"),
    (b"", "is empty"),
])
def test_garbage_is_named(tmp_path, content, message):
    path = tmp_path / "garbage"
    path.write_bytes(content)
    with pytest.raises(rs.CheckpointError, match=message):
        rs.MLP.load(path)
    with pytest.raises(rs.CheckpointError, match="garbage"):
        rs.Trainer.load_checkpoint(path)


def test_foreign_files_are_named(tmp_path):
    np.savez(tmp_path / "plain.npz", weights=np.ones(3))
    with pytest.raises(rs.CheckpointError, match="without the manifest.json manifest"):
        rs.MLP.load(tmp_path / "plain.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(rs.CheckpointError, match="single .npy array"):
        rs.MLP.load(tmp_path / "single.npy")
    # A pickled object array is refused, never unpickled.
    np.savez(tmp_path / "objects.npz", manifest=np.array([{"a": 1}], dtype=object))
    with pytest.raises(rs.CheckpointError, match="objects.npz"):
        rs.MLP.load(tmp_path / "objects.npz")
    with pytest.raises(FileNotFoundError):
        rs.MLP.load(tmp_path / "missing")


def test_a_model_and_a_checkpoint_are_not_taken_for_each_other(tmp_path):
    model_path = _saved_model(tmp_path)
    with pytest.raises(rs.CheckpointError, match="is a reluscope model, not a reluscope "
                                                 "checkpoint; read it with reluscope.MLP.load"):
        rs.Trainer.load_checkpoint(model_path)
    trainer = rs.Trainer(rs.MLP([5, 3], seed=0))
    trainer.save_checkpoint(tmp_path / "c")
    with pytest.raises(rs.CheckpointError, match="Trainer.load_checkpoint"):
        rs.MLP.load(tmp_path / "c")


def test_a_newer_schema_says_which_version_it_needs(tmp_path):
    path = _saved_model(tmp_path)
    _rewrite_manifest(path, lambda m: m.update(schema_version=7, reluscope_version="9.0"))
    with pytest.raises(rs.CheckpointError, match=r"needs schema version 7 .* reluscope 9\.0\)"
                                                 r".* reads versions up to 1"):
        rs.MLP.load(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("layer_sizes"), "layer_sizes"),
    (lambda m: m.update(layer_sizes=[5, 8, 3]), "shape"),
    (lambda m: m.update(activation="swish"), "swish"),
    (lambda m: m.update(init="os.system"), "os.system"),
    (lambda m: m.update(format="something.else"), "something.else"),
])
def test_a_damaged_manifest_is_named(tmp_path, change, message):
    path = _saved_model(tmp_path)
    _rewrite_manifest(path, change)
    with pytest.raises(rs.CheckpointError, match=message):
        rs.MLP.load(path)


def test_a_damaged_checkpoint_is_named(tmp_path):
    x = np.random.default_rng(0).random((40, 5), dtype=np.float32)
    trainer = rs.Trainer(rs.MLP([5, 4, 3], seed=0), optimizer=rs.Adam())
    monitor = rs.DeadUnitMonitor(x)
    trainer.fit(x, np.arange(40) % 3, epochs=1, callbacks=[monitor], verbose=False)
    path = tmp_path / "c"
    trainer.save_checkpoint(path, [monitor])
    _rewrite_manifest(path, lambda m: m["callbacks"][0].update(kind="builtins.eval"))
    with pytest.raises(rs.CheckpointError, match="'builtins.eval', which is not registered"):
        rs.Trainer.load_checkpoint(path)
    trainer.save_checkpoint(path, [monitor])
    _rewrite_manifest(path, lambda m: m["trainer"]["rng"].update(bit_generator="Evil"))
    with pytest.raises(rs.CheckpointError, match="Evil"):
        rs.Trainer.load_checkpoint(path)
    trainer.save_checkpoint(path, [monitor])
    _rewrite_manifest(path, lambda m: m["callbacks"][0]["settings"].pop("certificates"))
    with pytest.raises(rs.CheckpointError, match="certificates"):
        rs.Trainer.load_checkpoint(path)


# Atomic writes.

class _Boom(Exception):
    pass


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, error):
    path = tmp_path / "result.json"
    path.write_text("previous")
    with pytest.raises(error):
        with _files.atomic_write(path, "w") as stream:
            stream.write("half of the new")
            raise error()
    assert path.read_text() == "previous"
    assert os.listdir(tmp_path) == ["result.json"]


def test_an_interrupted_save_leaves_the_previous_model(tmp_path, monkeypatch):
    path = tmp_path / "m"
    rs.MLP([3, 2], seed=0).save(path)
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rs.MLP([3, 2], seed=1).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m"]


def test_a_write_creates_the_folder_and_honours_the_umask(tmp_path):
    path = tmp_path / "new" / "folder" / "m"
    rs.MLP([3, 2], seed=0).save(path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_figure_is_saved_atomically_in_the_format_asked(tmp_path):
    matplotlib_figure = pytest.importorskip("matplotlib.figure")
    figure = matplotlib_figure.Figure()
    figure.add_subplot().plot([0, 1])
    path = tmp_path / "plot.png"
    path.write_bytes(b"previous")
    _common.save_figure(figure, path)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert os.listdir(tmp_path) == ["plot.png"]


# Strict JSON.

def test_non_finite_numbers_become_null_with_a_note(tmp_path):
    document = {"loss": [1.0, float("nan"), np.float32(np.inf)], "n": np.int64(3),
                "nested": {"x": -np.inf}, "notes": ["kept"]}
    text = _strict_json.dumps(document)
    loaded = json.loads(text)
    assert loaded["loss"] == [1.0, None, None] and loaded["n"] == 3
    assert loaded["notes"][0] == "kept"
    assert "loss[1], loss[2], nested.x" in loaded["notes"][1]
    _common.write_json(document, tmp_path / "r.json")
    json.loads((tmp_path / "r.json").read_text(), parse_constant=_refuse)


def test_finite_documents_get_no_note():
    assert "notes" not in json.loads(_strict_json.dumps({"a": [1.5, 2]}))


def _refuse(constant):
    raise AssertionError(f"{constant} in strict JSON")


def test_monitor_and_history_dicts_pass_the_writer_as_strict_json(tmp_path):
    x = np.random.default_rng(0).random((30, 4), dtype=np.float32)
    trainer = rs.Trainer(rs.MLP([4, 5, 2], seed=0), seed=0)
    monitor = rs.DeadUnitMonitor(x)
    trainer.fit(x, np.arange(30) % 2, epochs=2, callbacks=[monitor], verbose=False)
    trainer.history.loss.append(float("nan"))  # as a diverging run could record
    monitor.certificates.append(rs.DeathCertificate(0, 0, 2, relative_update=float("inf")))
    document = {"history": trainer.history.to_dict(), "monitor": monitor.to_dict(),
                "scan": rs.scan(trainer.model, x).to_dict()}
    written = json.loads(_strict_json.dumps(document), parse_constant=_refuse)
    json.dumps(written, allow_nan=False)
    assert "history.loss[2]" in written["notes"][-1]
    # The monitor's own dict is strict already, with its own note.
    json.dumps(monitor.to_dict(), allow_nan=False)
    assert "relative_update" in written["monitor"]["notes"][-1]
