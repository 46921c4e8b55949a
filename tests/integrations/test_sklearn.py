"""scikit-learn: one run per outermost fit, params, training metrics, model snapshot, searches, CV functions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

import autolog
from autolog.backends.memory import MemoryBackend


@pytest.fixture
def iris():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _runs(store: MemoryBackend) -> list:
    return sorted(store.runs.values(), key=lambda r: r.start_time)


def test_one_run_per_fit_with_params_metrics_and_a_reloadable_model(memory_store: MemoryBackend, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model = LogisticRegression(C=0.5, max_iter=300).fit(x, y)
    (run,) = _runs(memory_store)
    assert run.status == "FINISHED" and run.name == "LogisticRegression"
    assert run.params["C"] == "0.5" and run.params["max_iter"] == "300"
    assert run.tags["autolog.integration"] == "sklearn"
    assert run.metrics["training_accuracy_score"] == pytest.approx((model.predict(x) == y).mean())
    assert set(run.metrics) == {
        "training_accuracy_score",
        "training_precision_score",
        "training_recall_score",
        "training_f1_score",
        "training_log_loss",
        "training_roc_auc",
    }
    loaded = autolog.load_model(run.id)
    assert type(loaded) is LogisticRegression
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_the_logged_model_is_the_state_at_the_end_of_fit(memory_store: MemoryBackend, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model = LogisticRegression(max_iter=300).fit(x, y)
    first_coef = model.coef_.copy()
    first_run = _runs(memory_store)[0]
    model.set_params(C=0.001).fit(x, y)  # a later refit by the user
    assert not np.allclose(model.coef_, first_coef)
    np.testing.assert_array_equal(autolog.load_model(first_run.id).coef_, first_coef)
    assert len(memory_store.runs) == 2


def test_regressor_and_clusterer_metrics(memory_store: MemoryBackend) -> None:
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs, make_regression
    from sklearn.linear_model import Ridge

    x, y = make_regression(n_samples=120, n_features=5, noise=1.0, random_state=0)
    Ridge().fit(x, y)
    xb, _ = make_blobs(n_samples=90, centers=3, random_state=0)
    KMeans(n_clusters=3, n_init=2, random_state=0).fit(xb)
    ridge, kmeans = _runs(memory_store)
    assert ridge.metrics["training_r2_score"] > 0.99
    assert ridge.metrics["training_root_mean_squared_error"] == pytest.approx(
        ridge.metrics["training_mean_squared_error"] ** 0.5
    )
    assert {"training_score", "training_silhouette_score", "training_davies_bouldin_score"} <= set(kmeans.metrics)


def test_training_metrics_use_a_bounded_sample(memory_store: MemoryBackend) -> None:
    from sklearn.linear_model import LinearRegression

    from autolog.integrations.sklearn import _metrics

    x = np.random.default_rng(0).normal(size=(_metrics.MAX_SAMPLE * 3, 3))
    y = x @ np.array([1.0, 2.0, 3.0])
    calls: list[int] = []

    class Counting(LinearRegression):
        def predict(self, x):  # type: ignore[no-untyped-def]
            calls.append(len(x))
            return super().predict(x)

    Counting().fit(x, y)
    assert calls == [_metrics.MAX_SAMPLE]


def test_training_metrics_leave_numpys_global_random_state_as_it_was(memory_store: MemoryBackend, iris) -> None:
    """DummyClassifier(strategy="stratified") predicts from numpy's global generator: the training metrics' predict
    must not move it, or every random number the script draws afterwards differs from a run without autolog."""
    from sklearn.dummy import DummyClassifier

    def fit_then_draw() -> tuple[Any, ...]:
        np.random.seed(0)
        model = DummyClassifier(strategy="stratified").fit(*iris)
        return (np.random.rand(3), np.random.standard_normal(2), model.predict(iris[0][:20]))

    logged = fit_then_draw()
    (run,) = _runs(memory_store)
    assert 0.2 < run.metrics["training_accuracy_score"] < 0.5  # the metrics did draw: about one in three right
    autolog.disable()
    for got, bare in zip(logged, fit_then_draw(), strict=True):
        np.testing.assert_array_equal(got, bare)


def test_training_metrics_can_be_turned_off(iris) -> None:
    from sklearn.linear_model import LogisticRegression

    store = MemoryBackend("memory:off")
    autolog.enable(backend=store, sync=True, training_metrics=False, log_models=False)
    LogisticRegression(max_iter=300).fit(*iris)
    (run,) = store.runs.values()
    assert run.metrics == {} and run.params["C"] == "1.0"
    assert store.artifacts == {}


def test_meta_estimators_log_one_run_with_flattened_params(memory_store: MemoryBackend, iris) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import StackingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, y = iris
    pipe = Pipeline(
        [
            ("prep", ColumnTransformer([("scale", StandardScaler(), [0, 1])], remainder="passthrough")),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    )
    pipe.fit(x, y)
    VotingClassifier([("lr", LogisticRegression(max_iter=300)), ("dt", DecisionTreeClassifier())]).fit(x, y)
    StackingClassifier([("dt", DecisionTreeClassifier())], cv=2).fit(x, y)
    pipe_run, vote_run, stack_run = _runs(memory_store)
    assert [r.name for r in _runs(memory_store)] == ["Pipeline", "VotingClassifier", "StackingClassifier"]
    assert pipe_run.params["clf__C"] == "1.0"
    assert pipe_run.params["prep__scale__with_mean"] == "True"
    assert pipe_run.params["steps"] == "[(prep, ColumnTransformer), (clf, LogisticRegression)]"
    assert vote_run.params["dt__max_depth"] == "None"
    assert stack_run.params["final_estimator"] == "None"


def test_a_param_object_without_a_repr_is_logged_by_its_settings_not_its_address(memory_store: MemoryBackend) -> None:
    """make_column_selector has object's repr ("<... object at 0x7f...>"): the same configuration would read as a
    different value in every run."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["x0", "x1", "y"])
    for _ in range(2):
        ColumnTransformer([("num", StandardScaler(), make_column_selector(pattern="^x"))]).fit(frame)
    first, second = _runs(memory_store)
    assert first.params["transformers"] == second.params["transformers"]
    assert first.params["transformers"] == "[(num, StandardScaler, make_column_selector(pattern=^x))]"


