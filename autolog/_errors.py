"""The exception firewall and autolog's own warnings.

Our bugs must never break training: an exception raised by autolog's bookkeeping is caught here, counted per site,
and warned once per site. With ``AUTOLOG_TESTING=1`` it is re-raised instead, so the test suite sees every one.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from autolog import _env

T = TypeVar("T")


class AutologWarning(UserWarning):
    """Every warning autolog emits is of this class (filter it with ``warnings.filterwarnings``)."""


class AutologInternalError(RuntimeError):
    """Raised in test mode for an error autolog would otherwise swallow."""


_lock = threading.Lock()
errors: Counter[str] = Counter()  # site -> count of internal errors swallowed
_warned: set[str] = set()
_silent = False
# Fault injection for the reliability tests: sites listed here raise inside the firewall, as a bug of ours would.
inject_faults: set[str] = set()
# Every firewall site seen so far (training wrappers and callback hooks): the fault-injection test enumerates them.
sites: set[str] = set()


def set_silent(value: bool) -> None:
    global _silent
    _silent = value


def testing() -> bool:
    return os.environ.get(_env.TESTING, "").strip().lower() in ("1", "true", "yes")


def warn(message: str, once_key: str | None = None, stacklevel: int = 3) -> None:
    """Warn (unless silent); with ``once_key`` at most once per key per process."""
    if once_key is not None:
        with _lock:
            if once_key in _warned:
                return
            _warned.add(once_key)
    if not _silent:
        warnings.warn(message, AutologWarning, stacklevel=stacklevel)


def internal_error(site: str, exc: BaseException) -> None:
    """Record an error in autolog's own code at ``site``: counted, warned once, raised in test mode."""
    with _lock:
        errors[site] += 1
    if testing():
        raise AutologInternalError(f"autolog internal error at {site}: {exc!r}") from exc
    warn(f"autolog: internal error at {site} (training continues; logging may be incomplete): {exc!r}", once_key=site)


def firewall(site: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``fn``; an Exception from it is an autolog internal error (returns None). BaseException passes."""
    try:
        if inject_faults and site in inject_faults:
            raise RuntimeError(f"fault injected at {site}")
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - this is the firewall
        internal_error(site, exc)
        return None


def register_site(site: str) -> str:
    sites.add(site)
    return site


def reset_for_tests() -> None:
    with _lock:
        errors.clear()
        _warned.clear()
