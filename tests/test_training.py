"""Training end to end: it learns, it is reproducible, and divergence is caught."""

import numpy as np
import pytest

import reluscope as rs
from reluscope.demo import SENSIBLE_LR, train_once

pytest.importorskip("sklearn", reason="the digits data comes with scikit-learn (test extra)")
from reluscope.datasets import load_digits  # noqa: E402


def test_training_lowers_the_loss_and_learns_digits():
    run = train_once(SENSIBLE_LR, load_digits())
    assert run["diverged"] is None
    assert run["test_accuracy"] > 0.90


def test_loss_decreases_over_epochs():
    x_train, y_train, _, _ = load_digits()
    model = rs.MLP([64, 32, 10], seed=0)
    trainer = rs.Trainer(model, optimizer=rs.Adam(lr=1e-2), batch_size=64, seed=0)
    history = trainer.fit(x_train, y_train, epochs=5)
    assert history.epochs == 5
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.accuracy[-1] > history.accuracy[0]


def train_weights(seed):
    x_train, y_train, _, _ = load_digits()
    model = rs.MLP([64, 40, 30, 10], seed=seed)
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.05, momentum=0.9, nesterov=True),
                         batch_size=50, seed=seed)
    trainer.fit(x_train, y_train, epochs=3)
    return model.get_weights()


def test_same_seed_gives_identical_weights_after_training(num_threads):
    first, second = train_weights(5), train_weights(5)
    for (w1, b1), (w2, b2) in zip(first, second):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    other = train_weights(6)
    assert not np.array_equal(first[0][0], other[0][0])


def test_regression_with_mse():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 2))
    y = np.sin(2 * x[:, :1]) + x[:, 1:] ** 2
    model = rs.MLP([2, 32, 32, 1], seed=0)
    trainer = rs.Trainer(model, loss="mse", optimizer=rs.Adam(lr=1e-2), batch_size=32, seed=0)
    history = trainer.fit(x, y, epochs=30)
    assert history.accuracy is None
    assert history.loss[-1] < 0.1 * history.loss[0]
    assert trainer.evaluate(x, y)["loss"] < 0.02


def test_divergence_in_the_loss_keeps_the_last_finite_weights():
    model = rs.MLP.from_weights([(np.full((2, 3), 1e30), np.zeros(3)),
                                 (np.full((3, 2), 1e30), np.zeros(2))])
    before = model.get_weights()
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.1))
    with pytest.raises(rs.TrainingDiverged, match="step 1") as error:
        trainer.step(np.full((4, 2), 1e10), [0, 1, 0, 1])
    assert error.value.step == 1
    for (w, b), (w0, b0) in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(b, b0)


def test_divergence_in_an_update_is_not_applied():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)) * 100
    y = rng.standard_normal((64, 1)) * 1e3
    model = rs.MLP([4, 8, 1], seed=0)
    optimizer = rs.SGD(lr=1e36, momentum=0.5)
    trainer = rs.Trainer(model, loss="mse", optimizer=optimizer, batch_size=64, seed=0)
    before = model.get_weights()
    with pytest.raises(rs.TrainingDiverged) as error:
        trainer.fit(x, y, epochs=3)
    assert error.value.epoch is not None
    weights = model.get_weights()
    assert all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in weights)
    if error.value.step == 1:  # the very first update overflowed: nothing changed
        for (w, b), (w0, b0) in zip(weights, before):
            np.testing.assert_array_equal(w, w0)
            np.testing.assert_array_equal(b, b0)
    assert trainer.steps_done == error.value.step - 1


def test_callbacks_are_called_in_order():
    calls = []

    class Recorder(rs.Callback):
        def on_train_begin(self, trainer):
            calls.append("begin")

        def on_epoch_end(self, trainer, epoch, logs):
            calls.append((epoch, sorted(logs)))

        def on_train_end(self, trainer):
            calls.append("end")

    rs.Trainer(rs.MLP([2, 3, 2], seed=0), seed=0).fit(
        np.ones((5, 2)), [0, 1, 0, 1, 1], epochs=2, callbacks=[Recorder()])
    assert calls == ["begin", (1, ["accuracy", "loss"]), (2, ["accuracy", "loss"]), "end"]


def test_model_api_shapes():
    model = rs.MLP([64, 128, 128, 10], activation="relu", init="he_normal", seed=0)
    assert [layer.weight.shape for layer in model.layers] == [(64, 128), (128, 128), (128, 10)]
    assert all(layer.weight.dtype == np.float32 for layer in model.layers)
    x = np.random.default_rng(0).random((7, 64))
    assert model.forward(x).shape == (7, 10)
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), proba.argmax(axis=1))
    assert model.layers[-1].activation.name == "identity"
    assert repr(model) == "MLP(64-128-128-10, activation='relu')"


def test_progress_bar_shows_loss_and_silent_units(capsys):
    pytest.importorskip("tqdm", reason="the progress extra (installed by the test extra)")
    x_train, y_train, _, _ = load_digits()
    trainer = rs.Trainer(rs.MLP([64, 16, 10], seed=0), batch_size=64, seed=0)
    trainer.fit(x_train, y_train, epochs=1, verbose=True)
    err = capsys.readouterr().err
    assert "loss=" in err and "silent=" in err
    trainer.fit(x_train, y_train, epochs=1, verbose=False)
    trainer.fit(x_train, y_train, epochs=1)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