def test_params_equal_get_params_deep_including_overridden_get_params() -> None:
    """The per-class cache of parameter names gives what get_params(deep=True) gives; a class that overrides
    get_params is asked itself."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autolog.integrations.sklearn import _log

    class Custom(LogisticRegression):
        def get_params(self, deep=True):  # type: ignore[no-untyped-def]
            return {**super().get_params(deep), "extra": 1}

    pipe = make_pipeline(StandardScaler(), Custom(C=2.0))
    for estimator in (LogisticRegression(C=0.5), pipe, GridSearchCV(pipe, {"custom__C": [1.0]}), Custom()):
        assert _log._get_params(estimator) == estimator.get_params(deep=True)
    assert _log._param_names(Custom) is None
    assert _log.params_of(pipe)["custom__extra"] == 1


def test_fit_transform_and_fit_predict_are_runs_too(memory_store: MemoryBackend, iris) -> None:
    from sklearn.cluster import DBSCAN
    from sklearn.decomposition import PCA

    x, _ = iris
    PCA(n_components=2).fit_transform(x)
    DBSCAN(eps=0.5).fit_predict(x)
    assert [r.name for r in _runs(memory_store)] == ["PCA", "DBSCAN"]


def test_grid_search_parent_and_child_runs(memory_store: MemoryBackend, iris) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 1.0, 10.0]}, cv=3).fit(*iris)
    parent, *children = _runs(memory_store)
    assert parent.name == "GridSearchCV" and parent.parent_id is None
    assert parent.params["best_C"] == str(search.best_params_["C"])
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert memory_store.list_artifacts(parent.id) == ["cv_results.json", "model"]
    assert len(children) == 3 and {c.parent_id for c in children} == {parent.id}
    assert sorted(c.params["C"] for c in children) == ["0.01", "1.0", "10.0"]
    for child in children:
        i = int(child.tags["autolog.candidate"])
        assert child.metrics["mean_test_score"] == pytest.approx(search.cv_results_["mean_test_score"][i])


def test_max_child_runs_keeps_the_best_candidates(iris) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV

    store = MemoryBackend("memory:children")
    autolog.enable(backend=store, sync=True, max_child_runs=2)
    grid = {"C": [0.001, 0.01, 0.1, 1.0]}
    search = RandomizedSearchCV(LogisticRegression(max_iter=300), grid, n_iter=4, cv=2, random_state=0).fit(*iris)
    children = [r for r in store.runs.values() if r.parent_id is not None]
    assert len(children) == 2
    best = sorted(search.cv_results_["rank_test_score"])[:2]
    assert sorted(c.metrics["rank_test_score"] for c in children) == [float(b) for b in best]


def test_a_search_of_several_scorers_keeps_the_best_of_the_refit_one(iris) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    store = MemoryBackend("memory:multimetric")
    autolog.enable(backend=store, sync=True, max_child_runs=2)
    grid = {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}
    scoring = {"acc": "accuracy", "f1": "f1_macro"}
    search = GridSearchCV(LogisticRegression(max_iter=300), grid, cv=2, scoring=scoring, refit="f1").fit(*iris)
    assert "rank_test_score" not in search.cv_results_
    children = [r for r in store.runs.values() if r.parent_id is not None]
    best = sorted(search.cv_results_["rank_test_f1"])[:2]
    assert sorted(c.metrics["rank_test_f1"] for c in children) == [float(b) for b in best]


def test_cv_results_leave_a_param_a_candidate_does_not_have_empty(memory_store: MemoryBackend) -> None:
    """A grid of several dicts: cv_results_ masks the params of the other dicts; the artifact says null, not 0."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    x, y = make_classification(n_samples=120, n_features=4, random_state=0)
    grid = [
        {"clf": [LogisticRegression()], "clf__C": [0.1, 1.0]},
        {"clf": [DecisionTreeClassifier(random_state=0)], "clf__max_depth": [2, None]},
    ]
    GridSearchCV(Pipeline([("clf", LogisticRegression())]), grid, cv=2).fit(x, y)
    parent = next(r for r in memory_store.runs.values() if r.parent_id is None)
    table = json.loads(memory_store.download_artifact(parent.id, "cv_results.json").read_text())
    assert table["param_clf__C"] == [0.1, 1.0, None, None]
    assert table["param_clf__max_depth"] == [None, None, 2, None]


