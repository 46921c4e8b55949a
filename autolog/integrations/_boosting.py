"""Shared by the XGBoost and LightGBM integrations: the ``train`` call's run, the sklearn-API run around it,
early-stopping values, feature importance (JSON, plus a PNG bar chart when matplotlib is installed).

Two runs for one training never happen: the sklearn-API wrapper (``XGBClassifier.fit``, ``LGBMRegressor.fit``...)
opens a run marked joinable and does not mark the context as "training", so the ``train`` call inside it joins that
run and logs the per-iteration metrics there; the scikit-learn integration leaves these classes alone.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from autolog import patching, runs, session
from autolog.integrations._runcall import RunCall
from autolog.records import Artifact
from autolog.runs import ActiveRun

IMPORTANCE_DIR = "feature_importance"
TOP_FEATURES = 30  # bars in the PNG chart (the JSON holds every feature)
# Frames skipped when looking for who called an estimator's ``fit``: ours, and the boosting libraries' own
# (``XGBRFClassifier.fit`` calls ``super().fit`` through a decorator of xgboost.core).
_PASSED = (*patching.OURS, "xgboost.", "lightgbm.")
C = TypeVar("C", bound=RunCall)


def bound_arguments(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs)
    except TypeError:  # the framework will raise its own error for these arguments
        return dict(kwargs)
    return dict(bound.arguments)


def with_callback(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], callback: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with ``callback`` put first in a *copy* of the user's ``callbacks`` list: xgboost stops
    calling callbacks at the first that asks to stop (a user's ``EarlyStopping``), and ours must see that iteration
    too. (LightGBM orders callbacks by their ``order`` attribute, not by place in the list.)"""
    names = list(inspect.signature(function).parameters)
    position = names.index("callbacks")
    if len(args) > position:
        args = (*args[:position], [callback, *(args[position] or ())], *args[position + 1 :])
    else:
        kwargs = {**kwargs, "callbacks": [callback, *(kwargs.get("callbacks") or ())]}
    return args, kwargs


def render_param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    if isinstance(value, (list, tuple)):
        return [render_param(v) for v in value]
    return value


class TrainCall(RunCall):
    """One ``train`` call. Subclasses set the callback and the snapshot/model hooks."""

    def __init__(self, integration: str, name: str, tags: dict[str, str], args: Any, kwargs: Any) -> None:
        super().__init__(name, tags, args, kwargs)
        self.in_api = bool(self.run.state.get("boosting_api"))  # joined the run of XGBClassifier.fit & co

    def log_train_params(self, bound: dict[str, Any], skip: tuple[str, ...]) -> None:
        if self.in_api:  # the estimator's get_params() are the run's params already
            return
        params = {k: render_param(v) for k, v in (bound.get("params") or {}).items()}
        for key, value in bound.items():
            if key not in skip and key != "params":
                params[key] = render_param(value)
        self.run.log_params(params)


def log_early_stopping(run: ActiveRun, best_iteration: Any, best_score: Any, stopped_iteration: int | None) -> None:
    values: dict[str, Any] = {}
    if best_iteration is not None:
        values["best_iteration"] = int(best_iteration)
    if best_score is not None:
        values["best_score"] = float(best_score)
    if stopped_iteration is not None and values:
        values["stopped_iteration"] = int(stopped_iteration)
    if values:
        run.log_metrics(values, step=0)


