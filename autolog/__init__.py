"""autolog: every training run records itself with one line, ``autolog.enable()``.

>>> import autolog
>>> autolog.enable()                     # sqlite:///autolog-runs/runs.db by default
>>> # ... train with sklearn / xgboost / lightgbm / torch / lightning / keras as usual ...
>>> autolog.search_runs()[0].metrics     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autolog import _errors, integrations, patching, runs, session
from autolog import options as _options
from autolog import tags as _tags
from autolog._errors import AutologWarning
from autolog.models import load_model
from autolog.records import Run
from autolog.runs import ActiveRun, active_run

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "AutologWarning",
    "Run",
    "__version__",
    "active_run",
    "disable",
    "enable",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "load_model",
    "log_metric",
    "log_metrics",
    "log_params",
    "search_runs",
    "set_tags",
    "start_run",
    "suppress",
]


def enable(
    backend: Any = None,
    *,
    experiment: str | None = None,
    log_models: bool | None = None,
    log_every_n_steps: int | None = None,
    exclusive: bool | None = None,
    silent: bool | None = None,
    disable_for: Any = None,
    tags: Mapping[str, Any] | None = None,
    **more: Any,
) -> None:
    """Turn autologging on for every supported framework, imported now or later.

    Keyword options override ``AUTOLOG_*`` environment variables, which override defaults (see the README's
    options table). An invalid option raises ``ValueError`` naming it. Calling ``enable`` again re-configures;
    it never patches twice. No framework is imported here.
    """
    given = dict(
        backend=backend,
        experiment=experiment,
        log_models=log_models,
        log_every_n_steps=log_every_n_steps,
        exclusive=exclusive,
        silent=silent,
        disable_for=disable_for,
        tags=tags,
        **more,
    )
    opts = _options.resolve({k: v for k, v in given.items() if v is not None})
    session.configure(opts)
    _errors.firewall("spool:replay", _replay_spool, opts)  # what dead processes left for this store
    _tags.remember_script()
    session.set_enabled(True)
    integrations.install(opts)


def _replay_spool(opts: _options.Options) -> None:
    from autolog import spool

    spool.replay_dead(opts)


def disable() -> None:
    """Stop autologging and restore every patched attribute exactly. Logged data is flushed, not lost."""
    session.set_enabled(False)
    integrations.uninstall()
    session.flush(session.options().shutdown_timeout)


def flush(timeout: float | None = None) -> bool:
    """Wait until everything logged so far is in the backend. False if ``timeout`` seconds ran out first."""
    return session.flush(timeout)


start_run = runs.start_run
suppress = patching.suppress


def _run_or_new() -> ActiveRun:
    run = active_run()
    if run is None:  # manual logging with no run open: one ambient run for the process, ended at exit
        run = runs.new_run()
        runs.set_ambient(run)
    return run


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log metrics into the active run (one is opened if none is). Never raises for bad values: see warnings."""
    _run_or_new().log_metrics(metrics, step)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    _run_or_new().log_metrics({key: value}, step)


def log_params(params: Mapping[str, Any]) -> None:
    _run_or_new().log_params(params)


def set_tags(tags: Mapping[str, Any]) -> None:
    _run_or_new().set_tags(tags)


def end_run(status: str = "FINISHED") -> None:
    """End the active run (a run opened by autologging or by manual logging)."""
    run = active_run()
    if run is not None:
        run.end(status)


# -- read API ---------------------------------------------------------------------------------------------------
def search_runs(experiment: str | None = None) -> list[Run]:
    """Runs in the configured backend, newest first (after a flush of what this process logged)."""
    session.flush(session.options().shutdown_timeout)
    return session.backend().search_runs(experiment)


def get_run(run_id: str) -> Run:
    session.flush(session.options().shutdown_timeout)
    return session.backend().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[tuple[int, float, float]]:
    """(step, value, timestamp) for every value of ``key`` logged in the run, in logged order."""
    session.flush(session.options().shutdown_timeout)
    return session.backend().get_metric_history(run_id, key)
