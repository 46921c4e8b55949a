"""The Keras 3 callbacks that do the logging (``AutologCallback``, ``EvaluateCallback``) and the params they log.

This module imports ``keras`` (never ``tensorflow``): it works on every Keras 3 backend. The ``fit`` patch in
``autolog.integrations.keras`` injects an ``AutologCallback`` that it drives; users without patching put one in
``callbacks=[...]`` themselves and it opens and ends its own run.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from functools import partial
from typing import Any

import keras

from autolog import runs, session
from autolog.integrations._keras_model import log_model_and_summary, without_importing_tensorflow
from autolog.patching import hook
from autolog.records import FINISHED

__all__ = ["AutologCallback", "EvaluateCallback"]

STEP_KEY, EPOCH_KEY, PARAMS_KEY = "keras.step", "keras.epoch", "keras.params_logged"


def _hooked(fn: Any) -> Any:
    """Our callback bodies run inside the firewall: a bug of ours never stops training."""
    return hook("keras", f"keras:{fn.__qualname__}", fn)


class AutologCallback(keras.callbacks.Callback):
    """Logs every value Keras puts in ``logs``: per epoch (step = epoch) and per batch as ``batch_<name>``
    (step = global batch, every ``log_every_n_steps``), plus ``learning_rate`` per epoch.

    Used on its own (``model.fit(..., callbacks=[AutologCallback()])``) it joins the active run or opens one at
    ``on_train_begin`` and, if it opened it, logs the model and ends the run at ``on_train_end``.
    It declares ``async_safe``: on backends where Keras dispatches batch callbacks to a worker thread (torch, jax),
    adding it never makes Keras fall back to synchronous dispatch. It only ever receives values Keras has already
    converted to Python floats, and it reads no tensor on the training thread.
    """

    async_safe = True  # read by keras.callbacks.CallbackList._configure_async_dispatch

    def __init__(self, log_every_n_steps: int | None = None, log_models: bool | None = None) -> None:
        super().__init__()
        self.log_every_n_steps = log_every_n_steps
        self.log_models = log_models
        self.run: runs.ActiveRun | None = None
        self.driven = False  # True when the fit patch owns the run's lifecycle
        self.owns_run = False
        self.epoch_logs: dict[int, dict[str, float]] = {}  # absolute Keras epoch -> its logs
        self.last_epoch: int | None = None
        self._token: Any = None
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}
        self._n = 1
        self._step0 = 0
        self._epoch0 = 0
        self._first_epoch: int | None = None
        self._max_batch = -1
        # Keras may run batch callbacks on a pool of threads, so they can finish out of order. The training thread
        # records where each batch begins; a batch's values wait until every earlier batch of the epoch is logged.
        self._begins: list[int] = []
        self._next = 0  # index in _begins of the next batch to log
        self._waiting: dict[int, tuple[int, dict[str, Any] | None]] = {}
        self.checkpoints: list[Any] = []  # the user's ModelCheckpoint callbacks, with log_checkpoints on
        self.checkpoint_paths: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def attach(self, run: runs.ActiveRun) -> None:
        """Called by the fit patch: log into ``run``; the patch starts and ends it."""
        self.run, self.driven = run, True

    @_hooked
    def on_train_begin(self, logs: Any = None) -> None:
        opts = session.options()
        self._n = self.log_every_n_steps or opts.log_every_n_steps
        if not self.driven:
            self._open_own_run(opts.exclusive)
        run = self.run
        if run is None:
            return
        self._step0 = run.state.get(STEP_KEY, 0)
        self._epoch0 = run.state.get(EPOCH_KEY, -1)
        self._first_epoch, self._max_batch = None, -1
        self._new_epoch()
        self.epoch_logs, self.last_epoch, self.checkpoint_paths = {}, None, []
        if not self.driven and not run.state.get(PARAMS_KEY):
            run.state[PARAMS_KEY] = True
            run.log_params({**fit_params_from_callback(self.params), **model_params(self.model)})

    def _open_own_run(self, exclusive: bool) -> None:
        self.owns_run = False  # a callback reused for another fit decides afresh
        active = runs.run_to_join()
        if active is not None and not (exclusive and active.user_started):
            self.run = active
            return
        name = run_name(self.model)
        self.run = runs.new_run(name, tags={"autolog.integration": "keras", "autolog.framework": framework_tag()})
        self.owns_run = True
        self._token = runs.activate(self.run)

    @_hooked
    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._max_batch = -1
        self._new_epoch()

    def _new_epoch(self) -> None:
        self._begins, self._next, self._waiting = [], 0, {}

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        # The training thread, in order: one list append (no hook firewall needed for an append).
        self._begins.append(batch)

    @_hooked
    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        # May run on a Keras worker thread (async dispatch), concurrently with the next batches' callbacks.
        step = self._step0 + batch
        run = self.run
        out: dict[str, Any] | None = None
        if run is not None and logs and not step % self._n:
            keys = self._keys
            out = {}
            for key, value in logs.items():
                name = keys.get(key)
                if name is None:
                    name = keys[key] = "batch_" + str(key)
                out[name] = value
        with self._lock:
            self._max_batch = max(self._max_batch, batch)
            begins = self._begins
            if not begins:  # driven by hand without on_train_batch_begin: log as called
                if out is not None and run is not None:
                    run.log_metrics(out, step)
                return
            # The batch (or steps_per_execution chunk) this call ends: the last one begun at or before `batch`.
            self._waiting[bisect_right(begins, batch) - 1] = (step, out)
            self._log_ready(run)

    def _log_ready(self, run: runs.ActiveRun | None) -> None:
        """Log, in batch order, every waiting batch whose predecessors are all logged (called under the lock)."""
        waiting = self._waiting
        while self._next in waiting:
            step, out = waiting.pop(self._next)
            self._next += 1
            if out is not None and run is not None:
                run.log_metrics(out, step)

    @_hooked
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        run = self.run
        # Keras has waited for every batch callback of the epoch before calling this (CallbackList flushes).
        with self._lock:
            for index in sorted(self._waiting):  # none is left unless a batch callback was lost: keep its values
                step, out = self._waiting.pop(index)
                if out is not None and run is not None:
                    run.log_metrics(out, step)
            self._new_epoch()
        self._step0 += self._max_batch + 1
        self._max_batch = -1
        if run is None:
            return
        step = self.epoch_step(epoch)
        values = dict(logs or {})
        self.epoch_logs[epoch] = dict(values)
        self.last_epoch = epoch
        for checkpoint in self.checkpoints:  # where it saved this epoch (formatting only, no I/O here)
            path = checkpoint._get_file_path(epoch, None, values)
            if path not in self.checkpoint_paths:
                self.checkpoint_paths.append(path)
        if "learning_rate" not in values:
            lr = current_learning_rate(self.model)
            if lr is not None:
                values["learning_rate"] = lr
        run.log_metrics(values, step)
        run.state[STEP_KEY] = self._step0
        run.state[EPOCH_KEY] = step

    def epoch_step(self, epoch: int) -> int:
        """Steps continue across fits in one run: a fit's first epoch follows the run's last logged epoch."""
        first = self._first_epoch if self._first_epoch is not None else epoch
        if self._epoch0 < 0:  # the run's first fit: Keras's own epoch numbers (initial_epoch honoured)
            return epoch
        return self._epoch0 + 1 + (epoch - first)

    @_hooked
    def on_train_end(self, logs: Any = None) -> None:
        run = self.run
        if run is None:
            return
        model = self.model
        if getattr(model, "stop_training", False) and self.last_epoch is not None:
            run.log_metrics({"stopped_epoch": self.last_epoch}, self.epoch_step(self.last_epoch))
        if self.driven or not self.owns_run:
            return
        log_model_and_summary(run, model, self.log_models)
        remember(model, run)
        run.end(FINISHED)
        if self._token is not None:
            runs.deactivate(self._token)
            self._token = None


class EvaluateCallback(keras.callbacks.Callback):
    """Injected into ``evaluate``: its final results go to the model's run as ``eval_<name>``."""

    async_safe = True

    def __init__(self, run: runs.ActiveRun) -> None:
        super().__init__()
        self.run = run

    @_hooked
    def on_test_end(self, logs: Any = None) -> None:
        if logs:
            step = max(self.run.state.get(EPOCH_KEY, 0), 0)
            self.run.log_metrics({"eval_" + str(k): v for k, v in logs.items()}, step)


