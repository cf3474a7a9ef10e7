"""Misuse of the training step ends in a clean exception or a right answer, never a crash.

Each test is the reproducer of a crash (or a lost update) that the step once had.
"""

import os
import tempfile
import threading

import numpy as np
import pytest

import reluscope as rs
from reluscope import _core


def classification_data(n=64, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, n_features)).astype(np.float32),
            rng.integers(0, n_classes, n))


def run_in_threads(target, n_threads=2):
    errors = []

    def guarded():
        try:
            target()
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=guarded) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a stepping thread hung"
    assert not errors, errors


@pytest.mark.parametrize("optimizer", [lambda: rs.SGD(lr=0.05, momentum=0.9),
                                       lambda: rs.Adam(lr=1e-2)])
def test_two_threads_stepping_one_trainer_lose_no_update(optimizer):
    # The same full batch every step, so any order of the 2 x 150 steps gives
    # the weights of 300 steps in a row.
    x, y = classification_data()
    shared = rs.Trainer(rs.MLP([5, 16, 3], seed=1), optimizer=optimizer())
    alone = rs.Trainer(rs.MLP([5, 16, 3], seed=1), optimizer=optimizer())

    def steps():
        for _ in range(150):
            shared.step(x, y)

    run_in_threads(steps)
    for _ in range(300):
        alone.step(x, y)
    assert shared.steps_done == 300 == shared.optimizer.steps
    for a, b in zip(shared.model.parameters(), alone.model.parameters()):
        np.testing.assert_array_equal(a, b)
    shared.flush_last_firing()
    alone.flush_last_firing()
    for a, b in zip(shared.last_firing, alone.last_firing):
        assert a.tobytes() == b.tobytes()  # bitwise: unwritten fields are NaN


def core_step(model, optimizer_state=None):
    """A bare _core.TrainStep over the model's arrays, with plain SGD."""
    specs = [_core.LayerSpec(layer.weight, layer.bias, layer.activation.kind)
             for layer in model.layers]
    return _core.TrainStep(specs, _core.Loss.cross_entropy)


def test_two_threads_running_one_core_step_are_serialized():
    x, y = classification_data()
    model, alone = rs.MLP([5, 16, 3], seed=2), rs.MLP([5, 16, 3], seed=2)
    settings = _core.StepSettings(_core.OptimizerSettings(_core.OptimizerKind.sgd, 0.05), 1)
    step = core_step(model)

    def steps():
        for _ in range(100):
            assert step.run(_core.Batch.labelled(x, y), settings).applied

    run_in_threads(steps)
    lone_step = core_step(alone)
    for _ in range(200):
        lone_step.run(_core.Batch.labelled(x, y), settings)
    for a, b in zip(model.parameters(), alone.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(os.environ.get("RELUSCOPE_SANITIZED") == "1",
                    reason="AddressSanitizer's allocator ends the process on an allocation "
                           "it cannot satisfy instead of throwing std::bad_alloc")
def test_a_step_that_runs_out_of_memory_leaves_the_trainer_usable():
    # The hidden layer's workspace for 2**24 rows is 2**45 floats (128 TiB):
    # no machine grants it, whatever its overcommit policy.
    wide = 2 ** 21
    model = rs.MLP([1, wide, 2], seed=3, init="normal", init_params={"std": 0.01})
    reference = rs.MLP.from_weights(model.get_weights())
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.1), track_firing=False,
                         track_deaths=False)
    twin = rs.Trainer(reference, optimizer=rs.SGD(lr=0.1), track_firing=False,
                      track_deaths=False)
    x = np.array([[0.5], [-1.0], [2.0]], np.float32)
    y = np.array([0, 1, 0])
    assert trainer.step(x, y) == twin.step(x, y)
    huge_x = np.zeros((2 ** 24, 1), np.float32)
    with pytest.raises(MemoryError):
        trainer.step(huge_x, np.zeros(2 ** 24, np.int64))
    del huge_x
    assert trainer.step(x, y) == twin.step(x, y)
    for a, b in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(a, b)


def test_released_workspaces_are_allocated_again():
    x, y = classification_data()
    model, twin = rs.MLP([5, 16, 3], seed=4), rs.MLP([5, 16, 3], seed=4)
    settings = _core.StepSettings(_core.OptimizerSettings(_core.OptimizerKind.sgd, 0.05), 1)
    step, twin_step = core_step(model), core_step(twin)
    for _ in range(3):
        first = step.run(_core.Batch.labelled(x, y), settings)
        step.release()
        second = twin_step.run(_core.Batch.labelled(x, y), settings)
        assert first.loss == second.loss
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a, b)


def test_a_layer_of_width_zero_is_refused_by_the_step():
    specs = [_core.LayerSpec(np.zeros((5, 0), np.float32), np.zeros(0, np.float32),
                             _core.Activation.relu),
             _core.LayerSpec(np.zeros((0, 3), np.float32), np.zeros(3, np.float32),
                             _core.Activation.identity)]
    with pytest.raises(ValueError, match=r"layer 0 weight has shape \(5, 0\).*at least one"):
        _core.TrainStep(specs, _core.Loss.cross_entropy)


