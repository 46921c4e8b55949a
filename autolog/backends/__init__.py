"""Backends, chosen by URI. Built-in schemes plus the entry-point group ``autolog.backends``.

An entry point named after a URI scheme points at a callable taking the URI and returning a ``Backend``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from autolog.backends.base import Backend, Limits, RunNotFound

__all__ = ["Backend", "Limits", "RunNotFound", "known_schemes", "open_backend", "preload"]

# scheme -> "module:callable(uri) -> Backend"; imported only when used.
BUILTIN: dict[str, str] = {
    "sqlite": "autolog.backends.sqlite:SqliteBackend",
    "memory": "autolog.backends.memory:open_memory",
    "mlflow": "autolog.backends.mlflow:MlflowBackend",
    "tensorboard": "autolog.backends.tensorboard:TensorBoardBackend",
    "jsonl": "autolog.backends.jsonl:JsonlBackend",
}


# Built-in local stores whose modules import in a few milliseconds (``sqlite3`` and the store's own): ``preload``
# imports them when a framework is patched. Imported at the first write instead, they ran on the writer thread,
# holding the GIL, in the first second of training. MLflow and TensorBoard stay lazy (seconds of imports).
_PRELOADED = ("sqlite", "jsonl", "memory")


def preload(spec: Any) -> None:
    """Import the module of each built-in local store ``spec`` names. Nothing is opened or created (the store is
    opened at the first write, as before), and a module that cannot be imported is left to that first write to
    report."""
    for uri in spec if isinstance(spec, (list, tuple)) else [spec]:
        scheme = scheme_of(uri) if isinstance(uri, str) else None
        if scheme in _PRELOADED:
            with contextlib.suppress(ImportError):
                _load(BUILTIN[scheme])


def scheme_of(uri: str) -> str:
    head = uri.split(":", 1)[0]
    return head.split("+", 1)[0].lower()


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="autolog.backends")}


def known_schemes() -> list[str]:
    return sorted(set(BUILTIN) | set(_plugins()))


def _load(target: str) -> Callable[[str], Backend]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def open_backend(spec: Any) -> Backend:
    """A Backend from a URI, a list of URIs (fan-out), or a Backend instance (returned as is)."""
    if isinstance(spec, Backend):
        return spec
    if isinstance(spec, (list, tuple)):
        if len(spec) == 1:
            return open_backend(spec[0])
        from autolog.backends.fanout import FanoutBackend

        return FanoutBackend([open_backend(s) for s in spec])
    if not isinstance(spec, str) or (":" not in spec and spec != "mlflow"):
        raise ValueError(
            f"autolog: backend {spec!r} is not a URI; known schemes: {', '.join(known_schemes())} "
            "(e.g. sqlite:///autolog-runs/runs.db, memory:, mlflow+http://127.0.0.1:5000)"
        )
    scheme = scheme_of(spec)
    if scheme in BUILTIN:  # built-in schemes come first: no entry-point scan (10-20 ms, in the first training step)
        try:
            factory = _load(BUILTIN[scheme])
        except ImportError as exc:
            raise ValueError(f"autolog: backend {spec!r} needs a package that is not installed: {exc}") from exc
    elif (plugin := _plugins().get(scheme)) is not None:
        factory = plugin.load()
    else:
        raise ValueError(f"autolog: unknown backend scheme {scheme!r} in {spec!r}; known: {', '.join(known_schemes())}")
    return factory(spec)