# -- parameters ---------------------------------------------------------------------------------------------------
def run_name(model: Any) -> str | None:
    """A run is named after its model, as Keras names it (``sequential``, ``functional_1``, or the name given)."""
    name = getattr(model, "name", None)
    return name if isinstance(name, str) and name else None


def framework_tag() -> str:
    return f"keras {keras.__version__} ({keras.backend.backend()})"


def fit_params_from_callback(params: dict[str, Any] | None) -> dict[str, Any]:
    params = params or {}
    return {k: params[k] for k in ("epochs", "steps") if params.get(k) is not None}


def model_params(model: Any) -> dict[str, Any]:
    """Optimizer class and config (learning rate or its schedule), loss, compiled metrics, parameter counts."""
    out: dict[str, Any] = {}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        out["optimizer"] = type(optimizer).__name__
        with without_importing_tensorflow():  # a schedule in the config goes through Keras's serialiser
            config = optimizer.get_config()
        for key, value in config.items():
            if key == "name" or value is None:
                continue
            if isinstance(value, dict) and "class_name" in value:  # a learning-rate schedule
                out[f"optimizer.{key}"] = value["class_name"]
                for sub, sub_value in (value.get("config") or {}).items():
                    if sub != "name":
                        out[f"optimizer.{key}.{sub}"] = sub_value
            else:
                out[f"optimizer.{key}"] = value
    compile_config = _compile_config(model)
    if compile_config.get("loss") is not None:
        out["loss"] = _names(compile_config["loss"])
    for key in ("metrics", "weighted_metrics", "loss_weights"):
        if compile_config.get(key):
            out[key] = _names(compile_config[key])
    if getattr(model, "built", False):
        out["total_params"] = model.count_params()
        out["trainable_params"] = sum(_size(w) for w in model.trainable_weights)
    return out


