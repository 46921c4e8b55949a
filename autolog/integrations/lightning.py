"""PyTorch Lightning (``lightning.pytorch`` and ``pytorch_lightning``): a run per ``Trainer.fit``.

What is logged: hyper-parameters (``save_hyperparameters`` content and the datamodule's, through Lightning's own
``log_hyperparams``; trainer settings such as max_epochs, precision, accumulate_grad_batches); each optimizer's class
and param-group settings and each scheduler's class; every value logged with ``self.log`` / ``self.log_dict`` at the
step Lightning gives it (train / val / test); the learning rate of each optimizer's param groups per step; early
stopping (stopped epoch, best score) and checkpoints (best path and score; the file itself with
``log_checkpoints=True``); parameter counts and the model summary; the final model (state dict, class path, init
hyper-parameters), reloadable with ``autolog.load_model``. ``validate`` / ``test`` join the active run, else the run
of the module's last fit in this process (its test values beside its training), else open one of their own.

How: ``Trainer.fit`` / ``validate`` / ``test`` are wrapped to add an ``AutologLogger`` (a real Lightning ``Logger``)
and an ``AutologCallback`` beside the user's own loggers and callbacks (new lists on the trainer for the call; the
user's lists are never changed). The logger's ``save()`` does nothing: records are already queued. Under DDP only
global rank 0 logs; with ``strategy="ddp_spawn"`` that is a spawned worker, which logs into the run its parent
opened (see ``_State``). The plain-torch integration stands down while Lightning drives the loop.

Explicit use (without ``autolog.enable()``): ``Trainer(logger=AutologLogger(), callbacks=[AutologCallback()])``.

Supported: lightning >= 2.0 (and pytorch_lightning 2.x by name). Off: ``autolog.enable(disable_for=["lightning"])``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import weakref
from pathlib import Path
from typing import Any, NamedTuple

from autolog import _errors, patching, runs, session
from autolog.integrations import Integration
from autolog.integrations import torch as _torch
from autolog.integrations._torch_model import class_path, snapshot
from autolog.options import Options
from autolog.patching import registry
from autolog.records import Artifact
from autolog.tags import env_rank

NAME = "lightning"
PACKAGES = ("lightning.pytorch", "pytorch_lightning")
TRAINER_SETTINGS = (
    "max_epochs",
    "min_epochs",
    "max_steps",
    "min_steps",
    "precision",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "check_val_every_n_epoch",
    "val_check_interval",
    "log_every_n_steps",
    "limit_train_batches",
    "limit_val_batches",
    "num_devices",
    "num_nodes",
    "world_size",
)


def _global_rank() -> int:
    """This process's global rank: what Lightning's strategy set in its workers (``rank_zero_only.rank``, which
    forked and spawned workers have and the launcher's environment does not), else the environment's. Called at
    every ``log_metrics``: the function object is looked up once."""
    if not _rank_zero_only:
        try:
            from lightning_utilities.core.rank_zero import rank_zero_only

            _rank_zero_only.append(rank_zero_only)
        except ImportError:
            _rank_zero_only.append(None)
    rank = getattr(_rank_zero_only[0], "rank", None)
    return env_rank() if rank is None else int(rank)


_rank_zero_only: list[Any] = []


class _Link(NamedTuple):
    """What a spawned worker needs to log into the run its parent opened (see ``_State.__getstate__``)."""

    pid: int  # the parent's: a copy unpickled in the same process is no worker
    run_id: str
    experiment: str
    name: str
    options: Options | None  # None: the parent's store is an object in its memory, which no other process reaches


class _State:
    """The run one fit logs into, shared by our logger and callback.

    ``strategy="ddp_spawn"`` pickles the trainer, with our logger and callback, into worker processes that run the
    whole fit. Pickled, a state keeps only a ``_Link`` to its run: in the worker of global rank 0 the callback
    ``adopt``s that run and logs into it through the worker's own writer, into the same store, so a fit is one run
    whatever the number of processes. The worker never starts or ends the run: the parent does, around the spawn.
    """

    def __init__(self, run: runs.ActiveRun | None = None, owner: str | None = None) -> None:
        self.run = run
        self.owner = owner  # "wrapper", "callback", "logger": who ends the run; "joined" / "worker": nobody here
        self.interrupted = False
        self.lr_step = -1
        self.lr_monitor = False  # the user's LearningRateMonitor logs the learning rates: not twice under one key
        self.lr_names: tuple[tuple[int, ...], list[tuple[str, Any]]] = ((), [])  # the optimizers' ids, their lr keys
        self.done: set[str] = set()
        self.link: _Link | None = None
        self.pid = os.getpid()  # another pid: a forked worker (strategy="ddp_fork" / "ddp_notebook")

    def __getstate__(self) -> dict[str, Any]:
        run = self.run
        if run is None:
            return {"link": self.link}
        opts = session.options()
        reachable = _reachable(opts.backend)
        if reachable:
            # The run's start must be in the store before a worker writes into it (a store that met the worker's
            # records first would file them under a placeholder run): once per spawn, not on a training path.
            session.flush(opts.shutdown_timeout)
        return {"link": _Link(os.getpid(), run.id, run.experiment, run.name, opts if reachable else None)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        link = state.get("link")
        self.link = link if link is not None and link.pid != os.getpid() else None  # a copy here is no worker

    def adopt(self) -> None:
        """In a spawned worker of global rank 0: log into the parent's run through this process's session."""
        link = self.link
        if link is None or self.run is not None:
            return
        if link.options is None:
            _errors.warn(
                "autolog: the Lightning workers of this fit are spawned processes (strategy='ddp_spawn'), which "
                "cannot write into a store that is an object in the parent's memory: this run gets no values from "
                "training. Give autolog a store URI (e.g. the default sqlite:///...) or use strategy='ddp'.",
                once_key="lightning-spawn-unreachable",
            )
            return
        if session.options() != link.options:
            session.configure(link.options)  # the parent's store and settings, whatever this process enabled
        self.run, self.owner = runs.attach(link.run_id, link.experiment, link.name), "worker"

    def worker_done(self) -> None:
        """The end of a worker's fit: its records reach the store before the parent ends the run (a forked worker
        leaves through ``os._exit``, without the exit handler that would otherwise send them)."""
        if self.run is not None and (self.owner == "worker" or self.pid != os.getpid()):
            session.end_of_run(session.writer())


def _reachable(backend: Any) -> bool:
    """Whether another process can open this store: a URI (or a fan-out of URIs), not a Backend object."""
    specs = backend if isinstance(backend, list) else [backend]
    return all(isinstance(spec, str) for spec in specs)


def _new_run(name: str | None = None) -> runs.ActiveRun:
    return runs.new_run(name, tags={"autolog.integration": NAME})


def _run_name(wrapped: Any, trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The LightningModule's class name (``MyModel``; ``MyModel-test`` for ``Trainer.test``), as a scikit-learn
    run is named after its estimator; None (an id) when no module is given or attached."""
    module = _module_of(trainer, args, kwargs)
    if module is None:
        return None
    method = getattr(wrapped, "__name__", "fit")
    return type(module).__name__ + ("" if method == "fit" else f"-{method}")


