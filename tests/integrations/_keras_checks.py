"""Checks of the Keras integration, run in one process per Keras backend (Keras picks its backend at import).

``python tests/integrations/_keras_checks.py`` with ``KERAS_BACKEND`` set runs every check (or those named on the
command line) and prints one JSON line: {check: "ok" | "skip: why" | traceback}. ``test_keras.py`` asserts on it.
Each check trains tiny real models and reads back what was stored.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import autolog
from autolog import _errors, integrations, runs, session
from autolog.backends import memory
from autolog.backends.memory import MemoryBackend

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
CHECKS: dict[str, Callable[[], None]] = {}

import keras  # noqa: E402 - imported before any enable(): the hook patches an already imported keras at once


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS[fn.__name__] = fn
    return fn


class Skip(Exception):  # a check that does not apply to this backend
    pass


# -- helpers ------------------------------------------------------------------------------------------------------
def reset() -> None:
    session.set_enabled(False)
    integrations.uninstall()
    session.reset_for_tests()
    runs.after_fork_in_child()
    memory.reset()
    _errors.reset_for_tests()


def enable(**options: Any) -> MemoryBackend:
    reset()
    store = MemoryBackend("memory:keras")
    autolog.enable(backend=store, sync=True, **options)
    return store


def data(rows: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def model(lr: Any = 0.01) -> Any:
    # no keras.utils.set_random_seed: it imports TensorFlow on every backend; no check needs fixed weights
    net = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"), keras.layers.Dense(2, name="out")]
    )
    net.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return net


def only_run(store: MemoryBackend) -> Any:
    found = autolog.search_runs()
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def history(store: MemoryBackend, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(step, value) for step, value, _ in store.get_metric_history(run_id, key)]


def steps(store: MemoryBackend, run_id: str, key: str) -> list[int]:
    return [step for step, _ in history(store, run_id, key)]


class Raise(keras.callbacks.Callback):
    def __init__(self, exc: BaseException, at_epoch: int) -> None:
        super().__init__()
        self.exc, self.at_epoch = exc, at_epoch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == self.at_epoch:
            raise self.exc


# -- checks -------------------------------------------------------------------------------------------------------
@check
def fit_logs_one_run_with_params_and_metrics() -> None:
    store = enable()
    x, y = data(96)
    net = model()
    result = net.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, class_weight={0: 1.0, 1: 2.0}, verbose=0)
    run = only_run(store)
    assert run.status == "FINISHED" and run.name == net.name  # named as Keras names the model
    assert run.tags["autolog.integration"] == "keras"
    p = run.params
    expected = {
        "epochs": "3",
        "batch_size": "16",
        "validation_split": "0.25",
        "class_weight": "True",
        "sample_weight": "False",
        "validation_data": "False",
        "steps_per_epoch": "None",
        "optimizer": "Adam",
        "loss": "sparse_categorical_crossentropy",
        "metrics": "[accuracy]",
        "total_params": str(6 * 8 + 8 + 8 * 2 + 2),
    }
    assert {k: p.get(k) for k in expected} == expected, p
    assert abs(float(p["optimizer.learning_rate"]) - 0.01) < 1e-6
    # per epoch: every value Keras put in logs, the same values History holds, at steps 0, 1, 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        logged = history(store, run.id, key)
        assert [s for s, _ in logged] == [0, 1, 2], (key, logged)
        assert np.allclose([v for _, v in logged], result.history[key]), (key, logged, result.history[key])
    assert [v for _, v in history(store, run.id, "learning_rate")] == [np.float32(0.01).item()] * 3
    # per batch: 72 training rows / 16 = 5 batches per epoch, global steps 0..14
    assert steps(store, run.id, "batch_loss") == list(range(15))
    assert steps(store, run.id, "batch_accuracy") == list(range(15))
    assert "batch_val_loss" not in run.metrics  # validation batches are not training steps


@check
def log_every_n_steps_thins_batch_metrics_only() -> None:
    store = enable(log_every_n_steps=4)
    x, y = data(96)
    model().fit(x, y, epochs=2, batch_size=16, verbose=0)  # 6 batches per epoch, steps 0..11
    run = only_run(store)
    assert steps(store, run.id, "batch_loss") == [0, 4, 8]
    assert steps(store, run.id, "loss") == [0, 1]


@check
def fits_inside_a_user_run_continue_its_steps() -> None:
    store = enable()
    x, y = data(64)
    net = model()
    with autolog.start_run("mine") as mine:
        net.fit(x, y, epochs=2, batch_size=32, verbose=0)  # 2 batches per epoch
        net.fit(x, y, epochs=3, batch_size=16, verbose=0)  # 4 batches per epoch
        assert autolog.active_run() is mine
        scores = net.evaluate(x, y, verbose=0, return_dict=True)
    run = only_run(store)
    assert run.id == mine.id and run.name == "mine" and run.status == "FINISHED"
    assert steps(store, run.id, "loss") == [0, 1, 2, 3, 4]
    assert steps(store, run.id, "batch_loss") == list(range(4 + 12))
    assert run.params["epochs"] == "2" and run.params["batch_size"] == "32"  # the first fit's
    assert np.isclose(run.metrics["eval_loss"], scores["loss"])
    assert steps(store, run.id, "eval_loss") == [4]


class SlowEvery3rdBatch(keras.callbacks.Callback):
    """A user callback that is slow on every third batch. Keras runs batch callbacks on a thread pool when every
    callback is ``async_safe`` (torch and jax backends), so the next batches' callbacks, ours among them, finish
    before this batch's: the values reach our callback out of order, for real."""

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.losses: dict[int, float] = {}
        self.epoch = 0
        self.seen = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if batch % 3 == 0:
            time.sleep(0.01)
        self.losses[self.seen + batch] = float(logs["loss"])

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seen = len(self.losses)


