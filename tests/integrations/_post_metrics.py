"""A check both boosting libraries' sklearn APIs share: post-training metrics go to the estimator's run."""

from __future__ import annotations

from typing import Any

import pytest

import autolog
from autolog.backends.memory import MemoryBackend


def check_post_training_metrics(store: MemoryBackend, classifier: Any, data: Any) -> None:
    """Fit ``classifier`` on part of ``data``; a metric on its test and train predictions is logged once each."""
    from sklearn.metrics import accuracy_score, f1_score

    x, y, _, _ = data
    x_train, y_train, x_test, y_test = x[:200], y[:200], x[200:], y[200:]
    model = classifier.fit(x_train, y_train)
    accuracy = accuracy_score(y_test, model.predict(x_test))
    f1_score(y_train, model.predict(x_train))
    (run,) = store.runs.values()
    post = {k: [(s, v) for s, v, _ in autolog.get_metric_history(run.id, k)] for k in run.metrics if "_score_" in k}
    assert post.keys() == {"accuracy_score_test", "f1_score_train"}
    assert post["accuracy_score_test"] == [(0, pytest.approx(accuracy))] and len(post["f1_score_train"]) == 1
