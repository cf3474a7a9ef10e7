"""The Keras path of docs/bridges.md: a Sequential of Dense layers through
MLP.from_weights.

Keras stores a Dense kernel as (in, out), reluscope's own layout, so the weights
need pairing up, not transposing. Keras needs a backend; the test runs it on
PyTorch's (installed by the test extra), in a fresh interpreter because Keras
reads the backend once, at import.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("needs keras and torch (its backend here), both in the test extra",
                allow_module_level=True)

CODE = textwrap.dedent("""
    import numpy as np
    import keras
    import reluscope as rs

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(17, activation="relu"),
                            keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    weights = net.get_weights()          # [kernel (in, out), bias (out,), ...]
    model = rs.MLP.from_weights(list(zip(weights[::2], weights[1::2])))
    assert model.layer_sizes == [5, 17, 3, 2], model.layer_sizes
    x = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    expected = np.asarray(net.predict(x, verbose=0))
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5, atol=1e-5)
    print("keras agrees")
""")


def test_keras_weights_paired_up_compute_what_keras_computes():
    env = dict(os.environ, KERAS_BACKEND="torch")
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                            timeout=300, check=False, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "keras agrees" in result.stdout
