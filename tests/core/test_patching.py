"""Patching: the firewall, exact revert, the gate, suppression and nesting."""

from __future__ import annotations

import inspect
import types
import warnings
from typing import Any

import pytest
import wrapt

import autolog
from autolog import _errors, runs
from autolog.backends.memory import MemoryBackend
from autolog.patching import registry, training_wrapper


class Base:
    def fit(self, x: int) -> int:
        self.calls = getattr(self, "calls", 0) + 1
        return x * 2


class Child(Base):
    pass


class Estimator:
    def fit(self, x: int) -> str:
        if x < 0:
            raise ValueError("negative")
        return f"fitted {x}"


class Call:
    """A minimal integration call: opens a run, logs a param, ends the run with the right status."""

    def __init__(self, args: tuple, kwargs: dict) -> None:
        self.args, self.kwargs = args, kwargs
        self.run = runs.new_run("test")
        self.token = runs.activate(self.run)
        self.run.log_params({"x": args[0] if args else kwargs.get("x")})

    def finish(self, result: object) -> None:
        runs.deactivate(self.token)
        self.run.end("FINISHED")

    def fail(self, exc: BaseException) -> None:
        runs.deactivate(self.token)
        self.run.end(runs.status_for(exc))


def _start(wrapped, instance, args, kwargs):
    return Call(args, kwargs)


@pytest.fixture
def patched(memory_store: MemoryBackend):
    registry.patch("test", Estimator, "fit", training_wrapper("test", "test:Estimator.fit", _start))
    yield memory_store
    registry.revert("test")


def test_wrapped_call_logs_a_run_and_returns_the_real_result(patched: MemoryBackend) -> None:
    assert Estimator().fit(3) == "fitted 3"
    (run,) = patched.runs.values()
    assert run.params == {"x": "3"} and run.status == "FINISHED"


def test_user_exception_propagates_as_the_same_object_and_the_run_fails(patched: MemoryBackend) -> None:
    with pytest.raises(ValueError) as info:
        Estimator().fit(-1)
    assert str(info.value) == "negative"
    (run,) = patched.runs.values()
    assert run.status == "FAILED"


def test_user_exception_is_the_very_object_raised(patched: MemoryBackend) -> None:
    error = KeyError("mine")

    class Raiser(Estimator):
        def fit(self, x: int) -> str:
            raise error

    registry.patch("test", Raiser, "fit", training_wrapper("test", "test:Raiser.fit", _start))
    with pytest.raises(KeyError) as info:
        Raiser().fit(1)
    assert info.value is error


def test_keyboard_interrupt_ends_the_run_killed(patched: MemoryBackend) -> None:
    class Interrupted(Estimator):
        def fit(self, x: int) -> str:
            raise KeyboardInterrupt

    registry.patch("test", Interrupted, "fit", training_wrapper("test", "test:Interrupted.fit", _start))
    with pytest.raises(KeyboardInterrupt):
        Interrupted().fit(1)
    assert [r.status for r in patched.runs.values()] == ["KILLED"]


def test_error_planted_in_our_wrapper_is_swallowed_once(patched: MemoryBackend, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLOG_TESTING", "0")
    calls = []

    def broken_start(wrapped, instance, args, kwargs):
        calls.append(1)
        raise RuntimeError("bug in autolog")

    class Counted:
        n = 0

        def fit(self, x: int) -> int:
            Counted.n += 1
            return x + 1

    registry.patch("test", Counted, "fit", training_wrapper("test", "test:Counted.fit", broken_start))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Counted().fit(1) == 2
        assert Counted().fit(5) == 6
    ours = [w for w in caught if issubclass(w.category, autolog.AutologWarning)]
    assert len(ours) == 1 and "test:Counted.fit" in str(ours[0].message)
    assert Counted.n == 2  # the original ran exactly once per call
    assert _errors.errors["test:Counted.fit"] == 2


def test_error_in_our_wrapper_raises_in_test_mode(patched: MemoryBackend) -> None:
    _errors.inject_faults.add("test:Estimator.fit")
    with pytest.raises(_errors.AutologInternalError):
        Estimator().fit(1)


def test_revert_restores_the_original_objects_on_base_and_subclass() -> None:
    original = Base.__dict__["fit"]
    assert "fit" not in Child.__dict__
    registry.patch("test", Base, "fit", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))
    registry.patch("test", Child, "fit", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))
    assert Base.__dict__["fit"] is not original
    assert Child().fit(2) == 4
    assert registry.revert("test") == 1  # the subclass inherits the wrapper: it was not wrapped twice
    assert Base.__dict__["fit"] is original
    assert "fit" not in Child.__dict__
    assert Child.fit is original


