"""LightGBM: ``lightgbm.train``, ``lightgbm.cv`` and the sklearn API (``LGBMClassifier``, ``LGBMRegressor``,
``LGBMRanker``), one run each.

Logs: booster params and ``train``/``cv`` arguments (not data; ``get_params()`` for the sklearn API); every valid
set's every metric per iteration as ``<valid name>-<metric>`` with step = iteration (``cv``: the mean over folds as
``valid-<metric>-mean`` and their spread as ``valid-<metric>-stdv``); with early stopping ``best_iteration``,
``best_score`` and ``stopped_iteration``; split and gain importance as JSON (and a PNG chart of the gain when
matplotlib is installed) under ``feature_importance/``; the model in LightGBM's text format (``autolog.load_model``
gives a ``Booster``, or the fitted sklearn estimator for the sklearn API, which is pickled beside it).

Without patching: ``lightgbm.train(..., callbacks=[AutologCallback()])``.

Supported: lightgbm >= 3.3. Turn off with ``disable_for=["lightgbm"]`` or ``AUTOLOG_DISABLE=lightgbm``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

from autolog import models, runs
from autolog.integrations import Integration, _boosting
from autolog.integrations._runcall import framework_tags
from autolog.patching import registry, training_wrapper

NAME = "lightgbm"
MODEL_FILE = "model.txt"
ESTIMATOR_FILE = "estimator.pkl"
IMPORTANCE_TYPES = ("split", "gain")
DATA_ARGUMENTS = ("train_set", "valid_sets", "folds", "init_model", "callbacks", "fpreproc")


class AutologCallback(_boosting.CallbackRun):
    """A LightGBM callback logging every eval result after every iteration (step = iteration).

    With ``run`` None it logs into the active run, opening one if none is open.
    """

    order = 25  # after record_evaluation (20), before early_stopping (30), which raises on the last iteration
    before_iteration = False
    default_name = "lightgbm"
    model: Any = None

    def __call__(self, env: Any) -> None:
        self.last_iteration = env.iteration
        self.model = env.model  # for lightgbm.cv, the CVBooster: early stopping's best iteration is set on it
        if env.iteration % self._every or not env.evaluation_result_list:
            return
        values: dict[str, Any] = {}
        for entry in env.evaluation_result_list:
            if len(entry) == 5:  # lightgbm.cv: (data, metric, mean over folds, higher_better, stdv)
                key = f"{entry[0]}-{entry[1]}".replace("cv_agg-", "").replace(" ", "-")  # 3.x: ("cv_agg", "valid l2")
                values[f"{key}-mean"] = entry[2]
                values[f"{key}-stdv"] = entry[4]
            else:
                values[f"{entry[0]}-{entry[1]}"] = entry[2]
        self._target().log_metrics(values, step=env.iteration)


def _version() -> str | None:
    return LightGBMIntegration.framework_version()


class TrainCall(_boosting.TrainCall):
    def __init__(self, function: str, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(NAME, f"lightgbm.{function}", framework_tags(NAME, _version()), args, kwargs)
        self.function = function
        bound = _boosting.bound_arguments(wrapped, args, kwargs)
        self.log_train_params(bound, DATA_ARGUMENTS)
        self.callback = AutologCallback(self.run)
        self.args, self.kwargs = _boosting.with_callback(wrapped, args, kwargs, self.callback)

    def finish(self, result: Any) -> None:
        try:
            if self.function == "train":
                _log_early_stopping(self.run, result, self.callback.last_iteration)
                if not self.in_api:  # in LGBMClassifier.fit & co, the estimator's run logs the model and importance
                    _log_booster(self.run, result)
            else:  # cv: the CVBooster knows whether early stopping ended it (returned only with return_cvbooster)
                best = getattr(self.callback.model, "best_iteration", None)
                if best is not None and best > 0:  # counted from 1, -1 without early stopping
                    _boosting.log_early_stopping(self.run, best - 1, None, self.callback.last_iteration)
        finally:
            super().finish(result)


def _log_early_stopping(run: runs.ActiveRun, booster: Any, last: int | None) -> None:
    """``last``: the last iteration trained, seen by our callback (``train`` returns a booster cut at the best
    iteration, so the booster cannot tell)."""
    if booster.best_iteration and booster.best_iteration > 0:  # LightGBM's best_iteration counts from 1
        best_score = _first_score(booster.best_score)
        _boosting.log_early_stopping(run, booster.best_iteration - 1, best_score, last)


def _log_booster(run: runs.ActiveRun, booster: Any, estimator: Any = None) -> None:
    text = model_text(booster)
    _boosting.log_importance(run, lambda: _importance(text), "gain")
    if _boosting.log_models_enabled():
        saved = (text, None if estimator is None else pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL))
        meta = {"file": MODEL_FILE, "estimator": estimator is not None}
        run.log_model(models.model_artifact("lightgbm", saved, _save, f"{__name__}:load_model", meta))


_TEXT_BUFFER = 256 << 20  # bytes: numpy leaves the pages it does not write untouched, so a large one costs nothing


def model_text(booster: Any, buffer: int = _TEXT_BUFFER) -> str:
    """``booster.model_to_string()``, serialised once: the snapshot a run keeps, taken on the training thread.

    LightGBM's own method serialises the model into a 1 MiB buffer and, when the model is larger (400 trees of 31
    leaves are 1.4 MB), serialises it all again into one of the right size: ~27 ms where ~14 ms do. Here the same C
    call (``LGBM_BoosterSaveModelToString``, with the method's own defaults) writes into a numpy buffer of
    ``buffer`` bytes that is never zeroed, so only the pages written are touched; a model larger still is
    serialised again at its size, as LightGBM does. Any surprise (another LightGBM layout): its own method."""
    try:
        import ctypes

        import numpy as np
        from lightgbm import basic

        size = buffer
        for _ in range(2):
            out = np.empty(size, dtype=np.uint8)
            length = ctypes.c_int64(0)
            basic._safe_call(
                basic._LIB.LGBM_BoosterSaveModelToString(
                    booster._handle,
                    ctypes.c_int(0),  # start_iteration
                    ctypes.c_int(booster.best_iteration),  # num_iteration=None: the best iteration, else all
                    ctypes.c_int(basic._FEATURE_IMPORTANCE_TYPE_MAPPER["split"]),
                    ctypes.c_int64(size),
                    ctypes.byref(length),
                    out.ctypes.data_as(ctypes.c_char_p),
                )
            )
            if length.value <= size:
                text = out[: length.value - 1].tobytes().decode("utf-8")  # the length counts the closing NUL
                return text + basic._dump_pandas_categorical(booster.pandas_categorical)
            size = length.value
    except (ImportError, AttributeError, TypeError, KeyError, MemoryError):
        pass
    return str(booster.model_to_string())


def _first_score(best_score: Any) -> float | None:
    """LightGBM's ``best_score`` is {valid name: {metric: value}}: the first metric of the last set (the training
    set, when it is a valid set, usually comes first and early stopping ignores it)."""
    for metrics in reversed(list((best_score or {}).values())):
        for value in metrics.values():
            return float(value)
    return None


def _importance(text: str) -> dict[str, dict[str, float]]:
    import lightgbm

    booster = lightgbm.Booster(model_str=text)
    names = booster.feature_name()
    return {
        kind: dict(zip(names, map(float, booster.feature_importance(importance_type=kind)), strict=True))
        for kind in IMPORTANCE_TYPES
    }


def _save(saved: tuple[str, bytes | None], target: Path) -> None:
    text, estimator = saved
    (target / MODEL_FILE).write_text(text, encoding="utf-8")
    if estimator is not None:
        (target / ESTIMATOR_FILE).write_bytes(estimator)


def load_model(directory: Path) -> Any:
    """The fitted sklearn estimator when one was logged, else a ``Booster`` from the native text file."""
    import lightgbm

    directory = Path(directory)
    if (directory / ESTIMATOR_FILE).exists():
        with (directory / ESTIMATOR_FILE).open("rb") as fh:
            return pickle.load(fh)
    return lightgbm.Booster(model_file=str(directory / MODEL_FILE))


class ApiCall(_boosting.ApiCall):
    def __init__(self, estimator: Any, args: Any, kwargs: Any) -> None:
        super().__init__(estimator, framework_tags(NAME, _version()), args, kwargs)

    def log_results(self) -> None:
        _log_booster(self.run, self.estimator.booster_, estimator=self.estimator)


def _starter(function: str) -> Any:
    def start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TrainCall:
        return TrainCall(function, wrapped, args, kwargs)

    return start


def _start_api(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ApiCall | None:
    return _boosting.start_api(lambda: ApiCall(instance, args, kwargs), instance)


class LightGBMIntegration(Integration):
    name: ClassVar[str] = NAME
    modules: ClassVar[tuple[str, ...]] = ("lightgbm",)
    distribution: ClassVar[str] = "lightgbm"
    min_version: ClassVar[str] = "3.3"

    def patch(self, module_name: str) -> None:
        import lightgbm
        import lightgbm.engine
        import lightgbm.sklearn

        for function in ("train", "cv"):
            wrapper = training_wrapper(NAME, f"lightgbm:{function}", _starter(function))
            for owner in (lightgbm.engine, lightgbm, lightgbm.sklearn):
                if function in vars(owner):
                    registry.patch(NAME, owner, function, wrapper)
        api = _boosting.api_wrapper(NAME, "lightgbm:LGBMModel.fit", _start_api)
        for cls in (lightgbm.sklearn.LGBMModel, *lightgbm.sklearn.LGBMModel.__subclasses__()):
            if "fit" in vars(cls):
                registry.patch(NAME, cls, "fit", api)
