"""What one scikit-learn fit logs: flattened params, training metrics on a bounded sample, the model snapshot."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from autolog import models, patching
from autolog.runs import ActiveRun

MAX_SAMPLE = 1000  # rows used for training metrics: a large training set does not pay a second full predict
MODEL_FILE = "model.pkl"
# What a predict or a metric on the training sample may raise when the metric does not apply to this estimator or
# target (multi-output, one class, a transformer with no predict...): the metric is skipped, training is untouched.
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
    return value


def params_of(estimator: Any, prefix: str = "") -> dict[str, Any]:
    try:
        raw = estimator.get_params(deep=True)
    except NOT_APPLICABLE:  # a third-party estimator whose get_params breaks the BaseEstimator contract
        return {}
    return {f"{prefix}{key}": render(value) for key, value in raw.items()}


# -- training metrics ---------------------------------------------------------------------------------------------
def sample(x: Any, y: Any) -> tuple[Any, Any]:
    """At most MAX_SAMPLE rows of (x, y), a fixed random subset, copied (the user may change x after fit)."""
    import numpy as np
    from sklearn.utils import _safe_indexing
    from sklearn.utils.validation import _num_samples

    n = _num_samples(x)
    rows = np.arange(n)
    if n > MAX_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(n, MAX_SAMPLE, replace=False))
    return _safe_indexing(x, rows), (None if y is None else _safe_indexing(y, rows))


def training_metrics(estimator: Any, x: Any, y: Any) -> dict[str, float]:
    """The usual metrics of the estimator's kind on a bounded sample of the training data."""
    from sklearn.base import is_classifier, is_regressor

    xs, ys = sample(x, y)
    with patching.suppress():
        if is_classifier(estimator) and ys is not None:
            return _classifier(estimator, xs, ys)
        if is_regressor(estimator) and ys is not None:
            return _regressor(estimator, xs, ys)
        out = _score(estimator, xs, ys)
        if hasattr(estimator, "labels_") or getattr(estimator, "_estimator_type", None) == "clusterer":
            out.update(_clusterer(estimator, x, xs))
        return out


def _score(estimator: Any, xs: Any, ys: Any) -> dict[str, float]:
    if not hasattr(estimator, "score"):
        return {}
    try:
        return {"training_score": float(estimator.score(xs, ys) if ys is not None else estimator.score(xs))}
    except NOT_APPLICABLE:
        return {}


def _classifier(estimator: Any, xs: Any, ys: Any) -> dict[str, float]:
    from sklearn import metrics

    try:
        pred = estimator.predict(xs)
        out = {"training_accuracy_score": float(metrics.accuracy_score(ys, pred))}
        p, r, f, _ = metrics.precision_recall_fscore_support(ys, pred, average="weighted", zero_division=0)
        out.update(training_precision_score=float(p), training_recall_score=float(r), training_f1_score=float(f))
    except NOT_APPLICABLE:
        return {}
    out.update(_proba_metrics(estimator, xs, ys))
    return out


def _proba_metrics(estimator: Any, xs: Any, ys: Any) -> dict[str, float]:
    from sklearn import metrics

    if not hasattr(estimator, "predict_proba"):
        return {}
    try:
        proba = estimator.predict_proba(xs)
        out = {"training_log_loss": float(metrics.log_loss(ys, proba, labels=estimator.classes_))}
        if proba.ndim == 2 and proba.shape[1] == 2:
            out["training_roc_auc"] = float(metrics.roc_auc_score(ys, proba[:, 1]))
        elif proba.ndim == 2 and proba.shape[1] > 2:
            out["training_roc_auc"] = float(
                metrics.roc_auc_score(ys, proba, multi_class="ovr", labels=estimator.classes_)
            )
        return out
    except NOT_APPLICABLE:
        return {}


def _regressor(estimator: Any, xs: Any, ys: Any) -> dict[str, float]:
    from sklearn import metrics

    try:
        pred = estimator.predict(xs)
        mse = float(metrics.mean_squared_error(ys, pred))
        return {
            "training_mean_squared_error": mse,
            "training_root_mean_squared_error": mse**0.5,
            "training_mean_absolute_error": float(metrics.mean_absolute_error(ys, pred)),
            "training_r2_score": float(metrics.r2_score(ys, pred)),
        }
    except NOT_APPLICABLE:
        return {}


def _clusterer(estimator: Any, x: Any, xs: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    try:
        labels = estimator.predict(xs) if hasattr(estimator, "predict") else None
        if labels is None:
            labels_all = getattr(estimator, "labels_", None)
            if labels_all is None or len(labels_all) != len(x) or len(labels_all) > MAX_SAMPLE:
                return {}
            labels = labels_all
        k = len(np.unique(labels))
        if not 2 <= k < len(labels):
            return {}
        return {
            "training_silhouette_score": float(metrics.silhouette_score(xs, labels)),
            "training_calinski_harabasz_score": float(metrics.calinski_harabasz_score(xs, labels)),
            "training_davies_bouldin_score": float(metrics.davies_bouldin_score(xs, labels)),
        }
    except NOT_APPLICABLE:
        return {}


# -- the model ----------------------------------------------------------------------------------------------------
def snapshot(estimator: Any) -> bytes:
    """The estimator's state now, as bytes (pickle; cloudpickle for lambdas and local classes)."""
    try:
        return pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        return cloudpickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def _save(data: bytes, target: Path) -> None:
    (target / MODEL_FILE).write_bytes(data)


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
    run.log_model(models.model_artifact("sklearn", data, _save, f"{__name__}:load_model", meta))
