"""Test set-up: test mode on (our swallowed errors raise), the repo on the path for subprocesses too."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["AUTOLOG_TESTING"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
for name in list(os.environ):  # AUTOLOG_PURE_PYTHON=1 is kept: it runs the suite without the C extension
    if name.startswith("AUTOLOG_") and name not in ("AUTOLOG_TESTING", "AUTOLOG_PURE_PYTHON"):
        del os.environ[name]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests._mlflow_server import mlflow_server, mlflow_uri  # noqa: E402, F401 - the shared real MLflow server


def _reset() -> None:
    from autolog import _errors, integrations, runs, session
    from autolog.backends import memory

    session.set_enabled(False)
    integrations.uninstall()
    session.reset_for_tests()
    runs.after_fork_in_child()  # forget open and ambient runs
    memory.reset()
    _errors.reset_for_tests()
    _errors.inject_faults.clear()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own working directory (the default store lands there) with a fresh session."""
    monkeypatch.chdir(tmp_path)
    _reset()
    yield
    _reset()


@pytest.fixture
def memory_store():  # type: ignore[no-untyped-def]
    """autolog enabled into an in-memory backend with the synchronous writer: deterministic, no thread."""
    import autolog
    from autolog.backends.memory import MemoryBackend

    backend = MemoryBackend("memory:test")
    autolog.enable(backend=backend, sync=True)
    return backend


@pytest.fixture
def sqlite_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """autolog enabled into a real SQLite store through the real asynchronous writer."""
    import autolog

    uri = f"sqlite:///{tmp_path / 'store' / 'runs.db'}"
    autolog.enable(backend=uri, flush_interval=0.05)
    return uri
