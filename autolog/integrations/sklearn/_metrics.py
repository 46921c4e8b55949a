"""Training metrics of one scikit-learn fit: the usual metrics of the estimator's kind on a bounded sample of the
training data, computed before ``fit`` returns."""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any

from autolog import _native, patching
from autolog.integrations.sklearn._log import NOT_APPLICABLE

# The per-row passes in C (autolog/_speedups.c), where it was built: one call each in place of a dozen numpy calls
# on a thousand rows. None: the numpy code below, which gives the same values (tests/integrations/test_sklearn.py).
_C = _native.speedups if hasattr(_native.speedups, "class_counts") else None

MAX_SAMPLE = 1000  # rows used for training metrics: a large training set does not pay a second full predict


def sample(x: Any, y: Any) -> tuple[Any, Any]:
    """At most MAX_SAMPLE rows of (x, y): a fixed random subset (the same rows for the same row count).

    Not a copy when every row is used: the metrics are computed before ``fit`` returns, so the user cannot have
    changed ``x`` yet. numpy arrays are indexed directly; anything else goes through scikit-learn's indexing.
    """
    import numpy as np

    n = x.shape[0] if isinstance(x, np.ndarray) else _num_samples(x)
    if n <= MAX_SAMPLE:
        return x, y
    rows = _rows(n)
    if isinstance(x, np.ndarray) and (y is None or isinstance(y, np.ndarray)):
        # the same rows either way; ``take`` copies a C-ordered array's rows ~40% faster than indexing does
        xs = x.take(rows, axis=0) if x.flags.c_contiguous else x[rows]
        return xs, (None if y is None else y[rows])
    from sklearn.utils import _safe_indexing

    return _safe_indexing(x, rows), (None if y is None else _safe_indexing(y, rows))


def _num_samples(x: Any) -> int:
    from sklearn.utils.validation import _num_samples as count

    return int(count(x))


@functools.lru_cache(maxsize=8)
def _rows(n: int) -> Any:
    """MAX_SAMPLE sorted row numbers out of ``n``, drawn once per ``n`` (drawing costs more than the indexing)."""
    import numpy as np

    rows = np.sort(np.random.default_rng(0).choice(n, MAX_SAMPLE, replace=False))
    rows.flags.writeable = False
    return rows


def training_metrics(estimator: Any, x: Any, y: Any) -> dict[str, float]:
    """The usual metrics of the estimator's kind on a bounded sample of the training data."""
    xs, ys = sample(x, y)
    if ys is not None and _proven_direct(estimator, xs):
        # A logistic regression whose probabilities are computed here (proven equal to its own): no method of the
        # estimator runs, so there is no predict of ours to suppress, no random state to keep and no input check
        # to skip, and the three context managers for those are left out. (Should the direct computation fail after
        # all, ``_proba`` calls its predict_proba: it draws no random numbers, and its result never reaches a
        # metric function of the user's, so post-training metrics cannot count it either.)
        from sklearn.base import is_classifier

        if is_classifier(estimator):
            return _classifier(estimator, xs, ys)
    with _GlobalRandomState():
        return _training_metrics(estimator, x, xs, ys)


class _GlobalRandomState:
    """Puts numpy's global random state back as it was: a predict made for the metrics may draw from it
    (``DummyClassifier(strategy="stratified")`` with ``random_state=None`` does), and the user's later random numbers
    (splits, initialisations) must be what they would have been without autolog.

    The public ``get_state`` / ``set_state`` pair costs ~120 us a fit; the generator's state struct is copied instead
    (~1 us), through the bit generator's ctypes address, once its layout is checked against ``.state`` (else the
    public pair). Only the MT19937 key and position are kept: the legacy cached Gaussian is not reachable that way.
    """

    _size = 624 * 4 + 4  # mt19937_state: uint32 key[624]; int pos
    _checked: tuple[Any, Any] = (None, None)  # (the bit generator, its state struct as bytes in place, or None)

    def __enter__(self) -> None:
        from numpy.random import mtrand

        self.generator = generator = mtrand._rand
        bits = generator._bit_generator
        checked = _GlobalRandomState._checked
        if checked[0] is not bits:
            address = _state_address(bits, self._size)
            struct = None if address is None else (ctypes.c_char * self._size).from_address(address)
            checked = _GlobalRandomState._checked = (bits, struct)
        self.struct = struct = checked[1]
        if struct is not None:
            self.saved = struct.raw
        else:
            self.state = generator.get_state()

    def __exit__(self, *exc: object) -> None:
        struct = self.struct
        if struct is None:
            self.generator.set_state(self.state)
        elif struct.raw != self.saved:
            struct.raw = self.saved