@check
def batch_values_stay_in_order_when_keras_runs_callbacks_on_threads() -> None:
    store = enable()
    x, y = data(96)
    user = SlowEvery3rdBatch()
    model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[user])  # 12 batches per epoch
    run = only_run(store)
    logged = history(store, run.id, "batch_loss")
    assert [step for step, _ in logged] == list(range(24)), logged  # in the order logged, not only sorted
    assert logged == sorted(user.losses.items()), (logged, user.losses)
    assert run.metrics["batch_loss"] == user.losses[23]  # the latest value is the last batch's


@check
def steps_per_execution_chunks_are_logged_in_order() -> None:
    if BACKEND == "torch":
        raise Skip("Keras's torch backend allows only steps_per_execution=1")
    store = enable()
    x, y = data(96)
    net = model()
    net.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=4
    )
    user = SlowEvery3rdBatch()
    net.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[user])  # 12 batches, 3 chunks of 4 per epoch
    run = only_run(store)
    logged = history(store, run.id, "batch_loss")
    # Keras reports a chunk once, at its last batch: 3, 7, 11, then 15, 19, 23 in the second epoch
    assert [step for step, _ in logged] == [3, 7, 11, 15, 19, 23], logged


@check
def a_plain_torch_loop_after_a_fit_logs_only_its_own_losses() -> None:
    if BACKEND != "torch":
        raise Skip("only the torch backend calls torch's backward()")
    import torch

    store = enable()
    x, y = data(96)
    model().fit(x, y, epochs=2, batch_size=8, verbose=0)  # Keras calls loss.backward() 24 times, no torch.optim step
    torch.manual_seed(0)
    net = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).float()
    losses = []
    for _ in range(3):  # a loss written by hand: logged from its backward()
        opt.zero_grad()
        loss = ((net(xt).squeeze(1) - yt) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    autolog.end_run()
    found = [r for r in autolog.search_runs() if r.tags.get("autolog.integration") == "torch"]
    assert len(found) == 1, found
    assert history(store, found[0].id, "loss") == list(enumerate(losses))


@check
def a_fit_after_a_plain_torch_loop_is_a_run_of_its_own() -> None:
    """The plain loop's run spans the script; a Keras fit after it is not part of it (nor its losses the loop's)."""
    try:
        import torch
    except ImportError:
        raise Skip("needs torch") from None

    store = enable()
    net = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(torch.ones(4, 6)).squeeze(1), torch.zeros(4)).backward()
        opt.step()
    x, y = data(32)
    history_ = model().fit(x, y, epochs=2, batch_size=8, verbose=0)
    autolog.end_run()
    by_integration = {r.tags.get("autolog.integration"): r for r in autolog.search_runs()}
    assert sorted(by_integration) == ["keras", "torch"], by_integration
    assert [s for s, _ in history(store, by_integration["torch"].id, "loss")] == [0, 1, 2]
    keras_loss = history(store, by_integration["keras"].id, "loss")
    np.testing.assert_allclose([v for _, v in keras_loss], history_.history["loss"], rtol=1e-5)


