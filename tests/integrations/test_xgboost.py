"""XGBoost: xgboost.train and the sklearn API, one run each, exact metric counts, early stopping, importance, model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import autolog
from autolog.backends.memory import MemoryBackend
from tests.integrations._post_metrics import check_post_training_metrics

xgb = pytest.importorskip("xgboost")

PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 2, "nthread": 1}


@pytest.fixture
def data():  # type: ignore[no-untyped-def]
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=300, n_features=6, random_state=0)
    return x, y, xgb.DMatrix(x[:200], y[:200]), xgb.DMatrix(x[200:], y[200:])


def test_train_logs_every_eval_metric_every_iteration(memory_store: MemoryBackend, data) -> None:
    _, _, dtrain, dvalid = data
    callbacks: list = []
    booster = xgb.train(PARAMS, dtrain, 12, evals=[(dtrain, "train"), (dvalid, "valid")], callbacks=callbacks)
    (run,) = memory_store.runs.values()
    assert run.status == "FINISHED" and run.tags["autolog.integration"] == "xgboost"
    assert run.params["max_depth"] == "2" and run.params["num_boost_round"] == "12"
    assert run.params["evals"] == "['train', 'valid']"
    keys = {"train-logloss", "train-error", "valid-logloss", "valid-error"}
    assert set(run.metrics) == keys
    histories = {k: autolog.get_metric_history(run.id, k) for k in keys}
    assert sum(len(h) for h in histories.values()) == 12 * 2 * 2
    assert [step for step, _, _ in histories["valid-logloss"]] == list(range(12))
    expected = booster.eval(dvalid, "valid", 11)
    assert f"valid-logloss:{run.metrics['valid-logloss']:.6f}" in expected
    assert callbacks == []  # the user's list is left as it was


def test_user_callbacks_list_is_the_same_object_with_the_same_contents(memory_store: MemoryBackend, data) -> None:
    _, _, dtrain, _ = data

    class Mine(xgb.callback.TrainingCallback):
        seen = 0

        def after_iteration(self, model, epoch, evals_log):  # type: ignore[no-untyped-def]
            Mine.seen += 1
            return False

    mine = Mine()
    callbacks = [mine]

    xgb.train(PARAMS, dtrain, 3, callbacks=callbacks)
    assert callbacks == [mine] and Mine.seen == 3


def test_early_stopping_values(memory_store: MemoryBackend, data) -> None:
    _, _, dtrain, dvalid = data
    booster = xgb.train(
        {**PARAMS, "eta": 1.0, "max_depth": 6},
        dtrain,
        200,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=2,
        verbose_eval=False,
    )
    (run,) = memory_store.runs.values()
    assert booster.num_boosted_rounds() < 200
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["best_score"] == pytest.approx(booster.best_score)
    assert run.metrics["stopped_iteration"] == booster.num_boosted_rounds() - 1
    assert len(autolog.get_metric_history(run.id, "valid-error")) == booster.num_boosted_rounds()


def _history(run_id: str, key: str) -> list[float]:
    return [value for _, value, _ in autolog.get_metric_history(run_id, key)]


def test_users_early_stopping_callback_does_not_hide_the_last_iteration(memory_store: MemoryBackend, data) -> None:
    """xgboost calls callbacks until one returns True: ours goes first in the copied list, so it sees the iteration
    the user's EarlyStopping stops at. The user's list reaches xgboost unchanged and is not mutated."""
    _, _, dtrain, dvalid = data
    stop = xgb.callback.EarlyStopping(rounds=2, save_best=True)
    callbacks = [stop]
    evals_result: dict = {}
    booster = xgb.train(
        {**PARAMS, "eta": 1.0, "max_depth": 6},
        dtrain,
        200,
        evals=[(dvalid, "valid")],
        evals_result=evals_result,
        callbacks=callbacks,
        verbose_eval=False,
    )
    (run,) = memory_store.runs.values()
    trained = len(evals_result["valid"]["logloss"])  # every iteration evaluated, the stopping one included
    assert callbacks == [stop] and len(callbacks) == 1
    assert booster.num_boosted_rounds() == booster.best_iteration + 1 < trained < 200  # save_best cut the model
    assert len(autolog.get_metric_history(run.id, "valid-logloss")) == trained
    assert _history(run.id, "stopped_iteration") == [trained - 1]
    assert _history(run.id, "best_iteration") == [booster.best_iteration]
    assert autolog.load_model(run.id).num_boosted_rounds() == booster.num_boosted_rounds()  # the model returned


@pytest.mark.parametrize("how", ["early_stopping_rounds", "save_best_callback"])
def test_sklearn_api_early_stopping_logs_each_value_once(memory_store: MemoryBackend, data, how: str) -> None:
    """The train call inside fit logs the early-stopping values, once; the estimator's booster (cut at the best
    iteration by save_best) is not where the stopped iteration is read."""
    x, y, _, _ = data
    if how == "early_stopping_rounds":
        stopping: dict = {"early_stopping_rounds": 2}
    else:
        stopping = {"callbacks": [xgb.callback.EarlyStopping(rounds=2, save_best=True)]}
    model = xgb.XGBClassifier(n_estimators=200, learning_rate=1.0, max_depth=6, n_jobs=1, **stopping)
    model.fit(x[:200], y[:200], eval_set=[(x[200:], y[200:])], verbose=False)
    (run,) = memory_store.runs.values()
    trained = len(model.evals_result()["validation_0"]["logloss"])
    assert model.best_iteration < trained - 1 and trained < 200
    assert len(autolog.get_metric_history(run.id, "validation_0-logloss")) == trained
    assert _history(run.id, "best_iteration") == [model.best_iteration]
    assert _history(run.id, "best_score") == [pytest.approx(model.best_score)]
    assert _history(run.id, "stopped_iteration") == [trained - 1]
    loaded = autolog.load_model(run.id)
    assert loaded.get_booster().num_boosted_rounds() == model.get_booster().num_boosted_rounds()


def test_importance_json_png_and_native_model(memory_store: MemoryBackend, data) -> None:
    _, _, dtrain, dvalid = data
    booster = xgb.train(PARAMS, dtrain, 5)
    (run,) = memory_store.runs.values()
    folder = Path(memory_store.download_artifact(run.id, "feature_importance"))
    names = sorted(p.name for p in folder.iterdir())
    kinds = ("weight", "gain", "cover", "total_gain", "total_cover")
    assert names == sorted([f"{k}.json" for k in kinds] + ["gain.png"])
    assert json.loads((folder / "gain.json").read_text()) == pytest.approx(booster.get_score(importance_type="gain"))
    assert (Path(memory_store.download_artifact(run.id, "model")) / "model.ubj").is_file()
    loaded = autolog.load_model(run.id)
    np.testing.assert_allclose(loaded.predict(dvalid), booster.predict(dvalid))


def test_sklearn_api_logs_one_run_not_two(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    model = xgb.XGBClassifier(n_estimators=7, max_depth=2, eval_metric=["logloss", "auc"], n_jobs=1)
    model.fit(x[:200], y[:200], eval_set=[(x[:200], y[:200]), (x[200:], y[200:])], verbose=False)
    (run,) = memory_store.runs.values()
    assert run.name == "XGBClassifier" and run.status == "FINISHED"
    assert run.params["n_estimators"] == "7"
    keys = {"validation_0-logloss", "validation_0-auc", "validation_1-logloss", "validation_1-auc"}
    assert set(run.metrics) == keys
    assert sum(len(autolog.get_metric_history(run.id, k)) for k in keys) == 7 * 2 * 2
    loaded = autolog.load_model(run.id)
    assert type(loaded) is xgb.XGBClassifier
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_post_training_metrics_on_the_sklearn_api_go_to_the_models_run(memory_store: MemoryBackend, data) -> None:
    check_post_training_metrics(memory_store, xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1), data)


def test_regressor_and_ranker(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    xgb.XGBRegressor(n_estimators=3, n_jobs=1).fit(x, y.astype(float))
    xgb.XGBRanker(n_estimators=3, n_jobs=1).fit(x, y, qid=np.repeat(np.arange(30), 10))
    assert sorted(r.name for r in memory_store.runs.values()) == ["XGBRanker", "XGBRegressor"]


def test_sklearn_api_inside_a_pipeline_logs_the_pipeline_only(memory_store: MemoryBackend, data) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, _, _ = data
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3, n_jobs=1)).fit(x, y)
    (run,) = memory_store.runs.values()
    assert run.name == "Pipeline" and run.params["xgbclassifier__n_estimators"] == "3"


def test_user_exception_in_a_callback_propagates_and_fails_the_run(memory_store: MemoryBackend, data) -> None:
    _, _, dtrain, _ = data
    error = ValueError("stop here")

    class Boom(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):  # type: ignore[no-untyped-def]
            raise error

    with pytest.raises(ValueError) as info:
        xgb.train(PARAMS, dtrain, 5, callbacks=[Boom()])
    assert info.value is error
    (run,) = memory_store.runs.values()
    assert run.status == "FAILED"


def test_explicit_callback_without_patching(data) -> None:
    from autolog.integrations.xgboost import AutologCallback

    store = MemoryBackend("memory:explicit")
    autolog.enable(backend=store, sync=True, disable_for=["xgboost"])
    _, _, dtrain, dvalid = data
    with autolog.start_run("manual") as run:
        xgb.train(PARAMS, dtrain, 4, evals=[(dvalid, "valid")], callbacks=[AutologCallback()], verbose_eval=False)
    (stored,) = store.runs.values()
    assert stored.id == run.id and stored.params == {}
    assert len(autolog.get_metric_history(run.id, "valid-logloss")) == 4


def test_cv_is_one_run_with_the_mean_and_std_over_folds(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    callbacks: list = []
    result = xgb.cv(PARAMS, xgb.DMatrix(x, y), 6, nfold=3, seed=1, callbacks=callbacks)
    (run,) = memory_store.runs.values()
    assert run.name == "xgboost.cv" and run.status == "FINISHED"
    assert run.params["nfold"] == "3" and run.params["num_boost_round"] == "6" and run.params["max_depth"] == "2"
    assert "dtrain" not in run.params and callbacks == []
    columns = {"train-logloss-mean", "train-logloss-std", "train-error-mean", "train-error-std"}
    columns |= {c.replace("train", "test") for c in columns}
    assert set(result.columns) == columns
    assert set(run.metrics) == columns  # named as the columns cv returns
    for column in columns:  # every iteration of every column: 6 x 2 sets x 2 metrics x (mean, std)
        logged = [(step, value) for step, value, _ in autolog.get_metric_history(run.id, column)]
        assert logged == list(enumerate(result[column]))
    assert "best_iteration" not in run.metrics  # no early stopping asked


def test_cv_with_early_stopping_logs_the_best_iteration(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    result = xgb.cv({**PARAMS, "eta": 1.0, "max_depth": 6}, xgb.DMatrix(x, y), 200, nfold=3, early_stopping_rounds=2)
    (run,) = memory_store.runs.values()
    assert len(result) < 200
    assert run.metrics["best_iteration"] == len(result) - 1  # the history returned ends at the best iteration
    assert run.metrics["stopped_iteration"] == len(autolog.get_metric_history(run.id, "test-error-mean")) - 1


def test_cv_with_an_early_stopping_callback_logs_the_best_and_stopped_iteration(
    memory_store: MemoryBackend, data
) -> None:
    x, y, _, _ = data
    callbacks = [xgb.callback.EarlyStopping(rounds=2)]
    params = {**PARAMS, "eta": 1.0, "max_depth": 6}
    result = xgb.cv(params, xgb.DMatrix(x, y), 200, nfold=3, callbacks=callbacks, as_pandas=False)
    (run,) = memory_store.runs.values()
    done = len(autolog.get_metric_history(run.id, "test-error-mean"))  # iterations run, the patience included
    assert len(result["test-error-mean"]) + 2 == done < 200  # the history returned ends at the best iteration
    assert _history(run.id, "best_iteration") == [len(result["test-error-mean"]) - 1]
    assert _history(run.id, "stopped_iteration") == [done - 1]
    assert "best_score" not in run.metrics and len(callbacks) == 1


def test_disable_restores_the_originals(data) -> None:
    import xgboost.sklearn
    import xgboost.training

    def patchable() -> tuple:  # type: ignore[type-arg]
        return (
            xgboost.train,
            xgboost.training.train,
            xgboost.sklearn.train,
            xgboost.XGBModel.__dict__["fit"],
            xgboost.cv,
            xgboost.training.cv,
        )

    originals = patchable()
    autolog.enable(backend=MemoryBackend("memory:restore"), sync=True)
    assert xgboost.train is not originals[0] and xgboost.cv is not originals[4]
    autolog.disable()
    assert all(a is b for a, b in zip(patchable(), originals, strict=True))


def test_importing_our_callback_before_xgboost_leaves_the_integration_on(tmp_path) -> None:
    """Our module imports ``xgboost.callback`` while loading: the post-import hook fires then, and must find what it
    needs (it used to hit a half-loaded module, warn an internal error and leave XGBoost unlogged for good)."""
    import subprocess
    import sys

    script = (
        "import sys, autolog\n"
        "autolog.enable(backend='memory:', sync=True)\n"
        "assert 'xgboost' not in sys.modules\n"
        "from autolog.integrations.xgboost import AutologCallback\n"
        "import numpy as np, xgboost\n"
        "x = np.random.default_rng(0).normal(size=(100, 3)); y = (x[:, 0] > 0).astype(int)\n"
        "xgboost.XGBClassifier(n_estimators=2, n_jobs=1).fit(x, y)\n"
        "print(sorted(r.name for r in autolog.search_runs()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['XGBClassifier']" and "internal error" not in out.stderr
