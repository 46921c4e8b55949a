"""XGBoost: ``xgboost.train``, ``xgboost.cv`` and the sklearn API (``XGBClassifier``, ``XGBRegressor``,
``XGBRanker``), one run each.

Logs: booster params and ``train`` / ``cv`` arguments (not data; the estimator's ``get_params()`` for the sklearn
API); every eval set's every metric per iteration as ``<eval name>-<metric>`` with step = iteration (``cv``: the
columns of the history it returns, ``train-<metric>-mean`` / ``test-<metric>-mean`` over the folds and their
standard deviation ``...-std``); with early stopping
``best_iteration``, ``best_score`` and ``stopped_iteration``; feature importance of every type as JSON (and a PNG
chart of the gain when matplotlib is installed) under ``feature_importance/``; the model in XGBoost's native UBJSON
format (``autolog.load_model`` gives a ``Booster``, or the sklearn estimator for the sklearn API).

Without patching: ``xgboost.train(..., callbacks=[AutologCallback()])`` logs the per-iteration metrics into the
active run (one is opened if none is).

Supported: xgboost >= 1.6. Turn off with ``disable_for=["xgboost"]`` or ``AUTOLOG_DISABLE=xgboost``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from autolog import models, runs
from autolog.integrations import Integration, _boosting
from autolog.integrations._runcall import framework_tags
from autolog.patching import registry, training_wrapper

NAME = "xgboost"
MODEL_FILE = "model.ubj"
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
DATA_ARGUMENTS = ("dtrain", "evals", "evals_result", "xgb_model", "callbacks")
CV_DATA_ARGUMENTS = ("dtrain", "folds", "callbacks", "fpreproc")


def _version() -> str | None:
    return XGBoostIntegration.framework_version()


class TrainCall(_boosting.TrainCall):
    def __init__(self, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(NAME, "xgboost", framework_tags(NAME, _version()), args, kwargs)
        bound = _boosting.bound_arguments(wrapped, args, kwargs)
        self.log_train_params(bound, DATA_ARGUMENTS)
        if not self.in_api and bound.get("evals"):
            self.run.log_params({"evals": [name for _, name in bound["evals"]]})
        self.callback = AutologCallback(self.run)
        self.args, self.kwargs = _boosting.with_callback(wrapped, args, kwargs, self.callback)

    def finish(self, result: Any) -> None:
        try:
            _log_early_stopping(self.run, result, self.callback.last_iteration)
            if not self.in_api:  # in XGBClassifier.fit & co, the estimator's run logs the model and its importance
                _log_booster(self.run, result)
        finally:
            super().finish(result)


class CvCall(_boosting.TrainCall):
    """One ``xgboost.cv``: one run for every fold (the folds' boosters are never returned, so no model)."""

    def __init__(self, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(NAME, "xgboost.cv", framework_tags(NAME, _version()), args, kwargs)
        bound = _boosting.bound_arguments(wrapped, args, kwargs)
        self.log_train_params(bound, CV_DATA_ARGUMENTS)
        self.callback = AutologCallback(self.run)
        self.args, self.kwargs = _boosting.with_callback(wrapped, args, kwargs, self.callback)

    def finish(self, result: Any) -> None:
        try:
            best = self.callback.best_iteration  # early_stopping_rounds= or an EarlyStopping callback of the user's
            if best is not None:
                _boosting.log_early_stopping(self.run, int(best), None, self.callback.last_iteration)
        finally:
            super().finish(result)


def _log_early_stopping(run: runs.ActiveRun, booster: Any, last: int | None) -> None:
    """``last``: the last iteration trained, seen by our callback (with ``EarlyStopping(save_best=True)`` the booster
    returned is cut at the best iteration)."""
    if booster.attr("best_iteration") is not None:
        _boosting.log_early_stopping(run, booster.best_iteration, booster.best_score, last)


def _log_booster(run: runs.ActiveRun, booster: Any, cls: str = "") -> None:
    raw = bytes(booster.save_raw("ubj"))
    _boosting.log_importance(run, lambda: _importance(raw), "gain")
    if _boosting.log_models_enabled():
        meta = {"file": MODEL_FILE, "class": cls}
        run.log_model(models.model_artifact("xgboost", raw, _save, f"{__name__}:load_model", meta))


def _importance(raw: bytes) -> dict[str, dict[str, float]]:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    return {kind: dict(booster.get_score(importance_type=kind)) for kind in IMPORTANCE_TYPES}  # type: ignore[arg-type]


def _save(raw: bytes, target: Path) -> None:
    (target / MODEL_FILE).write_bytes(raw)


def load_model(directory: Path) -> Any:
    """A ``Booster``, or the sklearn estimator class that was logged, loaded from the native file."""
    import importlib
    import json

    import xgboost

    meta = json.loads((Path(directory) / models.META_FILE).read_text(encoding="utf-8"))
    if meta.get("class"):
        module, _, name = meta["class"].rpartition(".")
        model = getattr(importlib.import_module(module), name)()
    else:
        model = xgboost.Booster()
    model.load_model(str(Path(directory) / MODEL_FILE))
    return model


class ApiCall(_boosting.ApiCall):
    def __init__(self, estimator: Any, args: Any, kwargs: Any) -> None:
        super().__init__(estimator, framework_tags(NAME, _version()), args, kwargs)

    def log_results(self) -> None:
        est = self.estimator
        _log_booster(self.run, est.get_booster(), cls=f"{type(est).__module__}.{type(est).__qualname__}")


def _start_train(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TrainCall:
    return TrainCall(wrapped, args, kwargs)


def _start_cv(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CvCall:
    return CvCall(wrapped, args, kwargs)


def _start_api(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ApiCall | None:
    return _boosting.start_api(lambda: ApiCall(instance, args, kwargs), instance)


class XGBoostIntegration(Integration):
    name: ClassVar[str] = NAME
    modules: ClassVar[tuple[str, ...]] = ("xgboost",)
    distribution: ClassVar[str] = "xgboost"
    min_version: ClassVar[str] = "1.6"

    def patch(self, module_name: str) -> None:
        import xgboost
        import xgboost.sklearn
        import xgboost.training

        train = training_wrapper(NAME, "xgboost:train", _start_train)
        for owner in (xgboost.training, xgboost, xgboost.sklearn):
            if "train" in vars(owner):
                registry.patch(NAME, owner, "train", train)
        cv = training_wrapper(NAME, "xgboost:cv", _start_cv)
        for owner in (xgboost.training, xgboost):
            if "cv" in vars(owner):
                registry.patch(NAME, owner, "cv", cv)
        api = _boosting.api_wrapper(NAME, "xgboost:XGBModel.fit", _start_api)
        for cls in (xgboost.sklearn.XGBModel, *xgboost.sklearn.XGBModel.__subclasses__()):
            if "fit" in vars(cls):
                registry.patch(NAME, cls, "fit", api)


def _callback_base() -> type:
    try:
        from xgboost.callback import TrainingCallback
    except ImportError:  # xgboost missing: the class still imports, for docs and type checks
        return object
    return TrainingCallback


# Defined last, after everything the integration needs: building this class imports ``xgboost.callback``, which
# fires the post-import hook (``enable()`` then ``load_model`` or ``from ... import AutologCallback`` before
# xgboost was imported), and the hook reads ``XGBoostIntegration`` and its starters from this module while it
# is still loading.
class AutologCallback(_boosting.CallbackRun, _callback_base()):  # type: ignore[misc]
    """Logs every eval metric after every iteration as ``<eval>-<metric>`` (step = iteration).

    With ``run`` None it logs into the active run, opening one if none is open.
    """

    default_name = "xgboost"
    best_iteration: str | None = None

    def after_training(self, model: Any) -> Any:
        # xgboost.cv returns a history, not its folds' boosters: the best iteration EarlyStopping set is read here.
        self.best_iteration = model.attr("best_iteration")
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self.last_iteration = epoch
        if epoch % self._every == 0 and evals_log:
            values: dict[str, Any] = {}
            for data, metrics in evals_log.items():
                for metric, history in metrics.items():
                    last = history[-1]
                    if isinstance(last, tuple):  # xgboost.cv: (mean, std), named as the columns cv returns
                        values[f"{data}-{metric}-mean"], values[f"{data}-{metric}-std"] = last
                    else:
                        values[f"{data}-{metric}"] = last
            self._target().log_metrics(values, step=epoch)
        return False