@check
def exclusive_gives_each_fit_its_own_run() -> None:
    enable(exclusive=True)
    x, y = data(32)
    with autolog.start_run("mine"):
        model().fit(x, y, epochs=1, verbose=0)
    names = sorted(r.name for r in autolog.search_runs())
    assert len(names) == 2 and "mine" in names, names
    assert "loss" not in next(r for r in autolog.search_runs() if r.name == "mine").metrics


@check
def evaluate_after_fit_goes_to_the_fit_run() -> None:
    store = enable()
    x, y = data(64)
    net = model()
    net.fit(x, y, epochs=2, verbose=0)
    loss, accuracy = net.evaluate(x, y, verbose=0)
    run = only_run(store)
    assert np.isclose(run.metrics["eval_loss"], loss) and np.isclose(run.metrics["eval_accuracy"], accuracy)
    assert steps(store, run.id, "eval_loss") == [1]
    model().evaluate(x, y, verbose=0)  # a model never fitted under autolog: nothing logged, no run
    assert len(autolog.search_runs()) == 1


@check
def user_callbacks_are_left_alone() -> None:
    enable()
    x, y = data(32)
    mine = keras.callbacks.History()
    as_list = [mine]
    model().fit(x, y, epochs=1, verbose=0, callbacks=as_list)
    assert as_list == [mine] and len(as_list) == 1
    as_tuple = (mine,)
    model().fit(x, y, 32, 1, 0, as_tuple)  # callbacks given positionally
    assert as_tuple == (mine,)
    assert len(autolog.search_runs()) == 2


@check
def our_callback_keeps_keras_async_batch_dispatch() -> None:
    from keras.src import backend as keras_backend

    from autolog.integrations.keras import AutologCallback

    enable()
    threads: dict[str, set[str]] = {}

    class Watch(keras.callbacks.Callback):
        def __init__(self, name: str, safe: bool) -> None:
            super().__init__()
            self.name, self.async_safe = name, safe

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            threads.setdefault(self.name, set()).add(threading.current_thread().name)

    x, y = data(64)
    main = threading.current_thread().name
    model().fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[Watch("safe", True)])
    assert len(autolog.search_runs()) == 1  # ours was in the list
    listed = keras.callbacks.CallbackList([AutologCallback()])
    if keras_backend.IS_THREAD_SAFE:  # torch, jax: Keras dispatches batch callbacks to a worker thread
        assert listed._async_train and listed._async_test and listed._async_predict
        assert main not in threads["safe"], threads
        # the control: a callback that does not declare itself safe turns it off (so the check above can fail)
        model().fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[Watch("unsafe", False)])
        assert threads["unsafe"] == {main}, threads
    else:  # tensorflow: Keras never dispatches asynchronously
        assert not listed._async_train
        assert threads["safe"] == {main}


