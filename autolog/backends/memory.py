"""``memory:`` — runs kept in this process (tests, notebooks). ``memory:NAME`` shares one store per name."""

from __future__ import annotations

import copy
import tempfile
import threading
from pathlib import Path

from autolog.backends.base import Backend, RunNotFound
from autolog.records import RUNNING, Batch, Run

_stores: dict[str, MemoryBackend] = {}
_stores_lock = threading.Lock()


class MemoryBackend(Backend):
    def __init__(self, uri: str = "memory:") -> None:
        self.uri = uri
        self.runs: dict[str, Run] = {}
        self.history: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
        self.artifacts: dict[str, dict[str, Path]] = {}
        self.writes = 0  # number of write() calls: tests check batching with it
        self._lock = threading.Lock()
        self._dir: Path | None = None

    def write(self, batch: Batch) -> None:
        with self._lock:
            self.writes += 1
            for rec in batch:
                run = self.runs.get(rec.run_id)
                if rec.start is not None and run is None:
                    s = rec.start
                    run = Run(s.run_id, s.experiment, s.name, RUNNING, s.parent_id, s.start_time, None)
                    self.runs[s.run_id] = run
                if run is None:
                    run = Run(rec.run_id, "Default", rec.run_id[:8], RUNNING, None, 0.0, None)
                    self.runs[rec.run_id] = run
                if rec.start is not None:
                    run.tags.update(rec.start.tags)
                run.params.update(rec.params)
                run.tags.update(rec.tags)
                for key, value, step, ts in rec.metrics:
                    self.history.setdefault((rec.run_id, key), []).append((step, value, ts))
                    run.metrics[key] = value
                for art in rec.artifacts:
                    target = self._artifact_root(rec.run_id) / art.path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    art.write(target)
                    self.artifacts.setdefault(rec.run_id, {})[art.path] = target
                if rec.end is not None:
                    run.status, run.end_time = rec.end.status, rec.end.end_time

    def _artifact_root(self, run_id: str) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="autolog-memory-"))
        return self._dir / run_id

    def search_runs(self, experiment: str | None = None) -> list[Run]:
        with self._lock:
            runs = [copy.deepcopy(r) for r in self.runs.values() if experiment in (None, r.experiment)]
        return sorted(runs, key=lambda r: r.start_time, reverse=True)

    def get_run(self, run_id: str) -> Run:
        with self._lock:
            if run_id not in self.runs:
                raise RunNotFound(run_id, self.uri)
            return copy.deepcopy(self.runs[run_id])

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        self.get_run(run_id)
        with self._lock:
            return list(self.history.get((run_id, key), []))

    def list_artifacts(self, run_id: str) -> list[str]:
        self.get_run(run_id)
        return sorted(self.artifacts.get(run_id, {}))

    def download_artifact(self, run_id: str, path: str) -> Path:
        self.get_run(run_id)
        target = self._artifact_root(run_id) / path
        if not target.exists():
            raise FileNotFoundError(f"run {run_id} has no artifact {path!r}")
        return target


def open_memory(uri: str) -> MemoryBackend:
    """``memory:`` is one store per process; ``memory:NAME`` one per name."""
    with _stores_lock:
        if uri not in _stores:
            _stores[uri] = MemoryBackend(uri)
        return _stores[uri]


def reset() -> None:
    with _stores_lock:
        _stores.clear()
