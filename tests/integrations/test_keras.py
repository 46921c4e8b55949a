"""Keras 3 on the TensorFlow and torch backends, and tf.keras.

Keras picks its backend at import, so each backend gets one subprocess that runs every check in ``_keras_checks.py``
(tiny real models) and reports per check; the two processes run side by side. Each test asserts one check's result.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("keras")

CHECKS = Path(__file__).with_name("_keras_checks.py")
BACKENDS = ("tensorflow", "torch")
_procs: dict[str, subprocess.Popen[str]] = {}
_results: dict[str, dict[str, str]] = {}
_dirs: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    for proc in _procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for path in _dirs:
        shutil.rmtree(path, ignore_errors=True)


def _names() -> list[str]:
    tree = ast.parse(CHECKS.read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(getattr(d, "id", None) == "check" for d in node.decorator_list)
    ]


def _start_all() -> None:
    for backend in BACKENDS:
        if backend in _procs or importlib.util.find_spec(backend) is None:
            continue
        _dirs.append(tempfile.mkdtemp(prefix=f"autolog-keras-{backend}-"))
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        _procs[backend] = subprocess.Popen(
            [sys.executable, str(CHECKS)],
            cwd=_dirs[-1],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def _results_for(backend: str) -> dict[str, str]:
    if backend not in _results:
        _start_all()
        if backend not in _procs:
            pytest.skip(f"{backend} is not installed")
        proc = _procs[backend]
        out, err = proc.communicate(timeout=600)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert proc.returncode == 0 and lines, f"{backend} checks failed ({proc.returncode}):\n{err[-4000:]}"
        _results[backend] = json.loads(lines[-1])
    return _results[backend]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", _names())
def test_keras(backend: str, name: str) -> None:
    result = _results_for(backend)[name]
    if result.startswith("skip: "):
        pytest.skip(result)
    assert result == "ok", result
