"""``autolog export --from URI --to URI [RUN...]``: copy runs, metrics and artifacts from one store into another.

The usual trip is from the embedded store into MLflow::

    autolog export --from sqlite:///autolog-runs/runs.db --to mlflow+http://127.0.0.1:5000

Safe to re-run: a run already complete in the destination (same status, ended) is skipped; a run partly there
(an interrupted export, a run still going) gets only what is missing — for each metric, the values after those the
destination already holds (under the names the destination gave the keys); params and artifacts not yet there,
tags not yet there or changed since. Runs keep their ids (MLflow: the ``autolog.run_id`` tag), times, parents, and
every metric's step and timestamp. A model saved by autolog becomes an MLflow model on the way when its framework is
installed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autolog.backends import open_backend
from autolog.backends.base import Backend, RunNotFound
from autolog.backends.mlflow import JOIN_TAG
from autolog.models import META_FILE, load_from_dir
from autolog.records import RUNNING, Artifact, ModelArtifact, Run, RunEnd, RunStart
from autolog.writer import ARTIFACT, END, METRICS, PARAMS, START, TAGS, Record, Writer

CHUNK = 2000  # records per write, before the destination's own limits split further


@dataclass
class ExportSummary:
    source: str
    dest: str
    runs_copied: int = 0
    runs_skipped: int = 0  # already complete in the destination
    metrics: int = 0
    params: int = 0
    artifacts: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        line = (
            f"exported {self.runs_copied} run(s) from {self.source} to {self.dest} "
            f"({self.metrics} metric values, {self.params} params, {self.artifacts} artifacts); "
            f"{self.runs_skipped} already there"
        )
        if self.failed:
            line += f"; {len(self.failed)} FAILED:"
            line += "".join(f"\n  {run_id}: {error}" for run_id, error in self.failed.items())
        return line


class NoStore(FileNotFoundError):
    """The source is a file store that does not exist: a mistyped path, not an empty store with 0 runs to export."""


def export(src_uri: str, dst_uri: str, run_ids: Sequence[str] | None = None, progress: bool = True) -> ExportSummary:
    """Copy runs (all, or those named by id or unique id prefix) from ``src_uri`` into ``dst_uri``."""
    src = open_backend(src_uri)
    path = getattr(src, "path", None)  # checked before anything reads it: a read could create an empty store there
    if isinstance(path, Path) and not path.exists():
        raise NoStore(f"no autolog store at {path}")
    dst = open_backend(dst_uri)
    summary = ExportSummary(src.uri, dst.uri)
    runs = _select(src, run_ids)
    runs.sort(key=lambda r: (r.start_time, r.parent_id is not None))  # parents first: children can point at them
    errors: list[Exception] = []
    for run in _progress(runs, progress, f"export to {dst.uri}"):
        try:
            _export_run(src, dst, run, summary)
        except Exception as exc:  # noqa: BLE001 - one bad run must not stop the others; reported in the summary
            summary.failed[run.id] = repr(exc)
            errors.append(exc)
    dst.close()
    if errors and len(errors) == len(runs):
        raise errors[0]  # not one run went (a server down, a store refused): the error, not a summary of failures
    return summary


def _select(src: Backend, run_ids: Sequence[str] | None) -> list[Run]:
    if not run_ids:
        return src.search_runs()
    out = []
    everything: list[Run] | None = None
    for ref in run_ids:
        try:
            out.append(src.get_run(ref))
            continue
        except RunNotFound:
            pass
        everything = src.search_runs() if everything is None else everything
        matches = [r for r in everything if r.id.startswith(ref)]
        if len(matches) != 1:
            raise RunNotFound(ref, src.uri)
        out.append(matches[0])
    return out


def _progress(items: list[Run], on: bool, desc: str) -> Any:
    if not on:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="run")


def _existing(dst: Backend, run_id: str) -> Run | None:
    try:
        return dst.get_run(run_id)
    except (RunNotFound, NotImplementedError, FileNotFoundError):
        return None


def _export_run(src: Backend, dst: Backend, run: Run, summary: ExportSummary) -> None:
    there = _existing(dst, run.id)
    if there is not None and run.status != RUNNING and there.status == run.status and there.end_time is not None:
        summary.runs_skipped += 1
        return
    writer = _writer(dst)
    # The destination holds keys as the writer rewrote them ('val loss?' -> 'val loss_' in MLflow): what is already
    # there is looked up under those names, or a re-export would ask for keys the store refuses and re-send the rest.
    names = _Names(writer, run)
    start = RunStart(run.id, run.experiment, run.name, run.start_time, run.parent_id, dict(run.tags))
    records: list[Record] = [(START, start)]
    params = {k: v for k, v in run.params.items() if there is None or names.param(k) not in there.params}
    if params:
        records.append((PARAMS, run.id, params))
    if there is not None:  # a run found again takes no tags from its start record: send those new or changed
        # (JOIN_TAG names a user's MLflow run to join, never a tag the destination keeps)
        tags = {k: v for k, v in run.tags.items() if k != JOIN_TAG and there.tags.get(names.tag(k)) != names.text(v)}
        if tags:
            records.append((TAGS, run.id, tags))
    n_metrics = 0
    for key in run.metrics:
        history = src.get_metric_history(run.id, key)
        have = len(_history(dst, run.id, names.metric(key))) if there is not None else 0
        records.extend((METRICS, run.id, step, ts, {key: value}) for step, value, ts in history[have:])
        n_metrics += max(0, len(history) - have)
    n_artifacts = 0
    present = _artifacts(dst, run.id) if there is not None else []
    for path in _artifacts(src, run.id):
        if not any(p == path or p.startswith(path + "/") for p in present):
            records.append((ARTIFACT, run.id, _copy(path, src.download_artifact(run.id, path))))
            n_artifacts += 1
    if run.end_time is not None and run.status != RUNNING:
        records.append((END, RunEnd(run.id, run.status, run.end_time)))
    if there is not None and len(records) == 1:  # a run in progress with nothing new since the last export
        summary.runs_skipped += 1
        return
    _write(writer, records)
    summary.metrics += n_metrics
    summary.params += len(params)
    summary.artifacts += n_artifacts
    summary.runs_copied += 1


class _Names:
    """A run's keys as the destination holds them: the names the export's own writer gives them (the same
    ``KeySanitizer`` the store's writer used, fed the run's keys in the same order, so a collision suffix lands on the
    same key) and tag values as the writer cuts them."""

    def __init__(self, writer: Writer, run: Run) -> None:
        self._clean = writer._keys()
        self._max_tag = writer.backend.limits.max_tag_value_length
        for key in run.tags:  # the start record's order: the writer names them first
            self.tag(key)
        for key in run.params:
            self.param(key)
        for key in run.metrics:
            self.metric(key)

    def metric(self, key: str) -> str:
        return key if self._clean is None else self._clean(key)

    def param(self, key: str) -> str:
        return key if self._clean is None else self._clean.params(key)

    def tag(self, key: str) -> str:
        return key if self._clean is None else self._clean.tags(key)

    def text(self, value: str) -> str:
        return value if self._max_tag is None else value[: self._max_tag]


def _history(dst: Backend, run_id: str, key: str) -> list[tuple[int, float, float]]:
    try:
        return dst.get_metric_history(run_id, key)
    except (RunNotFound, NotImplementedError):
        return []


def _artifacts(backend: Backend, run_id: str) -> list[str]:
    try:
        return backend.list_artifacts(run_id)
    except NotImplementedError:
        return []


def _copy(path: str, local: Path) -> Artifact:
    def write(target: Path) -> None:
        if local.is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(local, target)

    meta_file = local / META_FILE
    if local.is_dir() and meta_file.exists():  # an autolog model: let the destination save it its own way
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            obj = load_from_dir(local)
        except Exception:  # noqa: BLE001 - the framework is not installed here: copy the files as they are
            return Artifact(path, write)
        return ModelArtifact(
            path, write, flavor=meta.get("flavor", ""), obj=obj, loader=meta.get("loader", ""), metadata=meta
        )
    return Artifact(path, write)


def _writer(dst: Backend) -> Writer:
    """The writer's own conversion, sanitising and splitting, on this thread; a failure raises instead of dropping."""
    writer = Writer(lambda: dst, sync=True, max_retries=3)
    writer.on_failure = _raise
    return writer


def _write(writer: Writer, records: list[Record]) -> None:
    for i in range(0, len(records), CHUNK):
        writer._write(writer._build(records[i : i + CHUNK]))


def _raise(batch: Any, exc: BaseException) -> None:
    raise exc