def _state_address(bits: Any, size: int) -> int | None:
    """The address of an MT19937's state struct, if its first ``size`` bytes are the key and position ``.state``
    reports (else None)."""
    import numpy as np

    try:
        if type(bits).__name__ != "MT19937":
            return None
        address = int(bits.ctypes.state_address)
        raw = ctypes.string_at(address, size)
        state = bits.state["state"]
        key = np.frombuffer(raw[: size - 4], dtype=np.uint32)
        position = int.from_bytes(raw[-4:], sys.byteorder, signed=True)
        return address if bool((key == state["key"]).all()) and position == int(state["pos"]) else None
    except Exception:  # noqa: BLE001 - any surprise: the public pair
        return None


def _training_metrics(estimator: Any, x: Any, xs: Any, ys: Any) -> dict[str, float]:
    from sklearn import config_context
    from sklearn.base import is_classifier, is_regressor

    # assume_finite: the sample is training data that fit has just validated; checking it again in each predict
    # would cost more than the arithmetic of the predict itself
    with patching.suppress(), config_context(assume_finite=True):
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


# Classifiers whose ``predict`` is, by construction, the most probable class of their ``predict_proba`` (an argmax
# of the same scores, or of scores that predict_proba maps monotonically): {predict: the predict_proba it pairs
# with}. Their predictions are taken from predict_proba, which saves a second pass through scikit-learn's input
# validation. (Rounding can make two probabilities equal where the scores differed by ~1e-16; then the first class
# wins.) Any other classifier, or a subclass that overrides either method, gets its own predict called.
MOST_PROBABLE = {
    "sklearn.linear_model._base.LinearClassifierMixin.predict": "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.ensemble._forest.ForestClassifier.predict": "sklearn.ensemble._forest.ForestClassifier",
    "sklearn.tree._classes.BaseDecisionTree.predict": "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.naive_bayes._BaseNB.predict": "sklearn.naive_bayes._BaseNB",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier.predict": (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"
    ),
}


def _classifier(estimator: Any, xs: Any, ys: Any) -> dict[str, float]:
    import numpy as np

    truth = np.asarray(ys)
    if truth.ndim != 1:  # multi-output / multi-label: not these metrics
        return {}
    proba = _proba(estimator, xs)
    classes = np.asarray(getattr(estimator, "classes_", ()))
    try:
        pred = None
        if proba is None or not _predicts_most_probable(type(estimator)):
            pred = np.asarray(estimator.predict(xs))
            if pred.ndim != 1:
                return {}
        labels, true_idx, pred_idx = _encoded(classes, truth, pred, proba)
    except NOT_APPLICABLE:
        return {}
    out, present = _count_metrics(true_idx, pred_idx, len(labels), proba)
    if proba is not None:
        column = true_idx if labels is classes else _columns(classes, labels, true_idx)
        if column is not None:
            out.update(_proba_metrics(proba, column, present))
    return out


def _qualname(function: Any) -> str:
    function = getattr(function, "__wrapped__", function)  # the post-training metrics' wrapper
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"


def _predicts_most_probable(cls: type) -> bool:
    owner = MOST_PROBABLE.get(_qualname(getattr(cls, "predict", None)))
    return owner is not None and _qualname(getattr(cls, "predict_proba", None)) == f"{owner}.predict_proba"


def _proba(estimator: Any, xs: Any) -> Any:
    """``predict_proba(xs)`` as a float array with a column per class, or None (not available, or not that)."""
    import numpy as np

    if not hasattr(estimator, "predict_proba"):
        return None
    try:
        proba = _direct_proba(estimator, xs)
        if proba is None:
            proba = np.asarray(estimator.predict_proba(xs), dtype=float)
        n_classes = len(estimator.classes_)
    except (*NOT_APPLICABLE, KeyError):
        return None
    return proba if proba.ndim == 2 and proba.shape[1] == n_classes >= 2 else None