@check
def summary_and_model_round_trip() -> None:
    store = enable()
    x, y = data(64)
    net = model()
    net.fit(x, y, epochs=2, verbose=0)
    run = only_run(store)
    assert store.list_artifacts(run.id) == ["model", "model_summary.txt"]
    summary = (store.download_artifact(run.id, "model_summary.txt")).read_text()
    assert "hidden" in summary and "out" in summary and "Trainable params: 74" in summary, summary
    loaded = autolog.load_model(run.id)
    assert type(loaded) is type(net)
    assert np.allclose(loaded.predict(x, verbose=0), net.predict(x, verbose=0), atol=1e-6)
    net.fit(x, y, epochs=1, verbose=0)  # the logged model was a snapshot: later training does not change it
    assert np.allclose(loaded.predict(x, verbose=0), autolog.load_model(run.id).predict(x, verbose=0))


@check
def log_models_false_logs_no_model() -> None:
    store = enable(log_models=False)
    x, y = data(32)
    model().fit(x, y, epochs=1, verbose=0)
    assert store.list_artifacts(only_run(store).id) == ["model_summary.txt"]


@check
def suppress_and_a_callback_list_log_nothing() -> None:
    import warnings

    store = enable()
    x, y = data(32)
    with autolog.suppress():
        model().fit(x, y, epochs=1, verbose=0)
    net = model()
    given = keras.callbacks.CallbackList([keras.callbacks.History()], model=net)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.fit(x, y, epochs=1, verbose=0, callbacks=given)
    assert len(given.callbacks) == 1  # used as given, not rebuilt
    assert any("CallbackList" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert store.runs == {}


@check
def early_stopping_records_stopped_and_restored_epoch() -> None:
    store = enable()
    x, y = data(64)
    # min_delta larger than any gain: epoch 0 is the best, training stops at epoch 1 with patience 1
    stop = keras.callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=1, restore_best_weights=True)
    model().fit(x, y, epochs=10, verbose=0, callbacks=[stop])
    run = only_run(store)
    assert run.status == "FINISHED"
    losses = history(store, run.id, "loss")
    assert [s for s, _ in losses] == [0, 1, 2]  # two epochs, then the restored epoch's values at step 2
    assert losses[2][1] == losses[0][1]
    assert history(store, run.id, "stopped_epoch") == [(1, 1.0)]
    assert history(store, run.id, "restored_epoch") == [(2, 0.0)]
    assert run.params["early_stopping.monitor"] == "loss"
    assert run.params["early_stopping.restore_best_weights"] == "True"


@check
def stop_training_ends_finished_at_that_epoch() -> None:
    store = enable()

    class StopAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                self.model.stop_training = True

    x, y = data(32)
    model().fit(x, y, epochs=5, verbose=0, callbacks=[StopAt()])
    run = only_run(store)
    assert run.status == "FINISHED"
    assert steps(store, run.id, "loss") == [0, 1]
    assert history(store, run.id, "stopped_epoch") == [(1, 1.0)]


@check
def user_exception_fails_the_run_and_propagates_unchanged() -> None:
    store = enable()

    class Boom(Exception):
        pass

    error = Boom("from the user")
    x, y = data(32)
    try:
        model().fit(x, y, epochs=3, verbose=0, callbacks=[Raise(error, at_epoch=1)])
    except Boom as caught:
        assert caught is error
    else:
        raise AssertionError("fit did not raise")
    run = only_run(store)
    assert run.status == "FAILED"
    assert steps(store, run.id, "loss") == [0]  # the user's callback raised before ours (always last) saw epoch 1
    assert store.list_artifacts(run.id) == []  # no model for a failed fit
    assert autolog.active_run() is None


@check
def keyboard_interrupt_kills_the_run() -> None:
    store = enable()
    x, y = data(32)
    interrupt = KeyboardInterrupt()
    try:
        model().fit(x, y, epochs=3, verbose=0, callbacks=[Raise(interrupt, at_epoch=0)])
    except KeyboardInterrupt as caught:
        assert caught is interrupt
    assert only_run(store).status == "KILLED"