def _module_of(trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    module = args[0] if args else kwargs.get("model")
    return getattr(trainer, "lightning_module", None) if module is None else module


# LightningModule -> the run of its last fit, so that ``trainer.test(model)`` after ``trainer.fit(model)`` logs its
# values into that run. Weak: a module the user drops is forgotten with it.
_fit_runs: weakref.WeakKeyDictionary[Any, runs.ActiveRun] = weakref.WeakKeyDictionary()


def _remember_fit(module: Any, run: runs.ActiveRun | None) -> None:
    if module is not None and run is not None:
        _fit_runs[module] = run


def _fit_run(module: Any) -> runs.ActiveRun | None:
    try:
        return _fit_runs.get(module)
    except TypeError:  # not weakly referenceable / hashable: never remembered
        return None


def _flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    items = vars(params) if hasattr(params, "__dict__") and not isinstance(params, dict) else dict(params or {})
    out: dict[str, Any] = {}
    for key, value in items.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


_classes: dict[str, tuple[type, type]] = {}


def classes(package: str) -> tuple[type, type]:
    """(AutologLogger, AutologCallback) subclassing the Lightning of ``package`` (its isinstance checks need it)."""
    if package not in _classes:
        _classes[package] = _build(package)
    return _classes[package]


def _build(package: str) -> tuple[type, type]:
    pl = importlib.import_module(package)
    Logger = importlib.import_module(f"{package}.loggers.logger").Logger
    suffix = "" if package == "lightning.pytorch" else "_pytorch_lightning"

    class AutologLogger(Logger):  # type: ignore[misc, valid-type]
        """A Lightning ``Logger`` writing into autolog's run (global rank 0 only; the others do nothing).

        ``name`` and ``version`` are empty and ``save_dir`` is the trainer's root, so checkpoint and log
        directories stay where they would be without this logger.
        """

        def __init__(self, save_dir: str | None = None) -> None:
            super().__init__()
            self._state = _State()
            self._save_dir = save_dir

        @property
        def name(self) -> str:
            return ""

        @property
        def version(self) -> str:
            return ""

        @property
        def save_dir(self) -> str | None:
            return self._save_dir

        @property
        def experiment(self) -> runs.ActiveRun | None:
            return self._run()

        def _run(self) -> runs.ActiveRun | None:
            if _global_rank() != 0:  # a worker of another rank holds a copy of the run (forked): not its to log
                return None
            state = self._state
            if state.run is None and state.owner is None and state.link is None:
                state.run, state.owner = _new_run(), "logger"  # explicit use, no callback: our own run
            return state.run

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            run = self._run()
            if run is not None:
                _errors.firewall("lightning:log_hyperparams", run.log_params, _flatten(params))

        def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
            run = self._run()
            if run is not None:
                run.log_metrics(metrics, step)

        def save(self) -> None:
            """Nothing to do: every record is already queued for the writer thread (no flush, no wait)."""

        def finalize(self, status: str) -> None:
            state = self._state
            if state.owner == "logger" and state.run is not None:
                state.run.end("FINISHED" if status == "success" else "FAILED", wait=False)
                state.run, state.owner = None, None

    class AutologCallback(pl.Callback):  # type: ignore[misc, name-defined]
        """Logs what a logger does not see: trainer settings, optimizers, lr, early stopping, checkpoints, model."""

        def __init__(self) -> None:
            self._state = _State()
            self._stood_down = False
            _skip_unused_hooks(self, pl.Callback)

        def __getstate__(self) -> dict[str, Any]:
            # the state itself, so that a spawned worker's logger and callback share one copy (pickle's memo)
            return {"_state": self._state, "_stood_down": False}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            _skip_unused_hooks(self, pl.Callback)

        def _bind(self, trainer: Any) -> _State | None:
            if not self._stood_down:
                _torch.stand_down(True)
                self._stood_down = True
            state = self._state
            if trainer.global_rank != 0:
                return None
            if state.link is not None:  # a spawned worker: the parent's run, never one of its own
                state.adopt()
                return state
            if state.run is None and state.owner is None:
                for logger in trainer.loggers:  # an explicit logger that opened its run already: share it
                    if isinstance(logger, AutologLogger) and logger._state.run is not None:
                        self._state = state = logger._state
                        break
            if state.run is None and state.owner is None:
                run = runs.run_to_join()
                if run is None:
                    module = getattr(trainer, "lightning_module", None)
                    state.run = _new_run(None if module is None else type(module).__name__)
                    state.owner = "callback"
                else:
                    state.run, state.owner = run, "joined"
            for logger in trainer.loggers:
                if isinstance(logger, AutologLogger) and logger._state is not state:
                    logger._state = state
            return state

        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            state = self._bind(trainer)
            if state is None or state.run is None:
                return
            if stage == "fit":
                _errors.firewall("lightning:remember", _remember_fit, pl_module, state.run)
            elif _fit_run(pl_module) is state.run:
                return  # a test / validate in its fit's run: the fit logged the settings (another trainer's differ)
            _errors.firewall("lightning:setup", _log_setup, state.run, trainer, pl_module)

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            state = self._state
            state.lr_monitor = any(type(cb).__name__ == "LearningRateMonitor" for cb in trainer.callbacks)
            if state.run is not None and trainer.global_rank == 0:
                _errors.firewall("lightning:on_train_start", _log_optimizers, state.run, trainer)

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            state = self._state
            run = state.run
            if run is None or state.lr_monitor or trainer.global_rank != 0:
                return
            step = _logger_step(trainer)
            if step == state.lr_step:
                return
            state.lr_step = step
            n = session.options().log_every_n_steps
            if n > 1 and step % n:
                return
            optimizers = trainer.optimizers
            ids = tuple(map(id, optimizers))  # (the names below hold the optimizers: their ids are not reused)
            if ids != state.lr_names[0]:
                state.lr_names = (ids, _lr_names(optimizers))
            lrs = {}
            for key, opt in state.lr_names[1]:
                for i, group in enumerate(opt.param_groups):
                    lrs[key if len(opt.param_groups) == 1 else f"{key}/pg{i}"] = group["lr"]
            if lrs:
                run.log_metrics(lrs, step)

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            state = self._state
            if state.run is not None and trainer.global_rank == 0:
                _errors.firewall("lightning:on_fit_end", _log_fit_end, state.run, trainer, pl_module)

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            self._state.interrupted = isinstance(exception, KeyboardInterrupt)
            if self._state.owner == "callback":
                self._end(runs.status_for(exception))
            self._state.worker_done()
            self._release()  # Lightning does not call teardown after an exception

        def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
            if self._state.owner == "callback":
                self._end("FINISHED")
            self._state.worker_done()
            self._release()

        def _release(self) -> None:
            if self._stood_down:
                self._stood_down = False
                _torch.stand_down(False)

        def _end(self, status: str) -> None:
            state = self._state
            if state.run is not None:
                state.run.end(status, wait=False)
            state.run, state.owner = None, None

        def state_dict(self) -> dict[str, Any]:
            return {}  # nothing of ours goes into the user's checkpoints

    for cls in (AutologLogger, AutologCallback):
        cls.__name__ = cls.__qualname__ = cls.__name__ + suffix
        cls.__module__ = __name__
        globals()[cls.__name__] = cls  # picklable by reference (DDP spawn pickles the trainer's callbacks)
    return AutologLogger, AutologCallback


# Hooks Lightning calls for every callback at every batch (or every optimizer step) and ours does not use.
UNUSED_BATCH_HOOKS = (
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def _skip_unused_hooks(callback: Any, base: type) -> None:
    """Have Lightning pass over the per-batch hooks ``callback`` does not use.

    Lightning calls each hook of each callback, the base class's no-op ones included, inside a profiler context (a
    dozen Python calls a hook: five hooks a training step cost more than all of autolog's own work in the step). It
    skips a hook that is not callable. So each unused one is None on the instance. A subclass that defines one keeps
    it, and ``super()`` in a subclass still finds the no-op method, on the class."""
    for name in UNUSED_BATCH_HOOKS:
        method = getattr(base, name, None)
        if method is not None and getattr(type(callback), name, None) is method:
            setattr(callback, name, None)


def _log_setup(run: runs.ActiveRun, trainer: Any, pl_module: Any) -> None:
    params: dict[str, Any] = {}
    for name in TRAINER_SETTINGS:
        value = getattr(trainer, name, None)
        if value is not None:
            params[f"trainer.{name}"] = value
    params["trainer.strategy"] = type(trainer.strategy).__name__
    params["model_class"] = class_path(pl_module)
    params["model_parameters"] = sum(p.numel() for p in pl_module.parameters())
    params["model_trainable_parameters"] = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is not None:
        params["datamodule_class"] = class_path(datamodule)
        params.update(_flatten(getattr(datamodule, "hparams", {}), "datamodule."))
    for cb in trainer.callbacks:
        if type(cb).__name__ == "EarlyStopping" or (hasattr(cb, "stopped_epoch") and hasattr(cb, "patience")):
            params.update({f"early_stopping.{k}": getattr(cb, k, None) for k in ("monitor", "mode", "patience")})
            params["early_stopping.min_delta"] = abs(float(cb.min_delta))
    run.log_params(params)
    summary = _summary_text(trainer, pl_module)
    if summary:
        run.log_artifact(Artifact("model_summary.txt", _text_writer(summary)))


def _summary_text(trainer: Any, pl_module: Any) -> str:
    package = type(trainer).__module__.split(".trainer", 1)[0]
    try:
        summary = importlib.import_module(f"{package}.utilities.model_summary").ModelSummary(pl_module, max_depth=1)
        return str(summary)
    except Exception:  # noqa: BLE001 - the summary is a nicety; counts are logged as params anyway
        return ""


def _logger_step(trainer: Any) -> int:
    """The step Lightning gives its loggers (batches that stepped): ``global_step`` counts every optimizer's steps,
    so with manual optimization and two optimizers it runs twice as fast as the ``self.log`` values' steps."""
    step = getattr(getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None), "_batches_that_stepped", None)
    return trainer.global_step if step is None else int(step)


def _lr_names(optimizers: list[Any]) -> list[tuple[str, Any]]:
    names: list[tuple[str, Any]] = []
    seen: dict[str, int] = {}
    for opt in optimizers:
        base = f"lr-{type(opt).__name__}"
        seen[base] = seen.get(base, 0) + 1
        names.append((base if seen[base] == 1 else f"{base}-{seen[base] - 1}", opt))
    return names


def _log_optimizers(run: runs.ActiveRun, trainer: Any) -> None:
    params: dict[str, Any] = {}
    for index, opt in enumerate(trainer.optimizers):
        prefix = "optimizer" if index == 0 else f"optimizer_{index}"
        params[prefix] = type(opt).__name__
        for i, group in enumerate(opt.param_groups):
            where = prefix if len(opt.param_groups) == 1 else f"{prefix}.pg{i}"
            params.update({f"{where}.{k}": v for k, v in group.items() if k != "params"})
    for index, config in enumerate(getattr(trainer, "lr_scheduler_configs", []) or []):
        prefix = "lr_scheduler" if index == 0 else f"lr_scheduler_{index}"
        params[prefix] = type(config.scheduler).__name__
        params[f"{prefix}.interval"] = config.interval
    run.log_params(params)


def _log_fit_end(run: runs.ActiveRun, trainer: Any, pl_module: Any) -> None:
    metrics: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for cb in trainer.callbacks:
        if hasattr(cb, "stopped_epoch") and hasattr(cb, "patience"):
            metrics["early_stopping.stopped_epoch"] = cb.stopped_epoch
            metrics["early_stopping.wait_count"] = cb.wait_count
            if getattr(cb, "best_score", None) is not None:
                metrics["early_stopping.best_score"] = cb.best_score
    for index, cb in enumerate(getattr(trainer, "checkpoint_callbacks", []) or []):
        prefix = "checkpoint" if index == 0 else f"checkpoint_{index}"
        best = getattr(cb, "best_model_path", "")
        if not best:
            continue
        params[f"{prefix}.best_model_path"] = best
        if getattr(cb, "best_model_score", None) is not None:
            metrics[f"{prefix}.best_model_score"] = cb.best_model_score
        if session.options().log_checkpoints and Path(best).is_file():
            run.log_artifact(Artifact(f"checkpoints/{Path(best).name}", _copier(best)))
    if params:
        run.log_params(params)
    if metrics:
        run.log_metrics(metrics, _logger_step(trainer))
    if session.options().log_models:
        run.log_model(snapshot(pl_module, init_kwargs=dict(getattr(pl_module, "hparams", {}) or {})))


def _text_writer(text: str) -> Any:
    def write(target: Path) -> None:
        target.write_text(text, encoding="utf-8")  # on the writer thread

    return write


def _copier(source: str) -> Any:
    def write(target: Path) -> None:
        shutil.copyfile(source, target)  # on the writer thread

    return write


# -- the patch ---------------------------------------------------------------------------------------------------
class LightningIntegration(Integration):
    name = NAME
    modules = PACKAGES
    distribution = "lightning"
    min_version = "2.0"

    def patch(self, module_name: str) -> None:
        trainer_cls = importlib.import_module(f"{module_name}.trainer.trainer").Trainer
        for method in ("fit", "validate", "test"):
            site = f"{NAME}:Trainer.{method}"
            registry.patch(NAME, trainer_cls, method, patching.training_wrapper(NAME, site, _starter(module_name)))


class _Call:
    def __init__(self, trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any], state: _State | None) -> None:
        self.args, self.kwargs = args, kwargs
        self.trainer = trainer
        self.state = state
        self.added: list[Any] = []  # our logger / callback, when we added them
        _torch.stand_down(True)

    def _restore(self) -> None:
        # Filter rather than put the old lists back: Lightning adds the module's configure_callbacks() during fit.
        trainer, added = self.trainer, self.added
        if added:
            trainer.callbacks = [cb for cb in trainer.callbacks if not any(cb is a for a in added)]
            trainer.loggers = [lg for lg in trainer.loggers if not any(lg is a for a in added)]
        _torch.stand_down(False)

    def finish(self, result: Any) -> None:
        self._restore()
        state = self.state
        if state is not None and state.owner == "wrapper" and state.run is not None:
            state.run.end("FINISHED")

    def fail(self, exc: BaseException) -> None:
        self._restore()
        state = self.state
        if state is not None and state.owner == "wrapper" and state.run is not None:
            state.run.end("KILLED" if state.interrupted else runs.status_for(exc))