# -- predict_proba without scikit-learn's input checks ------------------------------------------------------------
# A LogisticRegression's predict_proba on the sample spends most of its time (~0.35 of ~0.5 ms) in scikit-learn's
# input validation, which the training data fit has just validated does not need. For a float numpy sample, the
# same arithmetic is done here: the scores ``xs @ coef_.T + intercept_`` (what ``decision_function`` computes for a
# dense array), then the logistic function for two classes or the softmax for more, as scikit-learn does. Which of
# those scikit-learn applies has changed between versions (``multi_class``), so the direct result is trusted only
# once it has equalled ``predict_proba`` exactly, checked on the first fit of each kind (class, number of classes,
# dtypes, ``multi_class`` and ``solver``): a kind whose check fails keeps calling ``predict_proba``.
_LINEAR_PROBA = "sklearn.linear_model._logistic.LogisticRegression.predict_proba"
_LINEAR_DECISION = "sklearn.linear_model._base.LinearClassifierMixin.decision_function"
_LINEAR_OVR = ("sklearn.linear_model._base.LinearClassifierMixin._predict_proba_lr", ".")  # "." where there is none
_direct_ok: dict[Any, bool] = {}  # kind -> the direct result equalled predict_proba's


def _direct_kind(estimator: Any, xs: Any) -> Any:
    """The kind (a key of ``_direct_ok``) whose probabilities ``_direct_proba`` would compute, or None."""
    import numpy as np

    cls = type(estimator)
    if type(xs) is not np.ndarray or xs.ndim != 2 or xs.dtype.kind != "f":
        return None
    if _qualname(getattr(cls, "predict_proba", None)) != _LINEAR_PROBA:
        return None
    coef = getattr(estimator, "coef_", None)
    if type(coef) is not np.ndarray or coef.ndim != 2 or coef.shape[1] != xs.shape[1]:
        return None
    if (
        _qualname(getattr(cls, "decision_function", None)) != _LINEAR_DECISION
        or _qualname(getattr(cls, "_predict_proba_lr", None)) not in _LINEAR_OVR
    ):
        return None
    try:
        kind = (
            cls,
            coef.shape[0],
            len(estimator.classes_),
            xs.dtype,
            coef.dtype,
            getattr(estimator, "multi_class", None),
            getattr(estimator, "solver", None),
        )
        hash(kind)
    except (TypeError, AttributeError):  # an unhashable multi_class or solver: not a kind we can remember
        return None
    return kind


def _proven_direct(estimator: Any, xs: Any) -> bool:
    """Whether the metrics of ``estimator`` on ``xs`` need no method of it: its probabilities are computed here
    (a kind proven equal) and its predictions are their most probable class."""
    kind = _direct_kind(estimator, xs)
    return kind is not None and _direct_ok.get(kind) is True and _predicts_most_probable(type(estimator))


def _direct_proba(estimator: Any, xs: Any) -> Any:
    """predict_proba(xs) computed directly (see above), or None where that does not apply or is not proven."""
    import numpy as np

    kind = _direct_kind(estimator, xs)
    if kind is None:
        return None
    proven = _direct_ok.get(kind)
    if proven is False:
        return None
    coef, intercept = estimator.coef_, getattr(estimator, "intercept_", None)
    try:
        proba = linear_proba(xs, coef, intercept)
    except (*NOT_APPLICABLE, FloatingPointError):  # an odd intercept_ (a subclass's): scikit-learn's own path
        _direct_ok[kind] = False
        return None
    if proven is None:  # the first of its kind: compare with scikit-learn's own
        expected = np.asarray(estimator.predict_proba(xs), dtype=float)
        _direct_ok[kind] = expected.shape == proba.shape and bool(np.array_equal(expected, proba))
        return expected
    return proba


