"""Model artifacts: a snapshot taken on the training thread, saved in the framework's format on the writer thread.

A logged model is a directory ``model/`` in the run's artifacts holding the framework's own files plus
``autolog-model.json`` (flavor, loader, metadata). ``load_model(run_id)`` reads that file and calls the loader.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autolog.records import ModelArtifact

META_FILE = "autolog-model.json"
MODEL_PATH = "model"


def model_artifact(
    flavor: str,
    obj: Any,
    save: Callable[[Any, Path], None],
    loader: str,
    metadata: dict[str, Any] | None = None,
    *,
    path: str = MODEL_PATH,
) -> ModelArtifact:
    """A ModelArtifact whose ``write`` calls ``save(obj, directory)`` and adds the metadata file.

    ``obj`` must already be a snapshot (a copy, a state dict, serialised bytes): the user may change the live
    model before the writer gets to it.
    """
    meta = {"flavor": flavor, "loader": loader, **(metadata or {})}

    def write(target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        save(obj, target)
        write_file(target / META_FILE, meta_json(meta))

    return ModelArtifact(path=path, write=write, flavor=flavor, obj=obj, loader=loader, metadata=meta)


def bytes_model_artifact(
    flavor: str,
    files: dict[str, bytes],
    obj: Any,
    loader: str,
    metadata: dict[str, Any] | None = None,
    *,
    path: str = MODEL_PATH,
) -> ModelArtifact:
    """A ``model_artifact`` whose files are already bytes (``{file name: bytes}``, e.g. a pickle taken at the end of
    training): written as they are, or kept by a store without touching the file system (``Artifact.files``)."""

    def save(_: Any, target: Path) -> None:
        for name, data in files.items():
            write_file(target / name, data)

    artifact = model_artifact(flavor, obj, save, loader, metadata, path=path)
    artifact.files = {**files, META_FILE: meta_json(artifact.metadata)}
    return artifact


def meta_json(meta: dict[str, Any]) -> bytes:
    """``meta`` as the metadata file's bytes (indented JSON). A model per scikit-learn fit logs the same metadata
    again and again, and ``json.dumps`` with ``indent`` runs json's pure-Python encoder (a third of the writer's
    time per run in a profile, holding the GIL): metadata of text, ints, bools and None is encoded once per
    distinct content. Types are part of the key (``True == 1`` but they encode differently); floats are left out
    (``0.0 == -0.0``, ``nan != nan``)."""
    if all(type(v) in _PLAIN_META for v in meta.values()) and all(type(k) is str for k in meta):
        return _meta_json_cached(tuple((k, type(v), v) for k, v in meta.items()))
    return _encode(meta)


_PLAIN_META = (str, int, bool, type(None))  # a tuple: a set would hash the type, and a class may be unhashable


def _encode(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, indent=2, default=str).encode("utf-8")


@functools.lru_cache(maxsize=64)
def _meta_json_cached(items: tuple[tuple[str, type, Any], ...]) -> bytes:
    return _encode({k: v for k, _, v in items})


def write_file(path: Path, data: bytes) -> None:
    """Create (or truncate) ``path`` holding ``data``: plain ``os`` calls, about half the time of
    ``Path.write_bytes`` (a model per scikit-learn fit makes this the writer's most frequent file operation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def load_from_dir(directory: Path) -> Any:
    meta_path = directory / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{directory} holds no autolog model ({META_FILE} is missing)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    module, _, fn = meta["loader"].partition(":")
    return getattr(importlib.import_module(module), fn)(directory)


def load_model(run_id: str, path: str = MODEL_PATH) -> Any:
    """The model logged in run ``run_id``, loaded with its framework (after a flush of what this process logged)."""
    from autolog import session

    session.flush(session.options().shutdown_timeout)
    local = session.backend().download_artifact(run_id, path)
    return load_from_dir(Path(local))
