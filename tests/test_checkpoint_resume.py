"""Checkpoints: a run saved after epoch k and resumed in a new process ends bit for bit where
the uninterrupted run ends; checkpoint_every, the checkpoint of a diverged run, callbacks that
cannot be saved, and pickling a trainer."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import reluscope as rs

EPOCHS_BEFORE, EPOCHS_AFTER = 2, 2

# Loads a checkpoint, trains on, saves the end state: run in a fresh interpreter.
RESUME_SCRIPT = """
import sys
import numpy as np
import reluscope as rs

checkpoint, data, out, epochs = sys.argv[1:]
arrays = np.load(data)
trainer, callbacks = rs.Trainer.load_checkpoint(checkpoint)
trainer.fit(arrays["x"], arrays["y"], epochs=int(epochs), callbacks=callbacks, verbose=False)
trainer.save_checkpoint(out, callbacks)
"""


def digits_like(n=300, seed=0):
    """Non-negative pixel-like inputs (as the 8x8 digits): units die and certificates vary."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(n, 64)).astype(np.float32) / 16
    return x, rng.integers(0, 10, n)


OPTIMIZERS = {
    "sgd_momentum": lambda: rs.SGD(lr=0.2, momentum=0.9, clip_norm=5.0, warmup_steps=30),
    "adam": lambda: rs.Adam(lr=0.05, warmup_steps=20),
}


def new_run(optimizer: str, redo: bool, x):
    model = rs.MLP([64, 32, 32, 10], seed=0)
    trainer = rs.Trainer(model, optimizer=OPTIMIZERS[optimizer](), batch_size=32, seed=1,
                         track_gradients=True)
    callbacks = [rs.DeadUnitMonitor(x)]
    if redo:
        callbacks.append(rs.ReDo(every=7, seed=2))
    return trainer, callbacks


def assert_same_run(a, callbacks_a, b, callbacks_b):
    """Every piece of state the two runs hold is equal, bit for bit (NaN equal to NaN)."""
    assert len(a.model.layers) == len(b.model.layers) and len(callbacks_a) == len(callbacks_b)
    assert len(a.optimizer.state) == len(b.optimizer.state)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert p.dtype == q.dtype and np.array_equal(p, q)
    assert (a.epochs_done, a.steps_done) == (b.epochs_done, b.steps_done)
    assert a.history.loss == b.history.loss and a.history.accuracy == b.history.accuracy
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    assert np.array_equal(a.last_grad_norm, b.last_grad_norm, equal_nan=True)
    assert a.optimizer.steps == b.optimizer.steps
    for s, t in zip(a.optimizer.state, b.optimizer.state):
        for u, v in zip(s.buffers(), t.buffers()):
            assert np.array_equal(u, v)
        cohorts = getattr(s, "cohort", None), getattr(t, "cohort", None)
        assert (cohorts[0] is None and cohorts[1] is None) or np.array_equal(*cohorts)
    if isinstance(a.optimizer, rs.Adam):
        assert np.array_equal(a.optimizer.cohort_start, b.optimizer.cohort_start)
    for s, t in zip(a.unit_stats, b.unit_stats):
        assert np.array_equal(s.firing_counts, t.firing_counts)
        assert np.array_equal(s.gradient_magnitude, t.gradient_magnitude)
        assert np.array_equal(s.last_firing.view(np.float64), t.last_firing.view(np.float64),
                              equal_nan=True)
    monitor_a, monitor_b = callbacks_a[0], callbacks_b[0]
    assert monitor_a.deaths == monitor_b.deaths and monitor_a.revivals == monitor_b.revivals
    assert monitor_a.moved_while_dead == monitor_b.moved_while_dead
    assert _text(monitor_a.certificates) == _text(monitor_b.certificates)
    # The whole report: every scan, the silent units and their gradient evidence.
    assert _text(monitor_a.to_dict()) == _text(monitor_b.to_dict())
    if len(callbacks_a) > 1:
        redo_a, redo_b = callbacks_a[1], callbacks_b[1]
        assert redo_a.events == redo_b.events
        assert redo_a.rng.bit_generator.state == redo_b.rng.bit_generator.state


def _text(value) -> str:
    """Comparable text of certificates or reports (NaN written alike on both sides)."""
    if isinstance(value, list):
        value = [c.to_dict() for c in value]
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("optimizer, redo", [("sgd_momentum", False), ("adam", False),
                                             ("adam", True), ("sgd_momentum", True)])