def test_inherited_attribute_patched_on_a_subclass_is_deleted_on_revert() -> None:
    original = Base.__dict__["fit"]
    registry.patch("test", Child, "fit", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs) + 1)
    assert Child().fit(2) == 5 and Base().fit(2) == 4
    registry.revert("test")
    assert "fit" not in Child.__dict__
    assert Child.fit is original


def test_patching_twice_is_idempotent(patched: MemoryBackend) -> None:
    before = Estimator.__dict__["fit"]
    registry.patch("test", Estimator, "fit", training_wrapper("test", "test:Estimator.fit", _start))
    assert Estimator.__dict__["fit"] is before
    Estimator().fit(1)
    assert len(patched.runs) == 1


def test_nested_calls_log_once_at_the_outermost_level(patched: MemoryBackend) -> None:
    class Outer:
        def fit(self, x: int) -> str:
            return Estimator().fit(x)  # an inner autologged fit

    registry.patch("test", Outer, "fit", training_wrapper("test", "test:Outer.fit", _start))
    assert Outer().fit(4) == "fitted 4"
    assert len(patched.runs) == 1


def test_suppress_and_disable_for_stop_logging(patched: MemoryBackend) -> None:
    with autolog.suppress():
        Estimator().fit(1)
    assert len(patched.runs) == 0
    autolog.enable(backend=patched, sync=True, disable_for=["test"])
    Estimator().fit(1)
    assert len(patched.runs) == 0
    autolog.enable(backend=patched, sync=True, disable_for=())
    Estimator().fit(1)
    assert len(patched.runs) == 1


def test_user_started_run_is_joined_and_not_ended(memory_store: MemoryBackend) -> None:
    class Joining:
        def __init__(self, args: tuple, kwargs: dict) -> None:
            self.args, self.kwargs = args, kwargs
            self.run = runs.active_run()
            assert self.run is not None
            self.run.log_params({"joined": True})

        def finish(self, result: object) -> None:
            pass

        def fail(self, exc: BaseException) -> None:
            pass

    class J:
        def fit(self) -> int:
            return 1

    registry.patch("test", J, "fit", training_wrapper("test", "test:J.fit", lambda w, i, a, k: Joining(a, k)))
    try:
        with autolog.start_run("mine") as run:
            J().fit()
            assert memory_store.runs[run.id].status == "RUNNING"
        assert memory_store.runs[run.id].params == {"joined": "True"}
        assert memory_store.runs[run.id].status == "FINISHED"
        assert len(memory_store.runs) == 1
    finally:
        registry.revert("test")


def test_a_patched_module_function_is_called_and_bound_as_the_function_itself() -> None:
    """A module's plain function gets wrapt's wrapper with the binding that skips a failed ``__self__`` lookup at
    each call (the torch loop's losses, ``backward``): it must still pass ``instance=None`` when called from the
    module, and bind like the function when read through a class (a user's ``loss = F.cross_entropy`` in a class
    body), with the user's arguments unchanged."""
    module = types.ModuleType("fake_framework")

    def loss(a: Any, b: Any = 2) -> tuple[Any, Any]:
        return (a, b)

    module.loss = loss

    class Holder:
        fn = loss

    holder = Holder()
    unpatched = [module.loss(1), module.loss(1, b=3), holder.fn(), Holder.fn(5)]
    seen: list[Any] = []

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append((instance, args, kwargs))
        return wrapped(*args, **kwargs)

    registry.patch("test", module, "loss", wrapper)
    try:
        Holder.fn = module.loss  # as a class body would read it after patching
        assert [module.loss(1), module.loss(1, b=3), holder.fn(), Holder.fn(5)] == unpatched
        assert seen == [(None, (1,), {}), (None, (1,), {"b": 3}), (holder, (), {}), (None, (5,), {})]
        assert inspect.signature(module.loss) == inspect.signature(loss)
        assert module.loss.__wrapped__ is loss
    finally:
        registry.revert("test")
    assert module.loss is loss


def test_a_wrapt_whose_base_takes_no_binding_gets_its_plain_function_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later wrapt could change its base initialiser, which ``_ModuleFunctionWrapper`` calls with a binding; the
    patch must then still land, as wrapt's plain ``FunctionWrapper``. (A wrapt that does not exist yet cannot be
    installed: its refusal is stood in for by a TypeError.)"""
    from autolog import patching

    def refused(wrapped: Any, wrapper: Any) -> Any:
        raise TypeError("__init__() takes at most 3 arguments")

    monkeypatch.setattr(patching, "_ModuleFunctionWrapper", refused)
    module = types.ModuleType("fake_framework")

    def loss(a: Any) -> Any:
        return a * 2

    module.loss = loss
    registry.patch("test", module, "loss", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs) + 1)
    try:
        assert type(module.loss) is wrapt.FunctionWrapper
        assert module.loss(3) == 7
    finally:
        registry.revert("test")
    assert module.loss is loss
