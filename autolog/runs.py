"""Runs on the training side: the active run (a ``contextvars`` context), starting, joining and ending runs.

A run's logging methods only append to the writer's queue. The active run is looked up in a context variable
first, then in the process-wide "ambient" run that integrations without a clear end (plain PyTorch loops) use.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from autolog import _errors, _native, session
from autolog.records import FAILED, FINISHED, KILLED, Artifact, ModelArtifact, RunEnd, RunStart
from autolog.writer import ARTIFACT, END, METRICS, PARAMS, START, TAGS

_current: contextvars.ContextVar[ActiveRun | None] = contextvars.ContextVar("autolog_run", default=None)
_ambient: ActiveRun | None = None
_open: dict[str, ActiveRun] = {}  # runs started and not yet ended in this process: ended at exit
_open_lock = threading.Lock()
_now = time.time
_log_plain = _native.speedups.log_plain if _native.speedups is not None else None


def _log_metrics_py(self: ActiveRun, metrics: Mapping[Any, Any], step: int | None = None) -> None:
    """``ActiveRun.log_metrics`` in pure Python (no C extension, or ``AUTOLOG_PURE_PYTHON=1``)."""
    if step is None:
        step = self._step
        self._step += 1
    values = dict(metrics)
    for value in values.values():
        kind = type(value)
        if kind is not float and kind is not int:  # (identity: a class may be unhashable, by its metaclass)
            values = _detached(values)
            break
    self._writer.put((METRICS, self.id, step, _now(), values))


def _log_metrics_c(self: ActiveRun, metrics: Mapping[Any, Any], step: int | None = None) -> None:
    """``ActiveRun.log_metrics`` with the C extension: it puts (METRICS, id, step, time.time(), dict(metrics))
    when ``metrics`` is an exact dict of exact float/int values (the same record as ``_log_metrics_py``);
    anything else (tensors to detach, numpy scalars, another Mapping) takes the Python line below."""
    if step is None:
        step = self._step
        self._step += 1
    if not _log_plain(self._writer.put, METRICS, self.id, step, metrics):  # type: ignore[misc]
        self._writer.put((METRICS, self.id, step, _now(), _detached(dict(metrics))))


class ActiveRun:
    """A run being logged. Logging methods are O(1) appends; nothing here does I/O."""

    __slots__ = ("_step", "_writer", "ended", "experiment", "id", "name", "parent_id", "state", "user_started")

    def __init__(self, start: RunStart, user_started: bool) -> None:
        self.id = start.run_id
        self.experiment = start.experiment
        self.name = start.name
        self.parent_id = start.parent_id
        self.user_started = user_started
        self.ended = False
        self.state: dict[str, Any] = {}  # integrations keep per-run state here (e.g. a step offset)
        self._writer = session.writer()  # its ``put`` is looked up per call: a forked child gets a fresh one
        self._step = 0

    log_metrics = _log_metrics_py if _log_plain is None else _log_metrics_c

    def put_metrics(self, values: dict[Any, Any], step: int) -> None:
        """For integrations on a hot path: ``values`` is a fresh dict handed over (not copied) whose tensors are
        already detached (``log_metrics`` would copy it and detach each tensor again)."""
        self._writer.put((METRICS, self.id, step, _now(), values))

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        self.log_metrics({key: value}, step)

    def log_params(self, params: Mapping[Any, Any]) -> None:
        if params:
            self._writer.put((PARAMS, self.id, dict(params)))

    def set_tags(self, tags: Mapping[Any, Any]) -> None:
        if tags:
            self._writer.put((TAGS, self.id, dict(tags)))

    def log_artifact(self, artifact: Artifact) -> None:
        self._writer.put((ARTIFACT, self.id, artifact))

    def log_model(self, model: ModelArtifact) -> None:
        self.log_artifact(model)

    def log_artifact_after_end(self, artifact: Artifact) -> None:
        """An artifact that is slow to produce (a chart): queued once the run has ended, so the end-of-run wait
        does not include it; ``flush()`` and exit do. An ended run queues it at once."""
        if self.ended:
            self.log_artifact(artifact)
        else:
            self.state.setdefault("after_end", []).append(artifact)

    def end(self, status: str = FINISHED, *, wait: bool = True) -> None:
        """End the run. With ``wait``, block until the store has it (at most ``shutdown_timeout`` seconds) and
        report anything dropped so far; child runs of a search pass ``wait=False``."""
        global _ambient
        if self.ended:
            return
        for callback in self.state.pop("on_end", ()):  # integrations log their final model here
            _errors.firewall("run:on_end", callback, self, status)
        self.ended = True
        with _open_lock:
            _open.pop(self.id, None)
        if _ambient is self:
            _ambient = None
        self._writer.put((END, RunEnd(self.id, status, time.time())))
        if wait:
            session.end_of_run(self._writer)
        for artifact in self.state.pop("after_end", ()):
            self._writer.put((ARTIFACT, self.id, artifact))

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.name!r} experiment={self.experiment!r}>"


def _detached(values: dict[Any, Any]) -> dict[Any, Any]:
    """Tensors are detached here (no device sync) so the autograd graph is freed; the writer reads them."""
    out = {}
    for key, value in values.items():
        detach = getattr(value, "detach", None)
        out[key] = detach() if callable(detach) else value
    return out


def active_run() -> ActiveRun | None:
    run = _current.get()
    if run is not None and not run.ended:
        return run
    return _ambient if _ambient is not None and not _ambient.ended else None


PLAIN_LOOP = "plain_loop"  # in ActiveRun.state: the plain-torch integration's own run, spanning the script


def run_to_join() -> ActiveRun | None:
    """The active run a framework's fit joins: any, except a plain training loop's own run (it spans the script,
    ambient; a Keras or Lightning fit after the loop is a run of its own, as it would be without the loop)."""
    run = active_run()
    return None if run is not None and run.state.get(PLAIN_LOOP) else run


def new_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: ActiveRun | None = None,
    user_started: bool = False,
) -> ActiveRun:
    """Create a run and queue its start. It is not made active: see ``activate`` and ``start_run``."""
    opts = session.options()
    run_id = uuid.uuid4().hex
    all_tags = {**opts.tags, **(tags or {})}
    if parent is None and "mlflow" in sys.modules and not opts.exclusive:
        joined = _errors.firewall("runs.mlflow_join", _mlflow_run_to_join, opts.backend)
        if joined:
            all_tags[_MLFLOW_JOIN_TAG] = joined
    start = RunStart(
        run_id=run_id,
        experiment=experiment or (parent.experiment if parent else None) or opts.experiment,
        name=name or f"run-{run_id[:8]}",
        start_time=time.time(),
        parent_id=parent.id if parent is not None else None,
        tags=all_tags,
    )
    run = ActiveRun(start, user_started)
    with _open_lock:
        _open[run_id] = run
    session.writer().put((START, start))
    return run


_MLFLOW_JOIN_TAG = "autolog.mlflow_run_id"


def attach(run_id: str, experiment: str, name: str) -> ActiveRun:
    """A run that another process started and will end, logged into from this one (a spawned training worker's
    view of its parent's run). Its records go through this process's writer; it is never started, ended or
    ended at exit here, and is not one of this process's open runs."""
    return ActiveRun(RunStart(run_id=run_id, experiment=experiment, name=name, start_time=time.time()), False)


def _mlflow_run_to_join(backend: Any) -> str | None:
    """A run the user opened with ``mlflow.start_run()`` is joined by an MLflow backend: note its id now, on the
    user's thread (MLflow's active run is per thread; the writer thread cannot see it)."""
    specs = backend if isinstance(backend, list) else [backend]
    if not any(isinstance(s, str) and s.startswith("mlflow") for s in specs):
        return None
    from autolog.backends.mlflow import active_mlflow_run_id

    return active_mlflow_run_id()


def activate(run: ActiveRun) -> contextvars.Token[ActiveRun | None]:
    return _current.set(run)


def deactivate(token: contextvars.Token[ActiveRun | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:  # reset from another context (a framework moved threads): clear instead
        _current.set(None)


def set_ambient(run: ActiveRun | None) -> None:
    global _ambient
    _ambient = run


def status_for(exc: BaseException | None) -> str:
    if exc is None:
        return FINISHED
    return KILLED if isinstance(exc, KeyboardInterrupt) else FAILED


@contextmanager
def start_run(
    name: str | None = None, *, experiment: str | None = None, tags: Mapping[str, Any] | None = None
) -> Iterator[ActiveRun]:
    """Open a run for the block; autologging inside joins it and never ends it.

    Nested ``start_run`` blocks create child runs of the enclosing one.
    """
    run = new_run(name, experiment=experiment, tags=tags, parent=active_run(), user_started=True)
    token = activate(run)
    try:
        yield run
    except GeneratorExit:
        # the context manager was dropped without __exit__ (``start_run().__enter__()`` kept no reference and was
        # garbage-collected): not a failure; the run stays open until ``end_run()`` or exit ends it
        return
    except BaseException as exc:
        run.end(status_for(exc))
        deactivate(token)
        raise
    deactivate(token)
    run.end(FINISHED)


def end_open_runs(status: str) -> int:
    """End every run still open in this process (at exit). Returns how many."""
    with _open_lock:
        runs = list(_open.values())
    for run in runs:
        run.end(status, wait=False)
    return len(runs)


def after_fork_in_child() -> None:
    """A forked child (e.g. a DataLoader worker) owns none of the parent's runs."""
    global _ambient
    with _open_lock:
        _open.clear()
    _ambient = None
