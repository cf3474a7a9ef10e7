"""What the entry points take as a model, and what ``import reluscope`` does not load."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import reluscope as rs
from reluscope.model_input import library_of

CONVERTERS = r"MLP.from_torch\(module\), MLP.from_sklearn\(estimator\) or MLP.from_weights"


@pytest.mark.parametrize("entry_point", [
    lambda model, x: rs.scan(model, x),
    lambda model, x: rs.born_dead(model, x),
    lambda model, x: rs.DeadUnitMonitor(x).observe(0, model),
], ids=["scan", "born_dead", "monitor.observe"])
@pytest.mark.parametrize("not_a_model", [None, {"weights": []}, [np.ones((3, 2))]],
                         ids=["None", "dict", "list"])
def test_anything_else_is_refused_with_the_converters_named(entry_point, not_a_model):
    x = np.random.default_rng(0).random((4, 3))
    with pytest.raises(TypeError, match=r"model must be a reluscope.MLP, a PyTorch "
                                        r"nn.Sequential .* or a fitted scikit-learn "
                                        r"MLPClassifier/MLPRegressor, got \w+; build a "
                                        r"reluscope.MLP with " + CONVERTERS):
        entry_point(not_a_model, x)


def test_the_trainer_refuses_to_train_a_silent_copy():
    with pytest.raises(TypeError, match=r"model must be a reluscope.MLP, got dict; the trainer "
                                        r"updates its model in place, so build one first with "
                                        + CONVERTERS):
        rs.Trainer({"weights": []})


def test_the_library_is_read_off_the_class_and_its_bases():
    def made_in(module_name):
        base = type("Base", (), {"__module__": module_name})
        return type("Subclass", (base,), {"__module__": "__main__"})()

    assert library_of(made_in("torch.nn.modules.container")) == "torch"
    assert library_of(made_in("sklearn.neural_network._multilayer_perceptron")) == "sklearn"
    assert library_of(made_in("torchvision.models")) is None
    assert library_of(made_in("sklearnish")) is None
    assert library_of(rs.MLP([2, 1], seed=0)) is None


def test_import_reluscope_loads_no_optional_library():
    # A fresh interpreter: this test session has imported them all already.
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import reluscope
        # Scanning an array and a generator of chunks needs no cluster library either.
        x = np.ones((4, 2), np.float32)
        reluscope.scan(reluscope.MLP([2, 3, 1], seed=0), x)
        reluscope.scan(reluscope.MLP([2, 3, 1], seed=0), (x for _ in range(2)))
        loaded = sorted(name for name in ("torch", "sklearn", "matplotlib", "dask",
                                          "distributed", "ray") if name in sys.modules)
        print("loaded:", loaded)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded: []" in result.stdout, result.stdout


def test_a_fitted_reluscope_estimator_is_scanned_through_its_model():
    pytest.importorskip("sklearn")
    from reluscope.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    classifier = MLPClassifier((8,), max_iter=3, random_state=0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted yet.*estimator.model_"):
        rs.scan(classifier, x)
    classifier.fit(x, y)
    np.testing.assert_array_equal(rs.scan(classifier, x).layers[0].firing_counts,
                                  rs.scan(classifier.model_, x).layers[0].firing_counts)