@check
def our_errors_never_break_fit() -> None:
    import warnings

    x, y = data(32)
    os.environ["AUTOLOG_TESTING"] = "0"  # production mode: our errors are swallowed and warned, not raised
    try:
        for target in ("keras:AutologCallback", "keras:Model"):  # our callback's bodies, then the fit/evaluate patch
            store = enable()
            model().fit(x, y, epochs=1, verbose=0)  # registers every site
            sites = {site for site in _errors.sites if site.startswith(target)}
            assert len(sites) >= 2, _errors.sites
            _errors.inject_faults.update(sites)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = model().fit(x, y, epochs=2, verbose=0)
                model().evaluate(x, y, verbose=0)
            _errors.inject_faults.clear()
            assert len(result.history["loss"]) == 2  # fit ran once, fully, and returned its real result
            assert sum(_errors.errors[site] for site in sites) >= 1
            assert any("internal error" in str(w.message) for w in caught)
            assert len(autolog.search_runs()) == 2 if target == "keras:AutologCallback" else 1
            del store
    finally:
        os.environ["AUTOLOG_TESTING"] = "1"
        _errors.inject_faults.clear()


@check
def checkpoints_on_request() -> None:
    x, y = data(32)
    for wanted in (False, True):
        store = enable(log_checkpoints=wanted)
        # weights only: Keras's full-model save imports TensorFlow (when installed) on every backend
        saver = keras.callbacks.ModelCheckpoint(
            str(Path.cwd() / f"ckpt-{wanted}-{{epoch:02d}}.weights.h5"), save_weights_only=True
        )
        model().fit(x, y, epochs=2, verbose=0, callbacks=[saver])
        listed = store.list_artifacts(only_run(store).id)
        names = [f"ckpt-{wanted}-01.weights.h5", f"ckpt-{wanted}-02.weights.h5"]
        expected = [f"checkpoints/{name}" for name in names] if wanted else []
        assert [a for a in listed if a.startswith("checkpoints/")] == expected, listed
        if wanted:
            copy = store.download_artifact(only_run(store).id, expected[1])
            assert copy.read_bytes() == Path(names[1]).read_bytes()


@check
def learning_rate_schedule_params_and_per_epoch_values() -> None:
    store = enable()
    x, y = data(64)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model(schedule).fit(x, y, epochs=2, batch_size=32, verbose=0)  # 2 steps per epoch
    run = only_run(store)
    assert run.params["optimizer.learning_rate"] == "ExponentialDecay"
    assert run.params["optimizer.learning_rate.decay_steps"] == "2"
    assert np.allclose([v for _, v in history(store, run.id, "learning_rate")], [0.05, 0.025])


@check
def batch_size_inferred_from_py_dataset() -> None:
    store = enable()
    x, y = data(60)

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            return x[index * 10 : (index + 1) * 10], y[index * 10 : (index + 1) * 10]

    model().fit(Batches(), epochs=1, verbose=0)
    run = only_run(store)
    assert run.params["batch_size"] == "10"
    assert steps(store, run.id, "batch_loss") == list(range(6))


@check
def batch_size_inferred_from_framework_loader() -> None:
    store = enable()
    x, y = data(48)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        loader: Any = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(48).batch(12).prefetch(2)
    elif BACKEND == "torch":
        import torch

        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=12
        )
    else:
        raise Skip(f"no native loader checked for {BACKEND}")
    model().fit(loader, epochs=1, verbose=0)
    run = only_run(store)
    assert run.params["batch_size"] == "12"
    assert steps(store, run.id, "batch_loss") == [0, 1, 2, 3]


