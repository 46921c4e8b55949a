"""What one scikit-learn fit logs besides its training metrics (``_metrics``): flattened params, the model snapshot."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

from autolog import models
from autolog.runs import ActiveRun

MODEL_FILE = "model.pkl"
# What get_params, a predict or a metric may raise when it does not apply to this estimator or target (multi-output,
# one class, a transformer with no predict...): that part is skipped, training is untouched.
NOT_APPLICABLE = (ValueError, TypeError, AttributeError, NotImplementedError, IndexError)


# -- params -------------------------------------------------------------------------------------------------------
def render(value: Any) -> Any:
    """A param value as readable text: estimators by class name, callables by qualified name, the rest as is."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "get_params") and not isinstance(value, type):
        return type(value).__name__
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, tuple) for v in value):
        return "[" + ", ".join("(" + ", ".join(str(render(x)) for x in item) + ")" for item in value) + "]"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}".lstrip(".")
    if type(value).__repr__ is object.__repr__:  # "<... object at 0x7f...>": a new address, so a new value, each run
        fields = getattr(value, "__dict__", None) or {}
        shown = ", ".join(f"{k}={render(v)}" for k, v in fields.items() if v is not None and not k.startswith("_"))
        return f"{type(value).__name__}({shown})"
    return value


def params_of(estimator: Any, prefix: str = "") -> dict[str, Any]:
    try:
        raw = _get_params(estimator)
    except NOT_APPLICABLE:  # a third-party estimator whose get_params breaks the BaseEstimator contract
        return {}
    return {f"{prefix}{key}": render(value) for key, value in raw.items()}


def _get_params(estimator: Any) -> dict[str, Any]:
    """``estimator.get_params(deep=True)``. For a class that keeps BaseEstimator's ``get_params`` and
    ``_get_param_names``, the same loop with the names cached per class: BaseEstimator reads them from the
    ``__init__`` signature with ``inspect`` on every call, most of the cost of a small estimator's params."""
    cls: type = type(estimator)
    names = _param_names(cls)
    if names is None:
        return dict(estimator.get_params(deep=True))
    out: dict[str, Any] = {}
    for key in names:
        value = getattr(estimator, key)
        if hasattr(value, "get_params") and not isinstance(value, type):
            out.update((f"{key}__{k}", v) for k, v in _get_params(value).items())
        out[key] = value
    return out


@functools.lru_cache(maxsize=512)
def _param_names(cls: type) -> tuple[str, ...] | None:
    """The parameter names of a class whose params BaseEstimator's own code lists, else None."""
    from sklearn.base import BaseEstimator

    own = getattr(cls, "_get_param_names", None)
    if getattr(cls, "get_params", None) is not BaseEstimator.get_params or getattr(own, "__func__", None) is not (
        BaseEstimator._get_param_names.__func__  # type: ignore[attr-defined]
    ):
        return None
    return tuple(cls._get_param_names())  # type: ignore[attr-defined]


# -- the model ----------------------------------------------------------------------------------------------------
def snapshot(estimator: Any) -> bytes:
    """The estimator's state now, as bytes (pickle; cloudpickle for lambdas and local classes)."""
    try:
        return pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        return cloudpickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def load_model(directory: Path) -> Any:
    """The loader named in the model's metadata: the estimator as it was at the end of its fit."""
    with (Path(directory) / MODEL_FILE).open("rb") as fh:
        return pickle.load(fh)


def log_model(run: ActiveRun, estimator: Any) -> None:
    import sklearn

    meta = {
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "sklearn_version": sklearn.__version__,
        "file": MODEL_FILE,
    }
    data = snapshot(estimator)
    run.log_model(models.bytes_model_artifact("sklearn", {MODEL_FILE: data}, data, f"{__name__}:load_model", meta))