def test_halving_search_logs_one_parent(memory_store: MemoryBackend, iris) -> None:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    search = HalvingGridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3, 4]}, cv=2)
    search.fit(*iris)
    parents = [r for r in memory_store.runs.values() if r.parent_id is None]
    children = [r for r in memory_store.runs.values() if r.parent_id is not None]
    assert [p.name for p in parents] == ["HalvingGridSearchCV"]
    assert len(children) == len(search.cv_results_["params"])


def test_cross_validation_functions_log_one_run_with_per_fold_scores(memory_store: MemoryBackend, iris) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score, cross_validate, learning_curve

    x, y = iris
    scores = cross_val_score(LogisticRegression(max_iter=300), x, y, cv=4)
    cross_validate(LogisticRegression(max_iter=300), x, y, cv=3, return_train_score=True)
    learning_curve(LogisticRegression(max_iter=300), x, y, cv=3, train_sizes=[0.5, 1.0])
    a, b, c = _runs(memory_store)
    assert [r.name for r in (a, b, c)] == ["cross_val_score", "cross_validate", "learning_curve"]
    history = autolog.get_metric_history(a.id, "cv_score")
    assert [(step, value) for step, value, _ in history] == [(i, pytest.approx(s)) for i, s in enumerate(scores)]
    assert a.params["estimator__max_iter"] == "300" and a.params["cv"] == "4"
    assert len(autolog.get_metric_history(b.id, "train_score")) == 3 and "test_score_mean" in b.metrics
    assert len(autolog.get_metric_history(c.id, "test_score_mean")) == 2


