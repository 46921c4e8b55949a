"""Lazy patching of estimator classes, and the run of one outermost ``fit`` / ``fit_transform`` / ``fit_predict``.

No class is swept at ``enable()``: ``BaseEstimator.__new__`` gets a tiny hook that, the first time a class is
instantiated, patches the fit methods where that class's MRO defines them. Every estimator, third-party ones
included, is created before it is fitted (``clone`` and unpickling create through ``__new__`` too). An estimator
created *before* ``enable()`` is covered once any instance of its class is created after it.

``disable()`` reverts every fit patch exactly, but leaves the ``__new__`` hook in place, inert: CPython cannot take a
``__new__`` assigned to a class back (after ``del``, ``object.__new__`` refuses the constructor's arguments, see
https://github.com/python/cpython/issues/69917), so removing it would break every estimator.
"""

from __future__ import annotations

from typing import Any

from autolog import _errors, patching, runs, session
from autolog.integrations._runcall import RunCall, framework_tags
from autolog.integrations.sklearn import _log, _metrics, _post, _search
from autolog.patching import registry, training_wrapper

NAME = "sklearn"
FIT_METHODS = ("fit", "fit_transform", "fit_predict")
HOOK_SITE = _errors.register_site("sklearn:BaseEstimator.__new__")
_MISSING = object()
_seen: set[type] = set()
_hooked: list[tuple[type, Any]] = []  # (BaseEstimator, its original __new__ or _MISSING)
_on = [False]  # the hook patches classes only while the integration is enabled
# Classes defined by these modules belong to another integration (which logs their runs) while it is enabled.
OWNED_ELSEWHERE = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
LIBRARIES = ("sklearn.", "xgboost.", "lightgbm.")  # a fit called from their code is internal to them


def install_hook(base: type) -> None:
    _on[0] = True
    if _hooked:
        _patch_own_new_classes(base)
        return
    original = base.__dict__.get("__new__", _MISSING)

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if _on[0] and cls not in _seen:
            _errors.firewall(HOOK_SITE, patch_class, cls)
        if original is _MISSING:
            return object.__new__(cls)
        return original(cls, *args, **kwargs)

    base.__new__ = staticmethod(__new__)  # type: ignore[assignment]
    _hooked.append((base, original))
    _patch_own_new_classes(base)


def _patch_own_new_classes(base: type) -> None:
    """Classes already imported that define their own ``__new__`` (sklearn's ``@deprecated`` classes) never reach
    the hook: patch those few now. Walking the subclasses costs microseconds; patching them all would not."""
    stack: list[type] = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if "__new__" in cls.__dict__ and cls not in _seen:
            _errors.firewall(HOOK_SITE, patch_class, cls)


def remove_hook() -> None:
    """Make the hook inert (see the module docstring) and forget which classes were patched."""
    _on[0] = False
    _seen.clear()


def patch_class(cls: type) -> None:
    _seen.add(cls)
    for name in FIT_METHODS:
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or owner is object or _owned_elsewhere(owner):
            continue
        site = f"{NAME}:{owner.__qualname__}.{name}"
        registry.patch(NAME, owner, name, training_wrapper(NAME, site, _start))


def _owned_elsewhere(owner: type) -> bool:
    top = owner.__module__.partition(".")[0]
    return top in OWNED_ELSEWHERE and not session.options().disabled(OWNED_ELSEWHERE[top])


def _sklearn_version() -> str | None:
    import sklearn

    return str(sklearn.__version__)


class FitCall(RunCall):
    def __init__(self, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(type(estimator).__name__, framework_tags(NAME, _sklearn_version()), args, kwargs)
        self.estimator = estimator
        self.run.log_params(_log.params_of(estimator))

    def wait_at_end(self) -> bool:
        # A fit often takes milliseconds, and a search or a loop makes thousands: waiting for the store at the end
        # of each one would add about as much again. With the spool on, the run's start, params, metrics and end
        # are in the crash-durable journal when fit returns; the writer sends them and the model file with its next
        # batch (within flush_interval), and reads, flush() and exit wait for that. (A SIGKILL in that interval
        # loses the model file: artifacts are never journaled.) With the spool off, the wait stays: nothing else
        # keeps a returned fit's records safe.
        return not session.spooled()

    def finish(self, result: Any) -> None:
        try:
            self._log_results()
        finally:
            super().finish(result)

    def _log_results(self) -> None:
        opts = session.options()
        est = self.estimator
        if "params" in (getattr(est, "cv_results_", None) or {}):  # a search (LassoCV & co have no candidates)
            _search.log_search(self.run, est, opts.max_child_runs)
        if opts.training_metrics:
            x, y = _data(self.args, self.kwargs)
            if x is not None:
                metrics = _metrics.training_metrics(est, x, y)
                if metrics:
                    self.run.log_metrics(metrics, step=0)
        if opts.log_models:
            _log.log_model(self.run, est)
        if opts.post_training_metrics:
            _post.watch(est, self.run)


def _data(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    x = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
    return x, y


def _start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FitCall | None:
    if instance is None:  # wrapt passes the instance even for ``Estimator.fit(est, X, y)``: never happens
        return None
    active = runs.active_run()
    if active is not None and active.state.get("boosting_api"):  # a LabelEncoder inside LGBMClassifier.fit
        return None
    # A fit called by a library's code, not the user's (``CalibratedClassifierCV.predict`` or ``roc_auc_score``
    # fitting a ``LabelEncoder`` internally) is not a training of the user's.
    if patching.called_from(LIBRARIES):
        return None
    return FitCall(instance, args, kwargs)
