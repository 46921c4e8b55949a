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
    import numpy as np

    try:
        pred = np.asarray(estimator.predict(xs))
        truth = np.asarray(ys)
        if pred.ndim != 1 or truth.ndim != 1:  # multi-output / multi-label: not these metrics
            return {}
        out = {"training_accuracy_score": float(np.mean(pred == truth))}
        out.update(_weighted_prf(truth, pred))
    except NOT_APPLICABLE:
        return {}
    out.update(_proba_metrics(estimator, xs, truth))
    return out


# The metrics below are computed with numpy rather than sklearn.metrics: its input validation costs milliseconds a
# call, more than the whole logging budget of a small fit. tests/integrations/test_sklearn.py checks that they
# equal sklearn.metrics' values.
def _weighted_prf(truth: Any, pred: Any) -> dict[str, float]:
    """precision, recall and F1 averaged with support weights, zero_division=0 (sklearn's average="weighted")."""
    import numpy as np

    labels, true_idx = np.unique(truth, return_inverse=True)
    at = np.clip(np.searchsorted(labels, pred), 0, len(labels) - 1)  # vectorised: no Python loop per row
    pred_idx = np.where(labels[at] == pred, at, -1)
    k = len(labels)
    hit = pred_idx == true_idx
    tp = np.bincount(true_idx[hit], minlength=k).astype(float)
    support = np.bincount(true_idx, minlength=k).astype(float)
    predicted = np.bincount(pred_idx[pred_idx >= 0], minlength=k).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    weights = support / support.sum()
    return {
        "training_precision_score": float(precision @ weights),
        "training_recall_score": float(recall @ weights),
        "training_f1_score": float(f1 @ weights),
    }


def _proba_metrics(estimator: Any, xs: Any, truth: Any) -> dict[str, float]:
    import numpy as np

    if not hasattr(estimator, "predict_proba"):
        return {}
    try:
        proba = np.asarray(estimator.predict_proba(xs), dtype=float)
        classes = list(estimator.classes_)
        if proba.ndim != 2 or proba.shape[1] != len(classes) or len(classes) < 2:
            return {}
        order = np.argsort(np.asarray(classes))
        at = np.searchsorted(np.asarray(classes)[order], truth)
        if np.any(at >= len(classes)) or np.any(np.asarray(classes)[order][at] != truth):
            return {}  # a training label the classifier does not know
        column = order[at]
    except (*NOT_APPLICABLE, KeyError, TypeError):
        return {}
    eps = np.finfo(float).eps
    rows = proba / proba.sum(axis=1, keepdims=True)
    out = {"training_log_loss": float(-np.mean(np.log(np.clip(rows[np.arange(len(column)), column], eps, 1))))}
    present = np.unique(column)
    if len(classes) == 2 and len(present) == 2:
        out["training_roc_auc"] = _binary_auc(column == 1, proba[:, 1])
    elif len(classes) > 2 and len(present) == len(classes):  # one-vs-rest, macro average
        out["training_roc_auc"] = float(np.mean([_binary_auc(column == c, proba[:, c]) for c in range(len(classes))]))
    return out


def _binary_auc(positive: Any, score: Any) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties counted half (what sklearn's roc_auc_score gives)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _regressor(estimator: Any, xs: Any, ys: Any) -> dict[str, float]:
    import numpy as np

    try:
        pred = np.asarray(estimator.predict(xs), dtype=float)
        truth = np.asarray(ys, dtype=float)
        if pred.shape != truth.shape:
            pred = pred.reshape(truth.shape)
    except NOT_APPLICABLE:
        return {}
    error = truth - pred
    mse = float(np.mean(error**2))
    total = float(np.sum((truth - truth.mean(axis=0)) ** 2))
    out = {
        "training_mean_squared_error": mse,
        "training_root_mean_squared_error": mse**0.5,
        "training_mean_absolute_error": float(np.mean(np.abs(error))),
    }
    if truth.ndim == 1 and total > 0:
        out["training_r2_score"] = 1.0 - float(np.sum(error**2)) / total
    return out


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
