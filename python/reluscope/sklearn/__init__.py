"""scikit-learn estimators trained by reluscope's C++ core, with their dead units.

``MLPClassifier`` and ``MLPRegressor`` take scikit-learn's hyper-parameter
names where the meaning is the same (``alpha`` differs: see the class
docstrings) and work with ``clone``, ``Pipeline`` and ``GridSearchCV``. After
``fit`` they hold ``dead_units_`` and ``monitor_``, the ``DeadUnitMonitor`` of
the fit.

``import reluscope`` does not import this module; it needs scikit-learn >= 1.6
(``pip install reluscope[sklearn]``).
"""

from __future__ import annotations

try:
    from sklearn.utils.validation import validate_data  # noqa: F401  (new in 1.6)
except ImportError as error:
    raise ImportError("reluscope.sklearn needs scikit-learn >= 1.6: "
                      "pip install 'reluscope[sklearn]'") from error

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
