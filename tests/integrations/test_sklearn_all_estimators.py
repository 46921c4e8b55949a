"""Every estimator ``sklearn.utils.all_estimators()`` lists that fits bare on a small data set: with autologging on
it predicts the same, logs exactly one run per fit, and logs its params."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

import autolog
from autolog.backends.memory import MemoryBackend


def _data(estimator: Any) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.base import is_regressor

    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(60, 4))) + 0.1  # positive: chi2, NMF, MultinomialNB accept it
    y = np.repeat([0, 1, 2], 20)
    x[:, 0] += y  # something to learn
    if is_regressor(estimator):
        return x, x @ np.array([1.0, 2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=60)
    return x, y


def _new(cls: type) -> Any:
    est = cls()
    params = est.get_params(deep=False)
    fixes: dict[str, Any] = {k: 0 for k in ("random_state",) if k in params}
    for key, small in _SMALL.items():  # keep the whole test fast: fewer iterations, trees, folds
        if isinstance(params.get(key), int) and params[key] > small:
            fixes[key] = small
    if "cv" in params and params["cv"] is None:
        fixes["cv"] = 2
    return est.set_params(**fixes)


_SMALL = {"max_iter": 10, "n_estimators": 5, "Cs": 2, "cv": 2, "n_alphas": 5, "n_components": 2}


def _fit_and_output(cls: type) -> Any:
    est = _new(cls)
    x, y = _data(est)
    est.fit(x, y)
    for method in ("predict", "transform"):
        if hasattr(est, method):
            return np.asarray(getattr(est, method)(x), dtype=float)
    return None


def _candidates() -> list[tuple[str, type]]:
    from sklearn.utils import all_estimators

    return all_estimators()  # type: ignore[no-any-return]


def test_every_estimator_behaves_the_same_and_logs_one_run() -> None:
    checked, failures = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bare: dict[str, Any] = {}
        for name, cls in _candidates():
            try:
                bare[name] = _fit_and_output(cls)
            except Exception:
                continue
        store = MemoryBackend("memory:all")
        autolog.enable(backend=store, sync=True)
        for name, cls in _candidates():
            if name not in bare:
                continue
            before = len(store.runs)
            logged = _fit_and_output(cls)
            new_runs = [r for r in store.runs.values() if r.parent_id is None][before:]
            checked += 1
            if len(store.runs) - before != 1:
                failures.append(f"{name}: {len(store.runs) - before} runs")
                continue
            (run,) = new_runs
            if run.status != "FINISHED" or not set(_new(cls).get_params()) <= set(run.params):
                failures.append(f"{name}: status {run.status}, params {sorted(run.params)[:5]}")
            if bare[name] is not None and not np.allclose(bare[name], logged, equal_nan=True):
                autolog.disable()
                again = _fit_and_output(cls)  # an estimator that is not deterministic even bare is fine
                autolog.enable(backend=store, sync=True)
                if np.allclose(bare[name], again, equal_nan=True):
                    failures.append(f"{name}: different output with autolog")
    assert checked > 150
    assert failures == [], "\n".join(failures)