def log_importance(run: ActiveRun, compute: Callable[[], dict[str, dict[str, float]]], chart: str) -> None:
    """``compute()`` runs on the writer thread (from a snapshot) and returns {importance type: {feature: value}};
    every type goes to ``<type>.json``, the ``chart`` type also to ``<type>.png``."""

    def write(target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        tables = compute()
        for kind, table in tables.items():
            (target / f"{kind}.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
        if chart in tables:
            _plot(target, chart, tables[chart])

    run.log_artifact_after_end(Artifact(IMPORTANCE_DIR, write))  # matplotlib: seconds the training needn't wait


def _plot(target: Path, kind: str, table: dict[str, float]) -> None:
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot state, safe off the main thread
    except ImportError:
        return
    top = sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES][::-1]
    if not top:
        return
    fig = Figure(figsize=(6, 0.25 * len(top) + 1))
    ax = fig.add_subplot()
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set_title(f"feature importance ({kind})")
    fig.tight_layout()
    fig.savefig(target / f"{kind}.png", dpi=80)


def api_wrapper(integration: str, site: str, start: Callable[..., RunCall | None]) -> Callable[..., Any]:
    """For ``XGBModel.fit`` & co: the context is not marked as training, so the ``train`` call inside joins this run
    (its run is marked joinable) instead of standing down."""
    return patching.training_wrapper(integration, site, start, mark_training=False)  # type: ignore[arg-type]


def start_api(make: Callable[[], C], instance: Any) -> C | None:
    """The run of an estimator's ``fit``, or None to stand down when scikit-learn calls it outside any run of ours:
    a search or ``cross_val_score`` fitting a fold in a joblib *thread* (the "in training" context does not reach
    worker threads; the search's own run covers the fold). With the sklearn integration off nothing covers it, so
    the fold keeps its run."""
    if instance is None:
        return None
    active = runs.active_run()
    nested = active is not None and active.state.get("boosting_api")  # LGBMClassifier.fit -> LGBMModel.fit: join
    if not nested and not session.options().disabled("sklearn") and patching.called_from(("sklearn.",), _PASSED):
        return None
    return make()


class ApiCall(RunCall):
    """The run of one ``fit`` of a boosting library's sklearn estimator. The ``train`` call inside logs the metrics
    and early stopping (its callback sees the iteration training stopped at: the estimator's booster may be cut at
    the best one); this call logs the params, then the model and its importance."""

    def __init__(self, estimator: Any, tags: dict[str, str], args: Any, kwargs: Any) -> None:
        super().__init__(type(estimator).__name__, tags, args, kwargs)
        self.estimator = estimator
        # LGBMClassifier.fit calls LGBMModel.fit, both patched: the inner call joins and logs nothing of its own.
        self.nested = self.joined and bool(self.run.state.get("boosting_api"))
        self._marked = not self.joined or not self.run.state.get("joinable")
        self.run.state.update(joinable=True, boosting_api=True)
        if self.nested:
            return
        try:
            params = estimator.get_params()
        except Exception:  # noqa: BLE001 - a broken get_params must not stop the logging of the metrics
            params = {}
        self.run.log_params({k: render_param(v) for k, v in params.items()})

    def finish(self, result: Any) -> None:
        try:
            if not self.nested:
                self.log_results()
                self._watch_predictions()
        finally:
            super().finish(result)

    def log_results(self) -> None:
        """The fitted model and its importance."""

    def _watch_predictions(self) -> None:
        """Post-training metrics (``accuracy_score(y, model.predict(X))`` in this run), as for a scikit-learn
        estimator: the sklearn integration patches the metric functions and traces the predictions."""
        options = session.options()
        if options.post_training_metrics and not options.disabled("sklearn"):
            from autolog.integrations.sklearn import _post

            _post.watch(self.estimator, self.run)

    def close(self, status: str) -> None:
        if self._marked:
            self.run.state.pop("joinable", None)
            self.run.state.pop("boosting_api", None)
        super().close(status)


class CallbackRun:
    """What the explicit callbacks share: the run they log into (the one given, else the active run, else a new
    one) and the last iteration seen (the stopped iteration, with early stopping)."""

    def __init__(self, run: ActiveRun | None = None) -> None:
        self.run = run
        self.last_iteration: int | None = None
        self._every = every_n()

    def _target(self) -> ActiveRun:
        from autolog import runs

        if self.run is None:
            self.run = runs.active_run()
            if self.run is None:
                self.run = runs.new_run(self.default_name)
                runs.set_ambient(self.run)
        return self.run

    default_name = "boosting"


def log_models_enabled() -> bool:
    return session.options().log_models


def every_n() -> int:
    return session.options().log_every_n_steps