def test_user_exception_propagates_unchanged_and_the_run_fails(memory_store: MemoryBackend, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    error = RuntimeError("user code failed")

    class Failing(LogisticRegression):
        def fit(self, x, y):  # type: ignore[no-untyped-def]
            raise error

    with pytest.raises(RuntimeError) as info:
        Failing().fit(*iris)
    assert info.value is error
    (run,) = memory_store.runs.values()
    assert run.status == "FAILED"


def test_user_started_run_is_joined_not_ended(memory_store: MemoryBackend, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    with autolog.start_run("mine") as mine:
        LogisticRegression(max_iter=300).fit(*iris)
        assert not mine.ended
    (run,) = memory_store.runs.values()
    assert run.name == "mine" and run.params["C"] == "1.0" and run.status == "FINISHED"


def test_enable_before_and_after_import_and_disable_restores(iris) -> None:
    from sklearn.linear_model import LogisticRegression

    original_fit = LogisticRegression.__dict__["fit"]
    store = MemoryBackend("memory:after-import")
    autolog.enable(backend=store, sync=True)
    LogisticRegression(max_iter=300).fit(*iris)
    assert len(store.runs) == 1 and LogisticRegression.__dict__["fit"] is not original_fit
    autolog.disable()
    assert LogisticRegression.__dict__["fit"] is original_fit
    LogisticRegression(max_iter=300).fit(*iris)
    assert len(store.runs) == 1
    autolog.enable(backend=store, sync=True)  # and on again
    LogisticRegression(max_iter=300).fit(*iris)
    assert len(store.runs) == 2


def test_enable_before_the_first_import_in_a_fresh_process(tmp_path) -> None:
    import subprocess
    import sys

    script = (
        "import autolog, sys\n"
        "autolog.enable(backend='memory:', sync=True)\n"
        "assert 'sklearn' not in sys.modules\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "DecisionTreeClassifier().fit(*load_iris(return_X_y=True))\n"
        "print(len(autolog.search_runs()), autolog.search_runs()[0].name)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["1", "DecisionTreeClassifier"]


def test_end_to_end_through_sqlite(sqlite_store: str, iris) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = iris
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    (run,) = autolog.search_runs()
    assert run.status == "FINISHED" and run.params["n_estimators"] == "5"
    np.testing.assert_array_equal(autolog.load_model(run.id).predict(x), model.predict(x))


@pytest.mark.parametrize("spool", [True, False])
def test_a_fit_waits_for_the_store_only_when_the_spool_is_off(tmp_path, iris, spool: bool) -> None:
    """With the spool on, the run's records are in the journal when fit returns: the fit does not wait for the
    store; reads and load_model still see the run and its model. With it off, the end of the fit waits."""
    from sklearn.linear_model import LogisticRegression

    from autolog.writer import Writer

    autolog.enable(backend=f"sqlite:///{tmp_path / 'runs.db'}", spool=spool, flush_interval=60)
    x, y = iris
    LogisticRegression(max_iter=300).fit(x, y)  # the writer is started
    flushes: list[float | None] = []
    original = Writer.flush

    def counting(self: Writer, timeout: float | None = None) -> bool:
        flushes.append(timeout)
        return original(self, timeout)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Writer, "flush", counting)
        model = LogisticRegression(C=0.5, max_iter=300).fit(x, y)
    assert len(flushes) == (0 if spool else 1)
    run = autolog.search_runs()[0]
    assert run.status == "FINISHED" and run.params["C"] == "0.5"
    np.testing.assert_array_equal(autolog.load_model(run.id).predict(x), model.predict(x))


def test_post_training_metrics_are_recorded_in_the_models_run(iris) -> None:
    from sklearn.metrics import accuracy_score  # imported before enable(): still traced

    store = MemoryBackend("memory:post")
    autolog.enable(backend=store, sync=True)
    from sklearn import metrics
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    x_train, X_test, y_train, y_test = x[::2], x[1::2], y[::2], y[1::2]
    model = LogisticRegression(max_iter=300).fit(x_train, y_train)
    pred = model.predict(X_test)
    first = accuracy_score(y_test, pred)
    f1 = metrics.f1_score(y_test, pred, average="macro")  # calls fbeta_score inside: logged once
    accuracy_score(y_test, pred)
    accuracy_score(y_test, y_test)  # not a prediction of a logged model: not recorded
    (run,) = store.runs.values()
    assert run.metrics["f1_score_test"] == pytest.approx(f1)
    history = autolog.get_metric_history(run.id, "accuracy_score_test")
    assert [(s, v) for s, v, _ in history] == [(0, pytest.approx(first)), (1, pytest.approx(first))]
    assert "fbeta_score_test" not in run.metrics
    autolog.disable()
    assert accuracy_score.__closure__[0].cell_contents is accuracy_score.__wrapped__  # the original is back


def test_a_metric_on_the_positive_class_column_of_predict_proba_is_recorded(memory_store: MemoryBackend) -> None:
    """``roc_auc_score(y, model.predict_proba(X)[:, 1])``: the usual binary call takes a column, a view of the
    array predict_proba returned."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score

    x, y = make_classification(n_samples=200, n_features=5, random_state=0)
    X_valid, y_valid = x[100:], y[100:]
    model = LogisticRegression().fit(x[:100], y[:100])
    auc = roc_auc_score(y_valid, model.predict_proba(X_valid)[:, 1])
    proba = model.predict_proba(X_valid)
    ap = average_precision_score(y_valid, proba[:, 1])
    roc_auc_score(y_valid, proba[:, 1].copy())  # a copy is not the model's prediction: not recorded
    (run,) = _runs(memory_store)
    assert autolog.get_metric_history(run.id, "roc_auc_score_valid")[0][1] == pytest.approx(auc)
    assert len(autolog.get_metric_history(run.id, "roc_auc_score_valid")) == 1
    assert run.metrics["average_precision_score_valid"] == pytest.approx(ap)


def test_post_training_metrics_can_be_turned_off(iris) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    store = MemoryBackend("memory:post-off")
    autolog.enable(backend=store, sync=True, post_training_metrics=False, training_metrics=False)
    x, y = iris
    accuracy_score(y, LogisticRegression(max_iter=300).fit(x, y).predict(x))
    (run,) = store.runs.values()
    assert run.metrics == {}


def _classifier(name: str):  # type: ignore[no-untyped-def]
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logistic": lambda: LogisticRegression(max_iter=300),
        "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "tree": lambda: DecisionTreeClassifier(max_depth=3),  # few leaves: tied probabilities
        "naive_bayes": GaussianNB,
        "hist_boosting": lambda: HistGradientBoostingClassifier(max_iter=5),
        "knn": lambda: KNeighborsClassifier(n_neighbors=7),  # not listed: its predict is called
        "sgd": lambda: SGDClassifier(loss="modified_huber", random_state=0),
    }[name]()


@pytest.mark.parametrize("name", ["logistic", "forest", "tree", "naive_bayes", "hist_boosting", "knn", "sgd"])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("per_row", ["c", "numpy"])
@pytest.mark.parametrize("label_kind", ["text", "int"])
def test_numpy_training_metrics_equal_sklearn_metrics(
    n_classes: int, name: str, per_row: str, label_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn import metrics
    from sklearn.datasets import make_classification

    from autolog.integrations.sklearn import _metrics

    if per_row == "numpy":
        monkeypatch.setattr(_metrics, "_C", None)
    elif _metrics._C is None:
        pytest.skip("the C extension is not built here (or AUTOLOG_PURE_PYTHON is set)")
    x, y = make_classification(n_samples=300, n_classes=n_classes, n_informative=4, flip_y=0.2, random_state=1)
    labels = np.array(["a", "b", "c"])[y] if label_kind == "text" else y  # ints 0..k-1: their own indices
    model = _classifier(name).fit(x, labels)
    got = _metrics.training_metrics(model, x, labels)
    if name == "logistic":  # the first of its kind proves the direct probabilities; the second uses them
        assert _metrics._proven_direct(model, x)
        assert _metrics.training_metrics(model, x, labels) == got
    pred, proba = model.predict(x), model.predict_proba(x)
    p, r, f, _ = metrics.precision_recall_fscore_support(labels, pred, average="weighted", zero_division=0)
    auc = (
        metrics.roc_auc_score(labels, proba[:, 1])
        if n_classes == 2
        else metrics.roc_auc_score(labels, proba, multi_class="ovr")
    )
    assert got == pytest.approx(
        {
            "training_accuracy_score": metrics.accuracy_score(labels, pred),
            "training_precision_score": p,
            "training_recall_score": r,
            "training_f1_score": f,
            "training_log_loss": metrics.log_loss(labels, proba),
            "training_roc_auc": auc,
        }
    )


@pytest.mark.parametrize("k", [2, 3, 5])
def test_per_row_passes_in_c_equal_the_numpy_ones(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts, log loss and AUC from the C passes equal numpy's, with tied scores, a NaN row, predicted labels
    that are no class (-1), and arrays the C code does not take (int32, Fortran order), which go numpy's way."""
    from autolog.integrations.sklearn import _metrics

    c_module = _metrics._C
    if c_module is None:
        pytest.skip("the C extension is not built here (or AUTOLOG_PURE_PYTHON is set)")
    rng = np.random.default_rng(k)
    n = 500
    proba = rng.integers(0, 4, size=(n, k)).astype(float) + 0.5  # few distinct values: many ties
    proba /= proba.sum(axis=1, keepdims=True)
    proba[7] = np.nan
    column = rng.integers(0, k, size=n)
    pred = rng.integers(-1, k, size=n)
    clean = np.delete(proba, 7, axis=0), np.delete(column, 7)

    def each() -> list[object]:
        return [
            _metrics._counts(column, None, k, proba),
            _metrics._counts(column, pred, k, proba),
            _metrics._counts(column.astype(np.int32), None, k, np.asfortranarray(proba)),
            _metrics._log_loss_sum(*clean),
            _metrics._log_loss_sum(proba, column),  # NaN
            _metrics._log_loss_sum(np.asfortranarray(clean[0]), clean[1].astype(np.int32)),
            [_metrics._auc(clean[0], c, clean[1]) for c in range(k)],
            [_metrics._auc(proba, c, column) for c in range(k)],  # the NaN row ranks last, as numpy sorts it
            _metrics._counts(column.astype(column.dtype.newbyteorder()), None, k, proba),  # the other byte order
        ]

    in_c = each()
    monkeypatch.setattr(_metrics, "_C", None)
    in_numpy = each()
    assert in_c[:3] == in_numpy[:3]
    assert in_c[3] == pytest.approx(in_numpy[3], rel=1e-12)
    assert np.isnan(in_c[4]) and np.isnan(in_numpy[4])
    assert in_c[5] == pytest.approx(in_numpy[5], rel=1e-12)
    assert in_c[6] == pytest.approx(in_numpy[6], rel=1e-12)
    assert in_c[7] == pytest.approx(in_numpy[7], rel=1e-12)
    assert in_c[8] == in_numpy[8] == in_numpy[0]
    with pytest.raises(TypeError):
        c_module.class_counts(column.astype(np.int32), None, proba, k)


def test_predict_is_called_unless_it_is_the_most_probable_class_by_construction(iris) -> None:
    """Predictions come from predict_proba only for the classes listed in MOST_PROBABLE; a subclass that overrides
    predict, or any other classifier, has its own predict called."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from autolog.integrations.sklearn import _metrics

    calls: list[int] = []

    class Shifted(LogisticRegression):
        def predict(self, x):  # type: ignore[no-untyped-def]
            calls.append(len(x))
            return super().predict(x)

    x, y = iris
    assert _metrics._predicts_most_probable(LogisticRegression)
    assert not _metrics._predicts_most_probable(Shifted)
    assert not _metrics._predicts_most_probable(SVC)
    _metrics.training_metrics(Shifted(max_iter=300).fit(x, y), x, y)
    assert calls == [len(x)]


def test_numpy_regression_metrics_equal_sklearn_metrics() -> None:
    from sklearn import metrics
    from sklearn.datasets import make_regression
    from sklearn.tree import DecisionTreeRegressor

    from autolog.integrations.sklearn import _metrics

    x, y = make_regression(n_samples=200, n_features=4, noise=5.0, random_state=0)
    model = DecisionTreeRegressor(max_depth=3).fit(x, y)
    pred = model.predict(x)
    assert _metrics.training_metrics(model, x, y) == pytest.approx(
        {
            "training_mean_squared_error": metrics.mean_squared_error(y, pred),
            "training_root_mean_squared_error": metrics.mean_squared_error(y, pred) ** 0.5,
            "training_mean_absolute_error": metrics.mean_absolute_error(y, pred),
            "training_r2_score": metrics.r2_score(y, pred),
        }
    )


def test_search_with_parallel_workers_still_logs_one_parent(memory_store: MemoryBackend, iris) -> None:
    """Thread workers do not see the search's context; their fits are still not runs (called by sklearn's code)."""
    from joblib import parallel_backend
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    with parallel_backend("threading"):
        GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2, n_jobs=2).fit(*iris)
    assert sorted(r.name for r in memory_store.runs.values()) == [
        "GridSearchCV",
        "GridSearchCV-candidate-0",
        "GridSearchCV-candidate-1",
    ]


def test_boosting_estimators_in_thread_workers_are_not_runs_of_their_own(memory_store: MemoryBackend) -> None:
    """The sklearn API of xgboost / lightgbm is patched by their integrations, not ours: a fold fitted in a joblib
    thread (no "in training" context there) must stand down all the same, while a direct fit stays a run."""
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    from joblib import parallel_backend
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV, cross_val_score

    x, y = make_classification(n_samples=120, n_features=4, random_state=0)
    with parallel_backend("threading", n_jobs=2):
        GridSearchCV(xgb.XGBClassifier(n_estimators=2, n_jobs=1), {"max_depth": [2, 3]}, cv=2).fit(x, y)
        cross_val_score(lgb.LGBMClassifier(n_estimators=2, verbose=-1, n_jobs=1), x, y, cv=2)
        xgb.XGBRFClassifier(n_estimators=2, n_jobs=1).fit(x, y)  # its fit calls super().fit: still the user's
    assert sorted((r.name, r.parent_id is None) for r in memory_store.runs.values()) == [
        ("GridSearchCV", True),
        ("GridSearchCV-candidate-0", False),
        ("GridSearchCV-candidate-1", False),
        ("XGBRFClassifier", True),
        ("cross_val_score", True),
    ]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("variant", ["plain", "float32", "no_intercept", "class_weight", "cv"])
def test_direct_logistic_proba_equals_predict_proba(n_classes: int, variant: str, monkeypatch) -> None:
    """A LogisticRegression's probabilities for the training metrics are computed without scikit-learn's input
    checks once the first fit of that kind has shown them equal to ``predict_proba`` exactly; then they still are."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    from autolog.integrations.sklearn import _metrics

    monkeypatch.setattr(_metrics, "_direct_ok", {})
    x, y = make_classification(n_samples=400, n_classes=n_classes, n_informative=4, random_state=2)
    if variant == "float32":
        x = x.astype(np.float32)
    model = {
        "plain": lambda: LogisticRegression(max_iter=300),
        "float32": lambda: LogisticRegression(max_iter=300),
        "no_intercept": lambda: LogisticRegression(fit_intercept=False, max_iter=300),
        "class_weight": lambda: LogisticRegression(class_weight="balanced", C=0.1, max_iter=300),
        "cv": lambda: LogisticRegressionCV(Cs=3, cv=3, max_iter=300),
    }[variant]().fit(x, y)
    expected = model.predict_proba(x)
    first = _metrics._direct_proba(model, x)  # proves the kind
    assert np.array_equal(first, expected)
    assert list(_metrics._direct_ok.values()) == [True]
    refit = model.set_params(**({"Cs": [0.5]} if variant == "cv" else {"C": 0.5})).fit(x[::-1], y[::-1])
    direct = _metrics._direct_proba(refit, x)  # the same kind: computed directly
    assert np.array_equal(direct, refit.predict_proba(x))
    assert not np.array_equal(direct, expected)  # it did use the refitted coefficients


def test_direct_logistic_proba_falls_back_where_it_is_not_proven_or_does_not_apply(iris, monkeypatch) -> None:
    from sklearn.linear_model import LogisticRegression

    from autolog.integrations.sklearn import _metrics

    monkeypatch.setattr(_metrics, "_direct_ok", {})
    x, y = iris
    model = LogisticRegression(max_iter=300).fit(x, y)

    class Shifted(LogisticRegression):  # decision_function overridden: predict_proba's result changes with it
        def decision_function(self, x):  # type: ignore[no-untyped-def]
            return super().decision_function(x) + np.arange(3)

    class Flat(LogisticRegression):  # the one-vs-rest normalisation overridden
        def _predict_proba_lr(self, x):  # type: ignore[no-untyped-def]
            return np.full((len(x), 3), 1 / 3)

    assert _metrics._direct_proba(Shifted(max_iter=300).fit(x, y), x) is None
    assert _metrics._direct_proba(Flat(max_iter=300).fit(x, y), x) is None
    assert _metrics._direct_proba(model, x.tolist()) is None  # not a numpy array: scikit-learn's own checks
    assert _metrics._direct_proba(model, x.astype(int)) is None
    monkeypatch.setattr(_metrics, "linear_proba", lambda xs, coef, intercept: np.zeros((len(xs), 3)))
    assert np.array_equal(_metrics._direct_proba(model, x), model.predict_proba(x))  # the check fails...
    assert list(_metrics._direct_ok.values()) == [False]
    assert _metrics._direct_proba(model, x) is None  # ...so that kind keeps calling predict_proba
    got = _metrics.training_metrics(model, x, y)
    monkeypatch.setattr(_metrics, "_direct_ok", {})
    monkeypatch.undo()
    assert got == _metrics.training_metrics(model, x, y)
    monkeypatch.setattr(_metrics, "_direct_ok", {})
    odd = LogisticRegression(max_iter=300).fit(x, y)
    odd.intercept_ = None  # the direct arithmetic fails: None (and that kind is not tried again)
    assert _metrics._direct_proba(odd, x) is None
    assert list(_metrics._direct_ok.values()) == [False]


@pytest.mark.parametrize("case", ["class_missing_from_truth", "single_class_in_truth", "odd_int_labels", "ties"])
def test_numpy_training_metrics_equal_sklearn_metrics_on_edge_cases(case: str) -> None:
    """The sample's truth may lack classes the classifier knows (or hold one class only); labels may be any sorted
    values; probabilities may tie. The numpy metrics still equal sklearn.metrics' (AUC only where it is defined)."""
    from sklearn import metrics
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from autolog.integrations.sklearn import _metrics

    x, y = make_classification(n_samples=300, n_classes=3, n_informative=4, flip_y=0.1, random_state=3)
    labels = np.array([3, 7, 10])[y]
    model = (DecisionTreeClassifier(max_depth=2) if case == "ties" else LogisticRegression(max_iter=300)).fit(x, labels)
    keep = {
        "class_missing_from_truth": labels != 7,
        "single_class_in_truth": labels == 10,
        "odd_int_labels": np.ones(len(labels), bool),
        "ties": np.ones(len(labels), bool),
    }[case]
    xs, truth = x[keep], labels[keep]
    got = _metrics.training_metrics(model, xs, truth)
    pred, proba = model.predict(xs), model.predict_proba(xs)
    p, r, f, _ = metrics.precision_recall_fscore_support(truth, pred, average="weighted", zero_division=0)
    expected = {
        "training_accuracy_score": metrics.accuracy_score(truth, pred),
        "training_precision_score": p,
        "training_recall_score": r,
        "training_f1_score": f,
        "training_log_loss": metrics.log_loss(truth, proba, labels=model.classes_),
    }
    if len(np.unique(truth)) == 3:
        expected["training_roc_auc"] = metrics.roc_auc_score(truth, proba, multi_class="ovr")
    assert got == pytest.approx(expected, rel=1e-12)
