"""The models the analysis entry points (scan, born_dead, the monitor) accept.

A reluscope MLP is used as it is; a fitted ``reluscope.sklearn`` estimator
goes through ``MLP.from_sklearn`` like scikit-learn's own. A PyTorch ``nn.Sequential`` and a fitted
scikit-learn MLP estimator are converted on the way in (``MLP.from_torch``,
``MLP.from_sklearn``). They are recognized by the library their class comes
from, read off the class's ``__module__``, so that neither library is imported
to ask: a user who has neither never pays for either.
"""

from __future__ import annotations

from .model import MLP

ACCEPTED = ("a reluscope.MLP, a PyTorch nn.Sequential of Linear layers or a fitted "
            "scikit-learn MLPClassifier/MLPRegressor")
CONVERTERS = ("MLP.from_torch(module), MLP.from_sklearn(estimator) or "
              "MLP.from_weights([(weight, bias), ...])")


def as_mlp(model, name: str = "model") -> MLP:
    """``model`` as a reluscope MLP (converted when it comes from PyTorch or scikit-learn)."""
    if isinstance(model, MLP):
        return model
    library = library_of(model)
    if library == "torch":
        return MLP.from_torch(model)
    if library == "sklearn":
        return MLP.from_sklearn(model)
    raise TypeError(f"{name} must be {ACCEPTED}, got {type(model).__name__}; "
                    f"build a reluscope.MLP with {CONVERTERS}")


def library_of(obj) -> str | None:
    """"torch" or "sklearn" when ``obj``'s class, or a class it derives from, is theirs."""
    for cls in type(obj).__mro__:
        top_package = (getattr(cls, "__module__", None) or "").partition(".")[0]
        if top_package in ("torch", "sklearn"):
            return top_package
    return None
