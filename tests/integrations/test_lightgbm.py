"""LightGBM: train, cv and the sklearn API, one run each, exact metric counts, early stopping, importance, model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import autolog
from autolog.backends.memory import MemoryBackend
from tests.integrations._post_metrics import check_post_training_metrics

lgb = pytest.importorskip("lightgbm")

PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 4, "verbose": -1, "num_threads": 1}


@pytest.fixture
def data():  # type: ignore[no-untyped-def]
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=300, n_features=6, random_state=0)
    train = lgb.Dataset(x[:200], y[:200], free_raw_data=False)
    return x, y, train, lgb.Dataset(x[200:], y[200:], reference=train)


def test_train_logs_every_metric_every_iteration(memory_store: MemoryBackend, data) -> None:
    x, _, train, valid = data
    callbacks: list = []
    booster = lgb.train(
        PARAMS, train, 9, valid_sets=[train, valid], valid_names=["train", "valid"], callbacks=callbacks
    )
    (run,) = memory_store.runs.values()
    assert run.name == "lightgbm.train" and run.status == "FINISHED"
    assert run.params["num_leaves"] == "4" and run.params["num_boost_round"] == "9"
    keys = {"train-binary_logloss", "train-auc", "valid-binary_logloss", "valid-auc"}
    assert set(run.metrics) == keys
    assert sum(len(autolog.get_metric_history(run.id, k)) for k in keys) == 9 * 2 * 2
    assert [s for s, _, _ in autolog.get_metric_history(run.id, "valid-auc")] == list(range(9))
    assert callbacks == []
    loaded = autolog.load_model(run.id)
    np.testing.assert_allclose(loaded.predict(x), booster.predict(x))


def test_user_callbacks_list_is_unchanged(memory_store: MemoryBackend, data) -> None:
    _, _, train, valid = data
    seen: list[int] = []
    record: dict = {}
    callbacks = [lgb.record_evaluation(record), lambda env: seen.append(env.iteration)]
    before = list(callbacks)
    lgb.train(PARAMS, train, 4, valid_sets=[valid], callbacks=callbacks)
    assert callbacks == before and seen == [0, 1, 2, 3] and len(record["valid_0"]["auc"]) == 4


def test_early_stopping_values(memory_store: MemoryBackend, data) -> None:
    _, _, train, valid = data
    params = {**PARAMS, "learning_rate": 0.9, "num_leaves": 31, "min_data_in_leaf": 1}
    booster = lgb.train(params, train, 300, valid_sets=[valid], callbacks=[lgb.early_stopping(2, verbose=False)])
    (run,) = memory_store.runs.values()
    done = len(autolog.get_metric_history(run.id, "valid_0-auc"))  # iterations run, the patience included
    assert booster.best_iteration + 2 == done < 300
    assert run.metrics["best_iteration"] == booster.best_iteration - 1  # autolog counts iterations from 0
    assert run.metrics["best_score"] == pytest.approx(booster.best_score["valid_0"]["binary_logloss"])
    assert run.metrics["stopped_iteration"] == done - 1


def test_sklearn_api_early_stopping_logs_each_value_once_and_the_last_iteration_trained(
    memory_store: MemoryBackend, data
) -> None:
    """LGBMClassifier.fit calls LGBMModel.fit (both patched) around train: the values are logged once, by train,
    whose callback saw the last iteration (the estimator's booster is cut at the best one)."""
    x, y, _, _ = data
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.9, min_child_samples=1, verbose=-1, n_jobs=1)
    model.fit(x[:200], y[:200], eval_set=[(x[200:], y[200:])], callbacks=[lgb.early_stopping(2, verbose=False)])
    (run,) = memory_store.runs.values()
    done = len(autolog.get_metric_history(run.id, "valid_0-binary_logloss"))
    assert model.best_iteration_ + 2 == done < 300 and model.booster_.current_iteration() == model.best_iteration_
    history = {k: [v for _, v, _ in autolog.get_metric_history(run.id, k)] for k in ("best_iteration", "best_score")}
    assert history == {
        "best_iteration": [model.best_iteration_ - 1],
        "best_score": [pytest.approx(model.best_score_["valid_0"]["binary_logloss"])],
    }
    assert [v for _, v, _ in autolog.get_metric_history(run.id, "stopped_iteration")] == [done - 1]
    assert run.params["n_estimators"] == "300"


