"""Keras 3 (every backend: TensorFlow, torch, JAX) and ``tf.keras`` (TensorFlow >= 2.16 ships Keras 3 as tf.keras).

What it logs, one run per ``Model.fit`` (or into the run the user opened with ``autolog.start_run()``, steps
continuing from the previous ``fit``):

- params: ``fit`` arguments (epochs, batch size inferred from arrays / ``tf.data`` / ``PyDataset`` / DataLoader,
  validation split, presence of validation data, class and sample weights, steps per epoch, ...), optimizer class
  and config (learning rate or its schedule), loss, compiled metrics, parameter counts, EarlyStopping settings;
- metrics: every value Keras puts in ``logs`` per epoch (step = epoch) incl. ``val_*``, per batch as
  ``batch_<name>`` (step = global batch, every ``log_every_n_steps``), ``learning_rate`` per epoch,
  ``stopped_epoch`` / ``restored_epoch`` (EarlyStopping) and ``eval_<name>`` from ``evaluate`` after ``fit``;
- artifacts: ``model_summary.txt``, the final model as ``model/model.keras`` (``autolog.load_model(run_id)``), and
  with ``log_checkpoints=True`` the files your ``ModelCheckpoint`` callbacks write.

Supported: Keras >= 3.0. Turn it off with ``autolog.enable(disable_for=["keras"])`` or ``AUTOLOG_DISABLE=keras``.
Without patching, put ``autolog.integrations.keras.AutologCallback()`` in ``callbacks`` (no TensorFlow needed).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from autolog import _errors, runs, session
from autolog.integrations import Integration
from autolog.integrations import torch as _torch
from autolog.patching import registry, training_wrapper

NAME = "keras"
_FIT_SITE = "keras:Model.fit"
_EVAL_SITE = "keras:Model.evaluate"
_DATA_ARGS = ("x", "y", "callbacks", "verbose", "validation_data", "class_weight", "sample_weight")
_PLAIN_FIT_ARGS = (
    "epochs",
    "validation_split",
    "shuffle",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
_KERAS_DEFAULT_BATCH = 32  # what Keras uses for arrays when batch_size is None


def __getattr__(name: str) -> Any:
    # The callback subclasses keras.callbacks.Callback: importing it imports keras, so it is loaded on first use
    # (this module is also loaded when only tensorflow is imported, and must not import keras then).
    if name in ("AutologCallback", "EvaluateCallback"):
        from autolog.integrations import _keras_callback

        return getattr(_keras_callback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class KerasIntegration(Integration):
    name = NAME
    modules = ("keras", "tensorflow")
    distribution = "keras"
    min_version = "3.0"

    def patch(self, module_name: str) -> None:
        # "tensorflow" alone does nothing: tf.keras is Keras 3 and imports ``keras`` when first touched, which
        # fires the "keras" hook. (Inside ``import keras`` the tensorflow hook fires while keras is half-built.)
        if module_name != "keras":
            return
        model_class = sys.modules["keras"].Model
        for method, site, start in (("fit", _FIT_SITE, _start_fit), ("evaluate", _EVAL_SITE, _start_evaluate)):
            owner = _defining_class(model_class, method)
            registry.patch(NAME, owner, method, training_wrapper(NAME, site, start))


def _defining_class(klass: type, name: str) -> type:
    """Patch the class that defines the method (the backend's Trainer), as the registry wants."""
    for candidate in klass.__mro__:
        if name in candidate.__dict__:
            return candidate
    return klass


# -- fit ----------------------------------------------------------------------------------------------------------
def _keras_backend() -> str:
    import keras

    return str(keras.backend.backend())


class _FitCall:
    def __init__(  # noqa: PLR0917 - built in one place, from _start_fit
        self,
        model: Any,
        run: runs.ActiveRun,
        owned: bool,
        callback: Any,
        user_callbacks: list[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.model, self.run, self.owned, self.callback = model, run, owned, callback
        self.user_callbacks = user_callbacks
        self.args, self.kwargs = args, kwargs
        self.token = runs.activate(run) if owned else None
        # On the torch backend Keras calls loss.backward() itself: the plain-torch integration keeps out of it.
        self.torch = _keras_backend() == "torch"
        if self.torch:
            _torch.stand_down(True)

    def finish(self, result: Any) -> None:
        from autolog.integrations import _keras_callback as kc
        from autolog.integrations import _keras_model

        try:
            log_early_stopping(self.run, self.callback, self.user_callbacks)
            _keras_model.log_checkpoint_files(self.run, self.callback.checkpoint_paths)
            _keras_model.log_model_and_summary(self.run, self.model, None)
            kc.remember(self.model, self.run)
        finally:
            self._close(None)

    def fail(self, exc: BaseException) -> None:
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        if self.torch:
            self.torch = False
            _torch.stand_down(False)
        if self.token is not None:
            runs.deactivate(self.token)
            self.token = None
        if self.owned:
            self.run.end(runs.status_for(exc))


def _start_fit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _FitCall | None:
    import keras

    from autolog.integrations import _keras_callback as kc

    signature = inspect.signature(wrapped)
    bound = signature.bind_partial(*args, **kwargs)
    user_callbacks = _callback_list(bound.arguments.get("callbacks"))
    if user_callbacks is None or any(isinstance(cb, kc.AutologCallback) for cb in user_callbacks):
        return None  # the user's own AutologCallback logs (or a CallbackList we must not rebuild: warned)
    opts = session.options()
    active = runs.run_to_join()
    owned = active is None or (opts.exclusive and active.user_started)
    run = None if owned else active
    # params before anything is started: a failure here leaves no run open and no context changed
    params = (
        None
        if run is not None and run.state.get(kc.PARAMS_KEY)
        else {**fit_params(signature, bound), **kc.model_params(instance)}
    )
    if run is None:
        tags = {"autolog.integration": NAME, "autolog.framework": kc.framework_tag()}
        run = runs.new_run(kc.run_name(instance), tags=tags)
    if params is not None:  # a run that holds several fits keeps the first fit's params
        run.state[kc.PARAMS_KEY] = True
        run.log_params(params)
    callback = kc.AutologCallback()
    callback.attach(run)
    if opts.log_checkpoints:
        callback.checkpoints = [cb for cb in user_callbacks if isinstance(cb, keras.callbacks.ModelCheckpoint)]
    args, kwargs = _with_argument(signature, args, kwargs, "callbacks", [*user_callbacks, callback])
    return _FitCall(instance, run, owned, callback, user_callbacks, args, kwargs)


def _callback_list(value: Any) -> list[Any] | None:
    """The user's callbacks as a new list (theirs is never touched); None when we cannot add ours."""
    import keras

    if value is None:
        return []
    if isinstance(value, keras.callbacks.CallbackList):
        _errors.warn(
            "autolog: fit(callbacks=CallbackList(...)) is used as given; nothing is logged for this fit. "
            "Pass a list, or add autolog.integrations.keras.AutologCallback() to your CallbackList.",
            once_key="keras-callbacklist",
        )
        return None
    if isinstance(value, keras.callbacks.Callback):
        return [value]
    return list(value)


def _with_argument(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any], name: str, value: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """New (args, kwargs) with ``name`` set to ``value`` wherever the caller put it; the originals are untouched."""
    index = list(signature.parameters).index(name)
    if len(args) > index:
        return (*args[:index], value, *args[index + 1 :]), dict(kwargs)
    return tuple(args), {**kwargs, name: value}


def fit_params(signature: inspect.Signature, bound: inspect.BoundArguments) -> dict[str, Any]:
    given = bound.arguments
    defaults = {k: p.default for k, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    values = {**defaults, **given}
    out: dict[str, Any] = {k: values.get(k) for k in _PLAIN_FIT_ARGS if k in values}
    batch_size = infer_batch_size(values.get("x"), values.get("batch_size"))
    if batch_size is not None:
        out["batch_size"] = batch_size
    for key in ("validation_data", "class_weight", "sample_weight"):
        out[key] = values.get(key) is not None
    return out


def infer_batch_size(x: Any, given: Any) -> int | None:
    """Batch size from ``batch_size``, a batched ``tf.data.Dataset``, an object with ``batch_size`` (DataLoader,
    many PyDatasets), the first batch of a ``PyDataset``, or Keras's default of 32 for arrays."""
    if given is not None:
        return int(given)
    if x is None:
        return None
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec"):
        return _tf_dataset_batch_size(x)
    attribute = getattr(x, "batch_size", None)
    if isinstance(attribute, int):
        return attribute
    if _is_py_dataset(x):
        return _first_batch_size(x)
    if hasattr(x, "shape") or isinstance(x, (list, tuple, dict)):
        return _KERAS_DEFAULT_BATCH
    return None  # a generator or iterator: unknown without consuming it


def _tf_dataset_batch_size(dataset: Any) -> int | None:
    node = dataset
    while node is not None:  # prefetch / map / ... wrap the batch node: walk down to it
        size = getattr(node, "_batch_size", None)
        if size is not None:
            return int(size)
        node = getattr(node, "_input_dataset", None)
    return None


def _is_py_dataset(x: Any) -> bool:
    import keras

    return isinstance(x, keras.utils.PyDataset)


def _first_batch_size(dataset: Any) -> int | None:
    try:
        batch = dataset[0]
    except Exception:  # noqa: BLE001 - the user's __getitem__: not ours to report, and not needed for training
        return None
    inputs = batch[0] if isinstance(batch, tuple) else batch
    if isinstance(inputs, dict):
        inputs = next(iter(inputs.values()), None)
    elif isinstance(inputs, (list, tuple)):
        inputs = inputs[0] if inputs else None
    shape = getattr(inputs, "shape", None)
    return int(shape[0]) if shape else None


# -- after fit: early stopping --------------------------------------------------------------------------------------
def log_early_stopping(run: runs.ActiveRun, callback: Any, user_callbacks: list[Any]) -> None:
    import keras

    for stopper in user_callbacks:
        if not isinstance(stopper, keras.callbacks.EarlyStopping):
            continue
        run.log_params(
            {
                "early_stopping.monitor": stopper.monitor,
                "early_stopping.patience": stopper.patience,
                "early_stopping.min_delta": abs(stopper.min_delta),
                "early_stopping.restore_best_weights": stopper.restore_best_weights,
            }
        )
        last = callback.last_epoch
        if last is None:
            return
        step = callback.epoch_step(last) + 1  # after the last epoch: the values of the model that was kept
        metrics: dict[str, Any] = {}  # stopped_epoch: logged by our callback when training stopped early
        if stopper.restore_best_weights and stopper.best_weights is not None:
            metrics["restored_epoch"] = stopper.best_epoch
            metrics.update(callback.epoch_logs.get(stopper.best_epoch, {}))
        if metrics:
            run.log_metrics(metrics, step)
        return


# -- evaluate -----------------------------------------------------------------------------------------------------
class _EvaluateCall:
    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs

    def finish(self, result: Any) -> None:
        pass

    def fail(self, exc: BaseException) -> None:
        pass


def _start_evaluate(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _EvaluateCall | None:
    """``evaluate`` logs ``eval_<name>`` into the run that is active, else the run of this model's last fit."""
    from autolog.integrations import _keras_callback as kc

    run = runs.run_to_join() or kc.run_of(instance)
    if run is None:
        return None
    signature = inspect.signature(wrapped)
    user_callbacks = _callback_list(signature.bind_partial(*args, **kwargs).arguments.get("callbacks"))
    if user_callbacks is None:
        return None
    args, kwargs = _with_argument(signature, args, kwargs, "callbacks", [*user_callbacks, kc.EvaluateCallback(run)])
    return _EvaluateCall(args, kwargs)