def _compile_config(model: Any) -> dict[str, Any]:
    # The raw compile() arguments. ``get_compile_config()`` would serialise them, and Keras's serialiser imports
    # TensorFlow (when installed) even on the torch and JAX backends.
    config = getattr(getattr(model, "_compile_config", None), "config", None)
    return config if isinstance(config, dict) else {}


def _names(value: Any) -> str:
    """Readable names of losses / metrics as ``compile`` got them (strings, serialized objects, nested)."""
    if isinstance(value, dict):
        if "class_name" in value:
            config = value.get("config")
            name = config.get("name") if isinstance(config, dict) else None
            return str(name or value["class_name"])
        return ", ".join(f"{k}: {_names(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_names(v) for v in value) + "]"
    name = getattr(value, "name", None) or getattr(value, "__name__", None)  # Loss / Metric objects, functions
    return str(name if isinstance(name, str) else value)


def _size(weight: Any) -> int:
    total = 1
    for dim in weight.shape:
        total *= int(dim)
    return total


def current_learning_rate(model: Any) -> Any:
    """The optimizer's learning rate now, as a fresh tensor (a copy: the variable may change before the writer
    reads it). No host read here: the writer thread converts it."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        return None
    lr = optimizer.learning_rate
    if isinstance(lr, (int, float)):
        return lr
    return keras.ops.copy(lr)


# -- models -> their last run (so that ``evaluate`` after ``fit`` logs into it) -------------------------------
_model_runs: dict[int, tuple[Any, runs.ActiveRun]] = {}


def remember(model: Any, run: runs.ActiveRun) -> None:
    import weakref

    key = id(model)
    try:
        ref = weakref.ref(model, partial(_forget, key))
    except TypeError:
        return
    _model_runs[key] = (ref, run)


def _forget(key: int, _ref: Any) -> None:
    _model_runs.pop(key, None)


def run_of(model: Any) -> runs.ActiveRun | None:
    entry = _model_runs.get(id(model))
    if entry is None or entry[0]() is not model:
        return None
    return entry[1]