def test_cv_is_one_run_with_aggregated_metrics(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    result = lgb.cv({**PARAMS, "metric": "auc"}, lgb.Dataset(x, y), 6, nfold=3)
    (run,) = memory_store.runs.values()
    assert run.name == "lightgbm.cv" and run.params["nfold"] == "3"
    means = autolog.get_metric_history(run.id, "valid-auc-mean")
    assert [v for _, v, _ in means] == pytest.approx(result["valid auc-mean"])
    assert len(autolog.get_metric_history(run.id, "valid-auc-stdv")) == 6


@pytest.mark.parametrize("return_cvbooster", [False, True])
def test_cv_early_stopping_logs_the_best_and_stopped_iteration(
    memory_store: MemoryBackend, data, return_cvbooster: bool
) -> None:
    x, y, _, _ = data
    params = {**PARAMS, "metric": "auc", "learning_rate": 0.9, "num_leaves": 31, "min_data_in_leaf": 1}
    callbacks = [lgb.early_stopping(2, verbose=False)]
    result = lgb.cv(params, lgb.Dataset(x, y), 300, nfold=3, callbacks=callbacks, return_cvbooster=return_cvbooster)
    (run,) = memory_store.runs.values()
    done = len(autolog.get_metric_history(run.id, "valid-auc-mean"))  # iterations run, the patience included
    assert len(result["valid auc-mean"]) + 2 == done < 300  # the history returned ends at the best iteration
    assert [v for _, v, _ in autolog.get_metric_history(run.id, "best_iteration")] == [
        len(result["valid auc-mean"]) - 1
    ]
    assert [v for _, v, _ in autolog.get_metric_history(run.id, "stopped_iteration")] == [done - 1]
    assert "best_score" not in run.metrics


def test_importance_json_and_png(memory_store: MemoryBackend, data) -> None:
    _, _, train, _ = data
    booster = lgb.train(PARAMS, train, 5)
    (run,) = memory_store.runs.values()
    folder = Path(memory_store.download_artifact(run.id, "feature_importance"))
    assert sorted(p.name for p in folder.iterdir()) == ["gain.json", "gain.png", "split.json"]
    split = json.loads((folder / "split.json").read_text())
    assert list(split.values()) == [float(v) for v in booster.feature_importance("split")]


def test_sklearn_api_is_one_run_and_reloads(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
    model.fit(x[:200], y[:200], eval_set=[(x[200:], y[200:])], eval_metric="auc")
    (run,) = memory_store.runs.values()
    assert run.name == "LGBMClassifier" and run.params["n_estimators"] == "5"
    assert set(run.metrics) == {"valid_0-auc", "valid_0-binary_logloss"}
    assert len(autolog.get_metric_history(run.id, "valid_0-auc")) == 5
    loaded = autolog.load_model(run.id)
    assert type(loaded) is lgb.LGBMClassifier
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_post_training_metrics_on_the_sklearn_api_go_to_the_models_run(memory_store: MemoryBackend, data) -> None:
    check_post_training_metrics(
        memory_store, lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1, n_jobs=1), data
    )


def test_regressor_and_ranker(memory_store: MemoryBackend, data) -> None:
    x, y, _, _ = data
    lgb.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1).fit(x, y.astype(float))
    lgb.LGBMRanker(n_estimators=3, verbose=-1, n_jobs=1).fit(x, y, group=[10] * 30)
    assert sorted(r.name for r in memory_store.runs.values()) == ["LGBMRanker", "LGBMRegressor"]


