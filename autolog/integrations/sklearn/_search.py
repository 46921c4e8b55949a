"""Hyper-parameter searches (a parent run + one child run per candidate) and the cross-validation functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autolog import runs
from autolog.integrations._runcall import RunCall, framework_tags
from autolog.integrations.sklearn import _log
from autolog.records import Artifact
from autolog.runs import ActiveRun

# sklearn.model_selection._validation functions that fit many times: one run per call, per-fold scores as metrics.
CV_FUNCTIONS = (
    "cross_validate",
    "cross_val_score",
    "cross_val_predict",
    "learning_curve",
    "validation_curve",
    "permutation_test_score",
)
_STAT_PREFIXES = ("mean_", "std_", "rank_")


def log_search(run: ActiveRun, search: Any, max_child_runs: int | None) -> None:
    """Best params and score, ``cv_results_`` as a JSON artifact, and child runs for the candidates."""
    results = search.cv_results_
    if getattr(search, "best_params_", None) is not None:
        run.log_params({f"best_{k}": _log.render(v) for k, v in search.best_params_.items()})
    best_score = getattr(search, "best_score_", None)
    if best_score is not None:
        run.log_metrics({"best_cv_score": best_score}, step=0)
    table = {key: [_jsonable(v) for v in values] for key, values in results.items()}
    run.log_artifact(Artifact("cv_results.json", _writer_of(table)))
    _child_runs(run, results, max_child_runs, getattr(search, "refit", None))


def _rank_key(results: dict[str, Any], refit: Any) -> str | None:
    """The ranking of the candidates: ``rank_test_score``, or with several scorers the one ``refit`` names (else the
    first scorer's)."""
    for key in ("rank_test_score", f"rank_test_{refit}" if isinstance(refit, str) else ""):
        if key in results:
            return key
    return next((k for k in results if k.startswith("rank_test_")), None)


def _child_runs(parent: ActiveRun, results: dict[str, Any], limit: int | None, refit: Any = None) -> None:
    order = list(range(len(results["params"])))
    rank = _rank_key(results, refit)
    if rank is not None:
        order.sort(key=lambda i: int(results[rank][i]))
    if limit is not None:
        order = order[:limit]
    stats = [k for k in results if k.startswith(_STAT_PREFIXES)]
    for i in sorted(order):
        child = runs.new_run(f"{parent.name}-candidate-{i}", parent=parent, tags={"autolog.candidate": str(i)})
        child.log_params({k: _log.render(v) for k, v in results["params"][i].items()})
        child.log_metrics({k: float(results[k][i]) for k in stats}, step=0)
        child.end("FINISHED", wait=False)


def _jsonable(value: Any) -> Any:
    if type(value).__name__ == "MaskedConstant":  # a param the candidate does not have (a grid of several dicts)
        return None
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(_log.render(value))


def _writer_of(table: dict[str, Any]) -> Any:
    def write(target: Path) -> None:
        target.write_text(json.dumps(table, indent=1), encoding="utf-8")

    return write


# -- cross_validate & co ------------------------------------------------------------------------------------------
class CVCall(RunCall):
    def __init__(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any], version: str | None) -> None:
        super().__init__(function, framework_tags("sklearn", version), args, kwargs)
        self.function = function
        estimator = args[0] if args else kwargs.get("estimator")
        params: dict[str, Any] = {"function": function}
        if estimator is not None:
            params["estimator"] = type(estimator).__name__
            params.update(_log.params_of(estimator, "estimator__"))
        for key in ("cv", "scoring", "param_name", "n_permutations"):
            if key in kwargs:
                params[key] = _log.render(kwargs[key])
        self.run.log_params(params)

    def finish(self, result: Any) -> None:
        try:
            _cv_metrics(self.run, self.function, result)
        finally:
            super().finish(result)


def _per_step(run: ActiveRun, key: str, values: Any) -> None:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    for step, value in enumerate(arr.reshape(len(arr), -1).mean(axis=1) if arr.ndim > 1 else arr):
        run.log_metrics({key: float(value)}, step=step)
    run.log_metrics({f"{key}_mean": float(arr.mean()), f"{key}_std": float(arr.std())}, step=0)


def _cv_metrics(run: ActiveRun, function: str, result: Any) -> None:
    if function == "cross_validate":
        for key, values in result.items():
            if key.startswith(("test_", "train_")) or key in ("fit_time", "score_time"):
                _per_step(run, key, values)
    elif function == "cross_val_score":
        _per_step(run, "cv_score", result)
    elif function == "learning_curve":
        sizes, train, test = result[:3]
        for step, (n, tr, te) in enumerate(zip(sizes, train, test, strict=True)):
            run.log_metrics(
                {"train_size": int(n), "train_score_mean": float(tr.mean()), "test_score_mean": float(te.mean())},
                step=step,
            )
    elif function == "validation_curve":
        train, test = result
        for step, (tr, te) in enumerate(zip(train, test, strict=True)):
            run.log_metrics({"train_score_mean": float(tr.mean()), "test_score_mean": float(te.mean())}, step=step)
    elif function == "permutation_test_score":
        score, _perm, pvalue = result
        run.log_metrics({"score": float(score), "pvalue": float(pvalue)}, step=0)