def test_resumed_in_a_new_process_ends_bitwise_where_the_uninterrupted_run_ends(
        tmp_path, optimizer, redo):
    x, y = digits_like()
    whole, whole_callbacks = new_run(optimizer, redo, x)
    whole.fit(x, y, epochs=EPOCHS_BEFORE + EPOCHS_AFTER, callbacks=whole_callbacks,
              verbose=False)
    assert whole_callbacks[0].deaths and whole_callbacks[0].certificates
    if redo:
        assert whole_callbacks[1].events

    first, first_callbacks = new_run(optimizer, redo, x)
    checkpoint = tmp_path / "run.ckpt"
    first.fit(x, y, epochs=EPOCHS_BEFORE, callbacks=first_callbacks, checkpoint=checkpoint,
              checkpoint_every=EPOCHS_BEFORE, verbose=False)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    end = tmp_path / "end.ckpt"
    subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(checkpoint),
                    str(tmp_path / "data.npz"), str(end), str(EPOCHS_AFTER)],
                   check=True, capture_output=True, timeout=120)
    resumed, resumed_callbacks = rs.Trainer.load_checkpoint(end)
    assert_same_run(whole, whole_callbacks, resumed, resumed_callbacks)


def test_save_then_load_in_process_holds_every_piece_of_state(tmp_path):
    x, y = digits_like()
    trainer, callbacks = new_run("adam", True, x)
    trainer.fit(x, y, epochs=2, callbacks=callbacks, verbose=False)
    trainer.save_checkpoint(tmp_path / "c", callbacks)
    loaded, loaded_callbacks = rs.Trainer.load_checkpoint(tmp_path / "c")
    assert [type(c) for c in loaded_callbacks] == [rs.DeadUnitMonitor, rs.ReDo]
    assert_same_run(trainer, callbacks, loaded, loaded_callbacks)
    assert loaded.optimizer.hyperparameters() == trainer.optimizer.hyperparameters()
    assert (loaded.batch_size, loaded.loss.name, loaded.track_gradients) == (32, "cross_entropy",
                                                                              True)
    assert np.array_equal(loaded_callbacks[0].x, x)
    # ReDo's recycling opened Adam moment cohorts: they are back, with their start steps.
    assert len(loaded.optimizer.cohort_start) > 1
    assert any(s.cohort is not None for s in loaded.optimizer.state)


def test_checkpoint_every_n_epochs(tmp_path):
    x, y = digits_like(100)
    trainer, callbacks = new_run("sgd_momentum", False, x)
    path = tmp_path / "every.ckpt"
    trainer.fit(x, y, epochs=5, callbacks=callbacks, checkpoint=path, checkpoint_every=2,
                verbose=False)
    saved = rs.checkpoint.read_manifest(path)["saved_at"]
    assert saved == {"epoch": 4, "step": 4 * 4, "reason": "every 2 epochs"}
    loaded, _ = rs.Trainer.load_checkpoint(path)
    assert loaded.epochs_done == 4 and loaded.history.loss == trainer.history.loss[:4]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_diverged_run_leaves_a_checkpoint_of_its_last_finite_state(tmp_path):
    x, y = digits_like(100)
    trainer = rs.Trainer(rs.MLP([64, 16, 10], seed=0), optimizer=rs.SGD(lr=0.1), seed=0)
    path = tmp_path / "run.ckpt"
    trainer.fit(x, y, epochs=1, checkpoint=path, verbose=False)
    trainer.optimizer.lr = 1e38
    with pytest.raises(rs.TrainingDiverged) as diverged:
        trainer.fit(x, y, epochs=3, checkpoint=path, verbose=False)
    manifest = rs.checkpoint.read_manifest(path)
    assert manifest["saved_at"]["reason"] == "diverged"
    assert manifest["saved_at"]["step"] == diverged.value.step - 1
    loaded, _ = rs.Trainer.load_checkpoint(path)
    for p, q in zip(trainer.model.parameters(), loaded.model.parameters()):
        assert np.all(np.isfinite(q)) and np.array_equal(p, q)
    assert loaded.steps_done == trainer.steps_done == diverged.value.step - 1


