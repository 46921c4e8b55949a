"""Patching: a registry that restores exactly, the call-time gate, and the training-call wrapper.

Every wrapper follows one shape: gate -> firewall(start) -> the framework call, outside the firewall ->
firewall(finish or fail). The framework call runs exactly once and returns its real result; the user's exceptions
propagate as the same object.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType, FunctionType, ModuleType
from typing import Any, Protocol

import wrapt

from autolog import _errors, session

_MISSING = object()

# Name of the outermost autologged training call running in this context, if any: inner calls stand down.
_training: contextvars.ContextVar[str | None] = contextvars.ContextVar("autolog_training", default=None)
_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar("autolog_suppressed", default=False)


@dataclass
class Patch:
    integration: str
    owner: Any
    name: str
    original: Any  # the raw attribute from owner.__dict__, or _MISSING when it was inherited
    wrapper: Any

    @property
    def site(self) -> str:
        return f"{self.integration}:{getattr(self.owner, '__qualname__', self.owner)}.{self.name}"


class Registry:
    """What was replaced, so ``revert`` puts back exactly the original object (or deletes an inherited one)."""

    def __init__(self) -> None:
        self._patches: dict[tuple[int, str], Patch] = {}
        self._lock = threading.RLock()

    def patch(self, integration: str, owner: Any, name: str, wrapper: Callable[..., Any]) -> Patch | None:
        """Wrap ``owner.name`` with ``wrapper(wrapped, instance, args, kwargs)``. Idempotent per (owner, name)."""
        with self._lock:
            key = (id(owner), name)
            if key in self._patches:
                return self._patches[key]
            original = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
            target = original if original is not _MISSING else _inherited(owner, name)
            if isinstance(target, wrapt.FunctionWrapper) and getattr(target, "_self_autolog", False):
                return None  # already ours (a base class we patched): patching again would log twice
            wrapped = _function_wrapper(owner, target, wrapper)
            wrapped._self_autolog = True  # type: ignore[attr-defined]
            setattr(owner, name, wrapped)
            patch = Patch(integration, owner, name, original, wrapped)
            self._patches[key] = patch
            return patch

    def revert(self, integration: str | None = None) -> int:
        """Undo the patches of one integration (all when None). Returns how many were undone."""
        with self._lock:
            undone = 0
            for key, patch in list(self._patches.items()):
                if integration is not None and patch.integration != integration:
                    continue
                if patch.original is _MISSING:
                    if patch.owner.__dict__.get(patch.name) is patch.wrapper:
                        delattr(patch.owner, patch.name)
                else:
                    setattr(patch.owner, patch.name, patch.original)
                del self._patches[key]
                undone += 1
            return undone

    def patches(self, integration: str | None = None) -> list[Patch]:
        with self._lock:
            return [p for p in self._patches.values() if integration in (None, p.integration)]


class _ModuleFunctionWrapper(wrapt.FunctionWrapper):  # type: ignore[misc]
    """wrapt's ``FunctionWrapper`` for a module's plain function (``torch.nn.functional.cross_entropy``,
    ``torch.autograd.backward``: called each training step).

    Given a function, ``FunctionWrapper`` looks for a ``__self__`` on it at every unbound call (a function that is a
    bound method has one); on a plain function the lookup raises and clears an AttributeError, ~0.6 of the ~0.9 µs
    the wrapper costs a call. Built with wrapt's "staticmethod" binding instead, the call skips that lookup and
    passes ``instance=None`` as before, and the wrapper still binds like the function when it is read through a
    class (``__get__`` defers to the function's own): ``tests/core/test_patching.py`` checks both."""

    def __init__(self, wrapped: FunctionType, wrapper: Callable[..., Any]) -> None:
        super(wrapt.FunctionWrapper, self).__init__(wrapped, None, wrapper, None, "staticmethod")  # type: ignore[call-arg]


def _function_wrapper(owner: Any, target: Any, wrapper: Callable[..., Any]) -> wrapt.FunctionWrapper:
    """wrapt's wrapper of ``target``: the one without the per-call lookup for a module's plain function, unless this
    wrapt's base initialiser no longer takes the binding (then its plain ``FunctionWrapper``, as before)."""
    if isinstance(owner, ModuleType) and isinstance(target, FunctionType):
        try:
            return _ModuleFunctionWrapper(target, wrapper)
        except TypeError:
            pass
    return wrapt.FunctionWrapper(target, wrapper)  # type: ignore[arg-type]


def _inherited(owner: Any, name: str) -> Any:
    for klass in getattr(owner, "__mro__", ())[1:]:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return getattr(owner, name)


registry = Registry()


# -- gate -------------------------------------------------------------------------------------------------------
def gate(integration: str) -> bool:
    """Cheap call-time check: should this call be autologged?"""
    return (
        session.enabled()
        and not _suppressed.get()
        and _training.get() is None
        and not session.options().disabled(integration)
    )


# Modules whose frames are passed over when looking for the code that called a patched function: ours and the
# patching machinery's.
OURS = ("autolog.", "wrapt.", "wrapt", "contextlib")


def called_from(modules: tuple[str, ...], passing: tuple[str, ...] = OURS) -> bool:
    """Whether the nearest calling frame outside the modules ``passing`` names belongs to one of ``modules`` (e.g. a
    ``fit`` called by scikit-learn's own code, not by the user's)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(passing):
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__", "").startswith(modules)


def in_training() -> str | None:
    """The site of the autologged training call running now in this context, or None."""
    return _training.get()


@contextmanager
def suppress() -> Iterator[None]:
    """Nothing inside this block is autologged."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


@contextmanager
def training(site: str) -> Iterator[None]:
    """Mark a training call in progress (inner autologged calls stand down)."""
    token = _training.set(site)
    try:
        yield
    finally:
        _training.reset(token)


# -- the training-call wrapper ------------------------------------------------------------------------------
class Call(Protocol):
    """What an integration's ``start`` returns for one training call."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def finish(self, result: Any) -> None: ...

    def fail(self, exc: BaseException) -> None: ...


Start = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], "Call | None"]


def training_wrapper(integration: str, site: str, start: Start, *, mark_training: bool = True) -> Callable[..., Any]:
    """A wrapt wrapper for a training entry point.

    ``mark_training=False`` leaves the context unmarked while the wrapped call runs, so that an inner patched entry
    point joins this call's run instead of standing down (the sklearn API of xgboost/lightgbm over ``train``).

    ``start(wrapped, instance, args, kwargs)`` runs inside the firewall and returns a ``Call`` (with the arguments
    to pass on, e.g. a copy of the callbacks list with ours added) or None to stand down. Our errors in ``start``,
    ``finish`` or ``fail`` are swallowed by the firewall; the framework call itself runs outside it, once.
    """

    _errors.register_site(site)

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not gate(integration):
            return wrapped(*args, **kwargs)
        call = _errors.firewall(site, start, wrapped, instance, args, kwargs)
        if call is None:
            with training(site):
                return wrapped(*args, **kwargs)
        try:
            if mark_training:
                with training(site):
                    result = wrapped(*call.args, **call.kwargs)
            else:
                result = wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            _errors.firewall(site, call.fail, exc)
            raise
        _errors.firewall(site, call.finish, result)
        return result

    return wrapper


def hook(integration: str, site: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a callback body of ours (e.g. a framework callback method) in the firewall under ``site``."""
    _errors.register_site(site)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        return _errors.firewall(site, fn, *args, **kwargs)

    guarded.__name__ = getattr(fn, "__name__", "hook")
    guarded.__qualname__ = getattr(fn, "__qualname__", guarded.__name__)
    guarded._autolog_site = site  # type: ignore[attr-defined]
    return guarded
