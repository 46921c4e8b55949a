"""Keras model artifacts: the summary, the final model as ``.keras`` (snapshot in memory on the training thread,
written by the writer thread), checkpoint files, and the loader ``autolog.load_model`` uses.

Imports ``keras``, never ``tensorflow``: Keras's own serialiser would import TensorFlow on every backend (see
``without_importing_tensorflow``).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import keras

from autolog import _errors, models, runs, session
from autolog.records import Artifact

FLAVOR = "keras"
MODEL_FILE = "model.keras"
SUMMARY_FILE = "model_summary.txt"


def log_model_and_summary(run: runs.ActiveRun, model: Any, log_models: bool | None) -> None:
    summary = summary_text(model)
    if summary is not None:
        run.log_artifact(Artifact(SUMMARY_FILE, partial(_write_bytes, summary.encode("utf-8"))))
    if log_models if log_models is not None else session.options().log_models:
        artifact = model_artifact(model)
        if artifact is not None:
            run.log_model(artifact)


def summary_text(model: Any) -> str | None:
    if not getattr(model, "built", False):
        return None
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=120)
    return "\n".join(lines) + "\n"


def model_artifact(model: Any) -> Any:
    """Snapshot the model now as ``.keras`` bytes (in memory); the writer thread writes the file."""
    from keras.src.saving import saving_lib  # the public save_model wants a path; this one takes a file object

    buffer = io.BytesIO()
    try:
        with without_importing_tensorflow():
            saving_lib.save_model(model, buffer)
    except Exception as exc:  # noqa: BLE001 - a model Keras cannot serialise is the user's, not our bug
        _errors.warn(
            f"autolog: the Keras model was not logged: Keras could not save it ({exc!r})", once_key="keras-save"
        )
        return None
    data = buffer.getvalue()
    return models.model_artifact(
        FLAVOR,
        data,
        _write_model_file,
        "autolog.integrations._keras_model:load_model_dir",
        {"keras_version": keras.__version__, "backend": keras.backend.backend(), "file": MODEL_FILE},
    )


def _write_bytes(data: bytes, target: Path) -> None:
    target.write_bytes(data)


def _write_model_file(data: bytes, directory: Path) -> None:
    (directory / MODEL_FILE).write_bytes(data)


def log_checkpoint_files(run: runs.ActiveRun, paths: list[str]) -> None:
    """Checkpoint files as ``checkpoints/<name>``, copied by the writer thread. A path with ``{epoch}`` in it is
    one file per epoch; a fixed path holds what the checkpoint callback kept last (its best, with
    ``save_best_only``)."""
    for path in paths:
        source = Path(path)
        if source.exists():
            run.log_artifact(Artifact(f"checkpoints/{source.name}", partial(_copy, source)))


def _copy(source: Path, target: Path) -> None:
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, target)


@contextmanager
def without_importing_tensorflow() -> Iterator[None]:
    """Keras's serialiser asks ``tf.available`` (which imports TensorFlow, seconds, on every backend) only to test
    whether an object is a ``tf.TensorShape``. With TensorFlow not imported no object can be one: answer
    "unavailable" while we serialise."""
    from keras.src.saving import serialization_lib

    lazy = getattr(serialization_lib, "tf", None)
    if "tensorflow" in sys.modules or lazy is None or not hasattr(lazy, "_available") or lazy.module is not None:
        yield
        return
    previous = lazy._available
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = previous


def load_model_dir(directory: Path) -> Any:
    return keras.saving.load_model(Path(directory) / MODEL_FILE)