def test_user_exception_in_a_callback_propagates_and_fails_the_run(memory_store: MemoryBackend, data) -> None:
    _, _, train, _ = data
    error = KeyError("mine")

    def boom(env):  # type: ignore[no-untyped-def]
        raise error

    with pytest.raises(KeyError) as info:
        lgb.train(PARAMS, train, 3, callbacks=[boom])
    assert info.value is error
    (run,) = memory_store.runs.values()
    assert run.status == "FAILED"


def test_explicit_callback_without_patching(data) -> None:
    from autolog.integrations.lightgbm import AutologCallback

    store = MemoryBackend("memory:explicit-lgb")
    autolog.enable(backend=store, sync=True, disable_for=["lightgbm"])
    _, _, train, valid = data
    with autolog.start_run("manual") as run:
        lgb.train(PARAMS, train, 4, valid_sets=[valid], callbacks=[AutologCallback()])
    assert len(autolog.get_metric_history(run.id, "valid_0-auc")) == 4 and len(store.runs) == 1


def test_disable_restores_the_originals() -> None:
    import lightgbm.engine
    import lightgbm.sklearn

    originals = (lgb.train, lgb.cv, lightgbm.engine.train, lightgbm.sklearn.train, lgb.LGBMModel.__dict__["fit"])
    autolog.enable(backend=MemoryBackend("memory:restore-lgb"), sync=True)
    assert lgb.train is not originals[0]
    autolog.disable()
    now = (lgb.train, lgb.cv, lightgbm.engine.train, lightgbm.sklearn.train, lgb.LGBMModel.__dict__["fit"])
    assert all(a is b for a, b in zip(now, originals, strict=True))


def test_enable_before_the_first_import_in_a_fresh_process(tmp_path) -> None:
    import subprocess
    import sys

    script = (
        "import sys, autolog\n"
        "autolog.enable(backend='memory:', sync=True)\n"
        "assert 'lightgbm' not in sys.modules and 'xgboost' not in sys.modules\n"
        "import numpy as np, lightgbm, xgboost\n"
        "x = np.random.default_rng(0).normal(size=(100, 3)); y = (x[:, 0] > 0).astype(int)\n"
        "lightgbm.train({'verbose': -1, 'objective': 'binary'}, lightgbm.Dataset(x, y), 3)\n"
        "xgboost.train({'objective': 'binary:logistic'}, xgboost.DMatrix(x, y), 3)\n"
        "print(sorted(r.name for r in autolog.search_runs()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "['lightgbm.train', 'xgboost']"


@pytest.mark.parametrize("buffer", [1 << 20, 64], ids=["one call", "too small: serialised again at its size"])
def test_the_snapshot_is_the_text_lightgbm_gives(data, buffer: int) -> None:
    """The model's text is taken with one C call into a buffer of our own (LightGBM's method serialises a model
    over 1 MiB twice): it must equal ``model_to_string()``, with its defaults (the best iteration after early
    stopping, pandas categories appended), also when the buffer is too small."""
    import pandas as pd

    from autolog.integrations.lightgbm import model_text

    x, y, _, _ = data
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["colour"] = pd.Categorical(np.where(x[:, 0] > 0, "red", "blue"))
    params = {**PARAMS, "learning_rate": 0.9, "num_leaves": 31, "min_data_in_leaf": 1}
    booster = lgb.train(
        params,
        lgb.Dataset(frame[:200], y[:200]),
        300,
        valid_sets=[lgb.Dataset(frame[200:], y[200:])],
        callbacks=[lgb.early_stopping(2, verbose=False)],
        keep_training_booster=True,  # not cut at the best iteration: so the default num_iteration matters
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    assert booster.pandas_categorical == [["blue", "red"]]
    text = model_text(booster, buffer)
    assert text == booster.model_to_string()
    assert "pandas_categorical:" in text
    reloaded = lgb.Booster(model_str=text)
    np.testing.assert_allclose(reloaded.predict(frame[200:]), booster.predict(frame[200:]))