class _Counter(rs.Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        pass


def test_a_callback_that_cannot_be_saved_is_named_not_dropped(tmp_path):
    x, y = digits_like(64)
    trainer, callbacks = new_run("adam", False, x)
    with pytest.raises(TypeError, match=r"callbacks\[1\] \(_Counter\) cannot be saved"):
        trainer.save_checkpoint(tmp_path / "c", [callbacks[0], _Counter()])
    assert not (tmp_path / "c").exists()
    # fit checks before the first step, not after an epoch of work.
    with pytest.raises(TypeError, match="_Counter"):
        trainer.fit(x, y, callbacks=[_Counter()], checkpoint=tmp_path / "c", verbose=False)
    assert trainer.steps_done == 0


def test_redo_with_a_callable_initializer_cannot_be_saved(tmp_path):
    x, _ = digits_like(64)
    trainer, _ = new_run("adam", False, x)
    redo = rs.ReDo(init=lambda fan_in, fan_out, rng: np.zeros((fan_in, fan_out)))
    with pytest.raises(TypeError, match="by name"):
        trainer.save_checkpoint(tmp_path / "c", [redo])


class _EpochLog(rs.Callback):
    """A user callback registered for checkpoints."""

    def __init__(self):
        self.losses = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.losses.append(logs["loss"])

    def state_dict(self):
        return rs.CallbackState({"losses": self.losses}, {"marker": np.arange(3)})

    @classmethod
    def from_state_dict(cls, state):
        log = cls()
        log.losses = list(state.settings["losses"])
        assert np.array_equal(state.arrays["marker"], np.arange(3))
        return log


def test_a_registered_callback_class_round_trips(tmp_path):
    rs.checkpoint.register_callback("tests.EpochLog", _EpochLog)
    x, y = digits_like(64)
    trainer, _ = new_run("adam", False, x)
    log = _EpochLog()
    trainer.fit(x, y, epochs=2, callbacks=[log], verbose=False)
    trainer.save_checkpoint(tmp_path / "c", [log])
    _, (loaded,) = rs.Trainer.load_checkpoint(tmp_path / "c")
    assert isinstance(loaded, _EpochLog) and loaded.losses == log.losses


def test_a_trainer_pickles_after_training_and_goes_on_identically():
    x, y = digits_like(100)
    trainer, _ = new_run("sgd_momentum", False, x)
    trainer.fit(x, y, epochs=1, verbose=False)
    copy = pickle.loads(pickle.dumps(trainer))
    trainer.fit(x, y, epochs=1, verbose=False)
    copy.fit(x, y, epochs=1, verbose=False)
    for p, q in zip(trainer.model.parameters(), copy.model.parameters()):
        assert np.array_equal(p, q)
    assert trainer.history.loss == copy.history.loss


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("change", ["narrower", "one more layer", "a first hidden layer"])
def test_a_checkpoint_saved_after_the_layers_changed_resumes_as_the_run_goes_on(
        tmp_path, optimizer, change):
    # The next step starts the state of a changed layer afresh (optimizer
    # moments, unit statistics); the checkpoint holds what that step will see.
    x, y = digits_like(120)
    model = rs.MLP([64, 10] if change == "a first hidden layer" else [64, 32, 10], seed=0)
    trainer = rs.Trainer(model, optimizer=OPTIMIZERS[optimizer](), batch_size=30, seed=0)
    trainer.fit(x, y, epochs=1, verbose=False)
    rng = np.random.default_rng(1)
    if change == "narrower":
        model.layers[0].weight = rng.normal(0, 0.1, (64, 16)).astype(np.float32)
        model.layers[0].bias = np.zeros(16, np.float32)
        model.layers[1].weight = rng.normal(0, 0.1, (16, 10)).astype(np.float32)
    elif change == "one more layer":
        model.layers.insert(1, rs.Dense(rng.normal(0, 0.1, (32, 32)).astype(np.float32),
                                        np.zeros(32, np.float32), model.layers[0].activation))
    else:  # the model had no hidden layer, so no unit statistics
        relu = rs.MLP([2, 2, 2]).layers[0].activation
        model.layers.insert(0, rs.Dense(rng.normal(0, 0.1, (64, 64)).astype(np.float32),
                                        np.zeros(64, np.float32), relu))
    trainer.save_checkpoint(tmp_path / "changed.npz")
    resumed, _ = rs.Trainer.load_checkpoint(tmp_path / "changed.npz")
    trainer.fit(x, y, epochs=1, verbose=False)
    resumed.fit(x, y, epochs=1, verbose=False)
    for a, b in zip(model.parameters(), resumed.model.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(trainer.unit_stats, resumed.unit_stats, strict=True):
        np.testing.assert_array_equal(a.firing_counts, b.firing_counts)