def linear_proba(xs: Any, coef: Any, intercept: Any) -> Any:
    """A logistic regression's class probabilities: the logistic function of the score for one row of ``coef``
    (two classes), else the softmax of the scores (what scikit-learn's ``_predict_proba_lr`` and ``softmax`` do)."""
    import numpy as np
    from scipy.special import expit

    scores = xs @ coef.T + intercept
    if scores.shape[1] == 1:
        p = expit(scores.reshape(-1), out=scores.reshape(-1))
        out = np.empty((len(p), 2), dtype=p.dtype)  # np.stack([1 - p, p], axis=1), without its Python overhead
        out[:, 1] = p
        np.subtract(1, p, out=out[:, 0])
        return out
    scores -= scores.max(axis=1).reshape((-1, 1))
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1).reshape((-1, 1))
    return scores


def _encoded(classes: Any, truth: Any, pred: Any, proba: Any) -> tuple[Any, Any, Any]:
    """(labels, true_idx, pred_idx): the true and predicted labels as indices into the sorted ``labels`` (-1 for a
    predicted label that is none of them). ``pred`` None: the most probable class of ``proba``, left to
    ``_count_metrics`` (``pred_idx`` None) when the labels are ``classes``.

    ``labels`` is ``classes`` itself (the classifier's ``classes_``) when it is sorted and holds every true label,
    as scikit-learn's do: then proba's columns are the labels' indices and the most probable class is its column;
    otherwise the distinct true labels."""
    import numpy as np

    if _ascending(classes):
        true_idx = _own_indices(classes, truth)
        if true_idx is None:
            true_idx = _indices(classes, truth)
        if true_idx.min() >= 0:
            return classes, true_idx, None if pred is None else _indices(classes, pred)
    if pred is None:
        pred = classes.take(proba.argmax(axis=1))
    labels, true_idx = np.unique(truth, return_inverse=True)
    return labels, true_idx.reshape(-1), _indices(labels, pred)


def _own_indices(classes: Any, truth: Any) -> Any:
    """``truth`` itself when the classes are the integers 0..k-1 (sorted) and it is an int64 array of them: each
    label is its own index. None otherwise, or when a label is out of that range."""
    import numpy as np

    k = len(classes)
    if (
        classes.dtype.kind not in "iu"
        or truth.dtype != np.int64
        or truth.ndim != 1
        or not len(truth)
        or classes[0] != 0
        or classes[-1] != k - 1
    ):
        return None
    if truth.min() < 0 or truth.max() >= k:
        return None
    return truth


def _ascending(classes: Any) -> bool:
    import numpy as np

    try:
        return classes.ndim == 1 and len(classes) > 1 and bool(np.all(classes[1:] > classes[:-1]))
    except TypeError:  # labels of types that do not compare
        return False


def _indices(labels: Any, values: Any) -> Any:
    """Each value's index in the sorted ``labels``, -1 where it is not one of them (vectorised, no Python loop)."""
    import numpy as np

    at = np.searchsorted(labels, values)
    np.minimum(at, len(labels) - 1, out=at)
    return np.where(labels[at] == values, at, -1)


# The metrics below are computed with numpy rather than sklearn.metrics: its input validation costs milliseconds a
# call, more than the whole logging budget of a small fit. tests/integrations/test_sklearn.py checks that they
# equal sklearn.metrics' values.
def _count_metrics(true_idx: Any, pred_idx: Any, k: int, proba: Any) -> tuple[dict[str, float], int]:
    """Accuracy, and precision, recall and F1 averaged with support weights, zero_division=0 (sklearn's
    ``average="weighted"``), from per-label counts; and how many labels occur in the truth. ``pred_idx`` None: the
    most probable column of ``proba``. The sums over the labels run in Python: a few labels cost less that way
    than a dozen numpy calls on arrays of that length."""
    n = len(true_idx)
    tp, support, predicted = _counts(true_idx, pred_idx, k, proba)
    precision = recall = f1 = 0.0
    present = 0
    for t, s, q in zip(tp, support, predicted, strict=True):
        if s:  # a label with no support has no weight
            present += 1
            precision += t / q * s if q else 0.0
            recall += t
            f1 += 2 * t / (q + s) * s
    out = {
        "training_accuracy_score": sum(tp) / n,
        "training_precision_score": precision / n,
        "training_recall_score": recall / n,
        "training_f1_score": f1 / n,
    }
    return out, present


