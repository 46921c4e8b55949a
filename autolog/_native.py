"""The optional C extension ``autolog._speedups`` (the training thread's hot path), or None.

None when it was not built (no C compiler at install time) or when ``AUTOLOG_PURE_PYTHON=1`` is set: autolog then
runs its pure-Python code, which behaves the same (tests/core/test_speedups.py checks both give the same journal
and queue). Read once, at import.
"""

from __future__ import annotations

import os
from types import ModuleType

from autolog import _env


def load() -> ModuleType | None:
    if os.environ.get(_env.PURE_PYTHON, "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    try:
        from autolog import _speedups
    except ImportError:
        return None
    return _speedups


speedups = load()