def _starter(package: str) -> Any:
    def start(wrapped: Any, trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        logger_cls, callback_cls = classes(package)
        if env_rank() != 0:  # a DDP worker re-running the script: only rank 0 writes
            return _Call(trainer, args, kwargs, None)
        callbacks = [cb for cb in trainer.callbacks if isinstance(cb, callback_cls)]
        loggers = [lg for lg in trainer.loggers if isinstance(lg, logger_cls)]
        run = runs.run_to_join()
        opts = session.options()
        if run is None and getattr(wrapped, "__name__", "fit") != "fit":
            run = _errors.firewall("lightning:fit_run", lambda: _fit_run(_module_of(trainer, args, kwargs)))
        if run is None or (opts.exclusive and run.user_started):
            name = _errors.firewall("lightning:run_name", _run_name, wrapped, trainer, args, kwargs)
            state = _State(_new_run(name), "wrapper")
        else:
            state = _State(run, "joined")
        call = _Call(trainer, args, kwargs, state)
        if getattr(wrapped, "__name__", "fit") == "fit":  # here too, not only at setup: a spawned fit sets up elsewhere
            _errors.firewall("lightning:remember", _remember_fit, _module_of(trainer, args, kwargs), state.run)
        callback: Any = callbacks[0] if callbacks else callback_cls()
        logger: Any = loggers[0] if loggers else logger_cls(save_dir=trainer.default_root_dir)
        callback._state = logger._state = state
        if not callbacks:
            trainer.callbacks = [*trainer.callbacks, callback]
            call.added.append(callback)
        if not loggers:
            trainer.loggers = [*trainer.loggers, logger]
            call.added.append(logger)
        return call

    return start


def __getattr__(name: str) -> Any:
    """``AutologLogger`` / ``AutologCallback`` for the installed Lightning (``lightning.pytorch`` first)."""
    if name in ("AutologLogger", "AutologCallback"):
        for package in PACKAGES:
            try:
                return classes(package)[name == "AutologCallback"]
            except ImportError:
                continue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