def test_a_weight_resized_in_place_after_the_step_was_built_is_refused():
    x, y = classification_data()
    model = rs.MLP([5, 16, 3], seed=5)
    step = core_step(model)
    settings = _core.StepSettings(_core.OptimizerSettings(_core.OptimizerKind.sgd, 0.05), 1)
    assert step.run(_core.Batch.labelled(x, y), settings).applied
    model.layers[0].weight.resize((500, 16), refcheck=False)
    with pytest.raises(ValueError, match="layer 0 weight was reallocated or reshaped"):
        step.run(_core.Batch.labelled(x, y), settings)
    with pytest.raises(ValueError, match="layer 0 weight was reallocated or reshaped"):
        step.flush_last_firing()


def test_a_weight_made_read_only_after_the_step_was_built_is_refused():
    x, y = classification_data()
    model = rs.MLP([5, 16, 3], seed=5)
    step = core_step(model)
    settings = _core.StepSettings(_core.OptimizerSettings(_core.OptimizerKind.sgd, 0.05), 1)
    model.layers[1].bias.flags.writeable = False
    with pytest.raises(ValueError, match="layer 1 bias is no longer a writeable"):
        step.run(_core.Batch.labelled(x, y), settings)


def test_cohort_ids_edited_after_the_step_was_built_are_checked_at_each_run():
    x, y = classification_data()
    model = rs.MLP([5, 16, 3], seed=6)
    optimizer = rs.Adam(lr=1e-2)
    trainer = rs.Trainer(model, optimizer=optimizer)
    trainer.step(x, y)
    optimizer.reset_elements(0, (slice(None), [1, 2]))
    trainer.step(x, y)
    optimizer.state[0].cohort[0, 0] = 7  # no cohort 7 exists
    with pytest.raises(ValueError, match="names a cohort beyond cohort_start"):
        trainer.step(x, y)
    optimizer.state[0].cohort[0, 0] = -1
    with pytest.raises(ValueError, match="cohort ids must be >= 0"):
        trainer.step(x, y)


def test_a_hidden_pre_activation_that_overflows_to_nan_stops_the_step():
    # 3e38 * 2 overflows: the products are +Inf and -Inf, their sum NaN. The
    # ReLU once mapped that NaN to 0, and the step trained on a unit silenced
    # by overflow; now the NaN reaches the loss and the step is refused.
    model = rs.MLP.from_weights([(np.full((2, 3), 2.0, np.float32), np.zeros(3, np.float32)),
                                 (np.ones((3, 2), np.float32), np.zeros(2, np.float32))])
    before = model.get_weights()
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.1))
    x = np.array([[3e38, -3e38], [1.0, 2.0]], np.float32)
    with pytest.raises(rs.TrainingDiverged,
                       match="loss became nan at step 1.*layer 0 has NaN or Inf pre-act.*"
                             "inputs are too large"):
        trainer.step(x, np.array([0, 1]))
    for (w, b), (w0, b0) in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(b, b0)
    assert trainer.steps_done == 0


def test_a_step_with_a_nan_weight_names_the_weight_not_the_learning_rate():
    model = rs.MLP([3, 4, 2], seed=7)
    model.layers[1].weight[2, 1] = np.nan
    trainer = rs.Trainer(model)
    with pytest.raises(rs.TrainingDiverged,
                       match=r"layers\[1\]\.weight holds 1 NaN or Inf value") as error:
        trainer.step(np.ones((5, 3), np.float32), np.zeros(5, np.int64))
    assert "learning rate" not in str(error.value)


def test_a_thread_count_beyond_a_c_int_is_capped_too():
    previous = rs.get_num_threads()
    try:
        with pytest.warns(RuntimeWarning, match="asked for 2147483648 threads"):
            assert rs.set_num_threads(2 ** 31) == rs.build_info()["available_processors"]
    finally:
        rs.set_num_threads(previous)


def test_a_checkpoint_saved_while_another_thread_steps_matches_one_step():
    # The save waits for the step in progress: the weights in the file are
    # those after some whole number of steps, never a mix of two.
    x, y = classification_data(n=256, n_features=20)
    model = rs.MLP([20, 300, 300, 3], seed=8)
    twin = rs.MLP.from_weights(model.get_weights())
    trainer = rs.Trainer(model, optimizer=rs.SGD(lr=0.01, momentum=0.9))
    reference = rs.Trainer(twin, optimizer=rs.SGD(lr=0.01, momentum=0.9))
    after = [twin.get_weights()]
    for _ in range(40):
        reference.step(x, y)
        after.append(twin.get_weights())
    stop = threading.Event()

    def steps():
        for _ in range(40):
            trainer.step(x, y)
        stop.set()

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.ckpt")
        worker = threading.Thread(target=steps)
        worker.start()
        saved = 0
        while not stop.is_set() or saved == 0:
            trainer.save_checkpoint(path)
            loaded, _ = rs.Trainer.load_checkpoint(path)
            for (w, b), (w_ref, b_ref) in zip(loaded.model.get_weights(),
                                              after[loaded.steps_done]):
                np.testing.assert_array_equal(w, w_ref)
                np.testing.assert_array_equal(b, b_ref)
            saved += 1
        worker.join(timeout=120)
