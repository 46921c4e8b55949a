"""scikit-learn: one run per outermost ``fit`` / ``fit_transform`` / ``fit_predict`` of any estimator.

Logs: ``get_params(deep=True)`` flattened (``estimator__C``), training metrics on a sample of at most 1,000 rows
(``training_metrics=False`` turns them off), the fitted estimator as it was at the end of ``fit`` (pickle;
``autolog.load_model(run_id)``). Meta-estimators (Pipeline, ColumnTransformer, ensembles) log one run. Searches
(``GridSearchCV``, ``RandomizedSearchCV``, halving) log a parent run with the best params and score and
``cv_results.json``, plus a child run per candidate (``max_child_runs``). ``cross_validate``, ``cross_val_score``,
``learning_curve``, ``validation_curve``, ``permutation_test_score`` and ``cross_val_predict`` log one run per call.
Estimators of xgboost and lightgbm are left to their own integrations while those are enabled.

Supported: scikit-learn >= 1.3. Turn off with ``autolog.enable(disable_for=["sklearn"])`` or
``AUTOLOG_DISABLE=sklearn``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import wrapt

from autolog import _errors, session
from autolog.integrations import Integration
from autolog.patching import registry, training_wrapper

_hooks_registered: set[str] = set()
_state = {"on": False}


class SklearnIntegration(Integration):
    name: ClassVar[str] = "sklearn"
    modules: ClassVar[tuple[str, ...]] = ("sklearn",)
    distribution: ClassVar[str] = "scikit-learn"
    min_version: ClassVar[str] = "1.3"

    def patch(self, module_name: str) -> None:
        _state["on"] = True
        for module, fire in (
            ("sklearn.base", _on_base),
            ("sklearn.model_selection", _on_model_selection),
            ("sklearn.metrics", _on_metrics),
        ):
            if module not in _hooks_registered:
                _hooks_registered.add(module)
                wrapt.register_post_import_hook(_guarded(module, fire), module)
            else:
                import sys

                if module in sys.modules:
                    _guarded(module, fire)(sys.modules[module])

    def unpatch(self) -> None:
        from autolog.integrations.sklearn import _fit, _post

        _state["on"] = False
        _fit.remove_hook()
        _post.unpatch_metrics()
        registry.revert(self.name)


def _guarded(module: str, fire: Any) -> Any:
    def hook(mod: Any) -> None:
        if _state["on"] and session.enabled():
            _errors.firewall(f"sklearn:import {module}", fire, mod)

    return hook


def _on_base(base_module: Any) -> None:
    from autolog.integrations.sklearn import _fit

    _fit.install_hook(base_module.BaseEstimator)


def _on_metrics(module: Any) -> None:
    from autolog.integrations.sklearn import _post

    if session.options().post_training_metrics:
        _post.patch_metrics(module)


def _on_model_selection(package: Any) -> None:
    import sklearn
    from sklearn.model_selection import _validation

    from autolog.integrations.sklearn._search import CV_FUNCTIONS, CVCall

    version = str(sklearn.__version__)
    for function in CV_FUNCTIONS:
        site = f"sklearn:{function}"

        def start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], fn: str = function):
            return CVCall(fn, args, kwargs, version)

        wrapper = training_wrapper("sklearn", site, start)
        for owner in (_validation, package):
            if function in vars(owner):
                registry.patch("sklearn", owner, function, wrapper)