@check
def explicit_callback_without_patching() -> None:
    from autolog.integrations.keras import AutologCallback

    store = enable(disable_for=["keras"])
    assert "keras" not in integrations.active()  # other integrations (torch under the torch backend) stay on
    x, y = data(64)
    net = model()
    net.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[AutologCallback(log_every_n_steps=2)])
    run = only_run(store)
    assert run.status == "FINISHED"
    assert run.tags["autolog.integration"] == "keras"
    assert run.params["epochs"] == "2" and run.params["optimizer"] == "Adam"
    assert steps(store, run.id, "loss") == [0, 1]
    assert steps(store, run.id, "batch_loss") == [0, 2]
    if BACKEND != "tensorflow":  # the callback, its params and its model snapshot never import TensorFlow
        assert "tensorflow" not in sys.modules
    assert np.allclose(autolog.load_model(run.id).predict(x, verbose=0), net.predict(x, verbose=0), atol=1e-6)
    # with patching on as well, the user's own AutologCallback is the only one: one run, logged once
    store = enable()
    model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[AutologCallback()])
    run = only_run(store)
    assert steps(store, run.id, "loss") == [0, 1]


@check
def sqlite_store_through_the_async_writer() -> None:
    reset()
    uri = f"sqlite:///{Path(tempfile.mkdtemp(dir=Path.cwd())) / 'runs.db'}"
    autolog.enable(backend=uri, flush_interval=0.05)
    x, y = data(64)
    net = model()
    net.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    [run] = autolog.search_runs()
    assert run.status == "FINISHED"
    assert [s for s, _, _ in autolog.get_metric_history(run.id, "val_loss")] == [0, 1]
    assert len(autolog.get_metric_history(run.id, "batch_loss")) == 6
    assert np.allclose(autolog.load_model(run.id).predict(x, verbose=0), net.predict(x, verbose=0), atol=1e-6)


@check
def tf_keras_is_patched_too() -> None:
    if BACKEND != "tensorflow":
        raise Skip("tf.keras runs on the TensorFlow backend")
    import tensorflow as tf

    store = enable()
    assert tf.keras.Model is keras.Model  # TensorFlow >= 2.16: tf.keras is Keras 3
    x, y = data(48)
    net = tf.keras.Sequential([tf.keras.Input((6,)), tf.keras.layers.Dense(2)])
    net.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    net.fit(x, tf.one_hot(y, 2), epochs=2, verbose=0)
    run = only_run(store)
    assert run.params["optimizer"] == "SGD" and run.params["loss"] == "mse"
    assert steps(store, run.id, "loss") == [0, 1]


@check
def disable_restores_fit_and_evaluate_exactly() -> None:
    reset()
    owners = {name: next(k for k in keras.Model.__mro__ if name in k.__dict__) for name in ("fit", "evaluate")}
    originals = {name: owner.__dict__[name] for name, owner in owners.items()}
    enable()
    patched = {p.name: p.owner for p in autolog.patching.registry.patches("keras")}
    assert patched == owners, patched  # the backend's Trainer class, which defines them
    assert all(owners[n].__dict__[n] is not originals[n] for n in owners)
    autolog.disable()
    assert all(owners[n].__dict__[n] is originals[n] for n in owners)
    store = MemoryBackend("memory:after")
    x, y = data(32)
    model().fit(x, y, epochs=1, verbose=0)
    assert store.runs == {} and memory._stores == {}


@check
def torch_backend_never_imports_tensorflow() -> None:
    if BACKEND != "torch":
        raise Skip("only meaningful on a non-TensorFlow backend")
    assert "tensorflow" not in sys.modules, "something in this process imported tensorflow"


def main(names: list[str]) -> None:
    results: dict[str, str] = {}
    for name in names or list(CHECKS):
        try:
            CHECKS[name]()
            results[name] = "ok"
        except Skip as why:
            results[name] = f"skip: {why}"
        except BaseException:  # report every check, whatever it raised
            results[name] = traceback.format_exc()
        finally:
            reset()
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