def _counts(true_idx: Any, pred_idx: Any, k: int, proba: Any) -> tuple[list[int], list[int], list[int]]:
    """(true positives, support, predicted) per label, as lists."""
    import numpy as np

    if _C is not None:
        try:
            return _C.class_counts(true_idx, pred_idx, proba, k)  # type: ignore[no-any-return]
        except (TypeError, ValueError):  # not int64 / float64 arrays: numpy's way
            pass
    if pred_idx is None:
        pred_idx = proba.argmax(axis=1)
    hit = pred_idx == true_idx
    tp = np.bincount(true_idx[hit], minlength=k).tolist()
    support = np.bincount(true_idx, minlength=k).tolist()
    predicted = np.bincount(pred_idx[pred_idx >= 0], minlength=k).tolist()
    return tp, support, predicted


def _proba_metrics(proba: Any, column: Any, present: int) -> dict[str, float]:
    """log loss and ROC AUC (one-vs-rest, macro, for more than two classes) from ``predict_proba``; ``column``:
    each row's true class as a column of ``proba``; ``present``: how many classes occur in the truth."""
    import numpy as np

    n, n_classes = proba.shape
    out = {"training_log_loss": -_log_loss_sum(proba, column) / n}
    if n_classes == 2 and present == 2:
        out["training_roc_auc"] = _auc(proba, 1, column)
    elif n_classes > 2 and present == n_classes:  # one-vs-rest, macro average
        out["training_roc_auc"] = float(np.mean([_auc(proba, c, column) for c in range(n_classes)]))
    return out


def _log_loss_sum(proba: Any, column: Any) -> float:
    """The sum over rows of log(each row's probability of its true class, the row normalised, clipped to [eps, 1])."""
    import numpy as np

    if _C is not None:
        try:
            return float(_C.log_loss_sum(proba, column))
        except (TypeError, ValueError):
            pass
    # each row's total as a matrix-vector product: ``proba.sum(axis=1)`` reduces along the short rows of a C-ordered
    # array, ~25 us for a thousand rows here; the order of the additions differs only in the last bit
    picked = proba[np.arange(len(proba)), column]
    picked /= proba @ np.ones(proba.shape[1])
    np.clip(picked, _EPS, 1, out=picked)
    np.log(picked, out=picked)
    return float(np.add.reduce(picked))


def _auc(proba: Any, c: int, column: Any) -> float:
    """ROC AUC of class ``c`` against the rest, scored by its column of ``proba``."""
    import numpy as np

    score = proba[:, c]
    if _C is not None:
        try:
            rank_sum, n_pos = _C.rank_sum(proba, c, np.argsort(score), column)
        except (TypeError, ValueError):
            pass
        else:
            n_neg = len(score) - n_pos
            return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return _binary_auc(column == c, score)


_EPS = 2.220446049250313e-16  # np.finfo(float).eps, what log_loss clips to


def _columns(classes: Any, labels: Any, true_idx: Any) -> Any:
    """``true_idx`` (indices into ``labels``) as columns of predict_proba (indices into ``classes``), or None when
    a true label is no class of the classifier."""
    import numpy as np

    try:
        order = np.argsort(classes)
        at = np.searchsorted(classes[order], labels)
        if at.max() >= len(classes) or np.any(classes[order][at] != labels):
            return None
    except TypeError:  # labels and classes of types that do not compare
        return None
    return order[at][true_idx]


def _binary_auc(positive: Any, score: Any) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties counted half (what sklearn's roc_auc_score gives).

    Ranks from one argsort; tied scores get their group's average rank (scipy's ``rankdata`` costs several times
    more for a thousand rows)."""
    import numpy as np

    order = np.argsort(score)
    ordered = score[order]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if (ordered[1:] == ordered[:-1]).any():
        _, inverse, counts = np.unique(ordered, return_inverse=True, return_counts=True)
        ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.reshape(-1)]  # average rank of each tie group
        rank_sum = float(ranks[positive[order]].sum())
    else:
        rank_sum = float(np.flatnonzero(positive[order]).sum() + n_pos)  # ranks are 1-based positions
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


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
