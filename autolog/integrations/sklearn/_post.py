"""Post-training metrics: a ``sklearn.metrics`` function called on predictions of a logged model is recorded in
that model's run as ``<metric>_<data set>`` (``accuracy_score_test`` for ``model.predict(X_test)``).

"However the metric function was imported": scikit-learn's metric functions are wrapped by its
``validate_params`` decorator, which calls the real function through a closure cell. We swap that cell's content,
so ``from sklearn.metrics import accuracy_score`` done before ``enable()`` is covered too; ``disable()`` puts the
original back. Predictions are remembered by identity (a weak reference: nothing is kept alive) when a logged
estimator's ``predict`` / ``predict_proba`` / ``decision_function`` returns them.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import weakref
from types import FrameType
from typing import Any

from autolog import _errors, patching, session
from autolog.patching import registry
from autolog.runs import ActiveRun

PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
PREDICTION_ARGUMENTS = ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred", "labels_pred")
_PREDICTION_SET = frozenset(PREDICTION_ARGUMENTS)
SITE = _errors.register_site("sklearn:post-training-metric")
PREDICT_SITE = _errors.register_site("sklearn:post-training-predict")

_logged: weakref.WeakKeyDictionary[Any, ActiveRun] = weakref.WeakKeyDictionary()  # estimator -> its run
_watched: weakref.WeakSet[type] = weakref.WeakSet()  # classes whose predict methods are patched
_predictions: dict[int, tuple[Any, ActiveRun, str]] = {}  # id(prediction) -> (weakref, run, data set name)
_swapped: list[tuple[Any, Any]] = []  # (closure cell, original function)
_in_metric: contextvars.ContextVar[bool] = contextvars.ContextVar("autolog_in_metric", default=False)
_counts: dict[tuple[str, str], int] = {}  # (run id, key) -> calls so far: the step of the next value


def enabled() -> bool:
    return session.options().post_training_metrics


def watch(estimator: Any, run: ActiveRun) -> None:
    """After a logged fit: remember the estimator's run and make its predictions traceable."""
    _logged[estimator] = run
    cls = type(estimator)
    if cls in _watched:  # its predict methods are patched already: skip the MRO walks and registry look-ups
        return
    for name in PREDICT_METHODS:
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is not None and owner is not object:
            registry.patch("sklearn", owner, name, _predict_wrapper)
    _watched.add(cls)


def _predict_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    if _logged and instance is not None and session.enabled() and patching.gate("sklearn"):
        run = _logged.get(instance)
        if run is not None:
            _errors.firewall(PREDICT_SITE, _remember, result, run, args, kwargs)
    return result


def _remember(result: Any, run: ActiveRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    key = id(result)

    def forget(_ref: Any) -> None:
        _predictions.pop(key, None)

    try:
        ref = weakref.ref(result, forget)
    except TypeError:  # a list or tuple: not weakly referenceable, not traced
        return
    data = args[0] if args else kwargs.get("X")
    _predictions[key] = (ref, run, _data_name(data))


def _data_name(data: Any) -> str:
    """The user's variable name for the data predicted on: ``X_test`` -> ``test``; ``data`` if there is none."""
    frame: FrameType | None = sys._getframe(3)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("autolog.", "wrapt", "sklearn.")):
        frame = frame.f_back
    if frame is None:
        return "data"
    for name, value in frame.f_locals.items():
        if value is data and not name.startswith("_"):
            for prefix in ("X_", "x_"):
                if name.startswith(prefix) and len(name) > len(prefix):
                    return name[len(prefix) :]
            return "data" if name in ("X", "x") else name
    return "data"


# -- the metric functions ---------------------------------------------------------------------------------------
def patch_metrics(module: Any) -> None:
    if _swapped:
        return
    for name in getattr(module, "__all__", ()):
        function = getattr(module, name, None)
        inner = getattr(function, "__wrapped__", None)
        if inner is None or not inspect.isfunction(function) or function.__closure__ is None:
            continue
        code = getattr(inner, "__code__", None)  # parameter names from the code object: inspect.signature is slow
        if code is None or not set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]) & _PREDICTION_SET:
            continue
        for cell in function.__closure__:
            if cell.cell_contents is inner:
                cell.cell_contents = _traced(inner)
                _swapped.append((cell, inner))


def unpatch_metrics() -> None:
    for cell, original in _swapped:
        cell.cell_contents = original
    _swapped.clear()
    _logged.clear()
    _watched.clear()
    _predictions.clear()


def _traced(function: Any) -> Any:
    name = function.__name__
    signature: list[inspect.Signature] = []  # computed on the first traced call, not at enable()

    @functools.wraps(function)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if not _predictions or _in_metric.get() or not patching.gate("sklearn"):
            return function(*args, **kwargs)
        token = _in_metric.set(True)  # f1_score calls fbeta_score...: the outermost call is the one logged
        try:
            result = function(*args, **kwargs)
        finally:
            _in_metric.reset(token)
        if not signature:
            signature.append(inspect.signature(function))
        _errors.firewall(SITE, _record, name, signature[0], args, kwargs, result)
        return result

    return traced


def _record(name: str, signature: inspect.Signature, args: Any, kwargs: Any, result: Any) -> None:
    bound = signature.bind_partial(*args, **kwargs).arguments
    for argument in PREDICTION_ARGUMENTS:
        entry = _prediction_of(bound.get(argument))
        if entry is None:
            continue
        _, run, data = entry
        if isinstance(result, (int, float)) or getattr(result, "ndim", None) == 0:
            key = f"{name}_{data}"
            step = _counts.get((run.id, key), 0)
            _counts[(run.id, key)] = step + 1
            run.log_metrics({key: result}, step=step)
        return


def _prediction_of(value: Any) -> tuple[Any, ActiveRun, str] | None:
    """The remembered prediction ``value`` is, or is a view of (``predict_proba(X)[:, 1]``, the positive class's
    column that ``roc_auc_score`` takes: numpy's ``base`` chain leads back to the array ``predict_proba`` returned)."""
    for _ in range(4):
        if value is None:
            return None
        entry = _predictions.get(id(value))
        if entry is not None and entry[0]() is value:
            return entry
        value = getattr(value, "base", None)
    return None
