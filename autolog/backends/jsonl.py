"""``jsonl:<dir>`` — one file per run, ``<dir>/<run id>.jsonl``, one JSON object per record, in logged order.

Every line has ``run_id`` and ``type`` (``start``, ``param``, ``tag``, ``metric``, ``artifact``, ``end``), so files
can be concatenated, grepped, and loaded with ``pandas.read_json(path, lines=True)``. Metric lines carry ``key``,
``value``, ``step``, ``timestamp`` (seconds); NaN and infinities are written as ``NaN`` / ``Infinity`` (what
``json`` and pandas read back). Artifacts are files under ``<dir>/<run id>/artifacts/``. The read side (runs,
metric histories, artifacts) makes a JSONL directory a source for ``autolog export``.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

from autolog.backends.base import Backend, Limits, RunNotFound
from autolog.records import RUNNING, Batch, Run, RunRecords

_dumps = json.dumps


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


class JsonlBackend(Backend):
    limits = Limits()

    def __init__(self, uri: str) -> None:
        head, _, rest = uri.partition(":")
        if head != "jsonl" or not rest:
            raise ValueError(f"autolog: a JSONL backend URI looks like jsonl:./runs-jsonl, got {uri!r}")
        self.uri = uri
        self.root = Path(rest[2:] if rest.startswith("//") else rest)
        self._lock = threading.Lock()

    # -- write ----------------------------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            for rec in batch:
                self._write_run(rec)

    def _write_run(self, rec: RunRecords) -> None:
        rid = _dumps(rec.run_id)
        head = f'{{"run_id": {rid}, "type": '
        lines: list[str] = []
        if rec.start is not None:
            s = rec.start
            fields = {"experiment": s.experiment, "name": s.name, "start_time": s.start_time}
            fields.update({"parent_id": s.parent_id, "tags": s.tags})
            lines.append(head + '"start", ' + _dumps(fields)[1:])
        lines.extend(f'{head}"param", "key": {_dumps(k)}, "value": {_dumps(v)}}}' for k, v in rec.params.items())
        lines.extend(f'{head}"tag", "key": {_dumps(k)}, "value": {_dumps(v)}}}' for k, v in rec.tags.items())
        lines.extend(
            f'{head}"metric", "key": {_dumps(key)}, "value": {_num(value)}, "step": {step:d}, "timestamp": {ts!r}}}'
            for key, value, step, ts in rec.metrics
        )
        for art in rec.artifacts:
            target = self.root / rec.run_id / "artifacts" / art.path
            target.parent.mkdir(parents=True, exist_ok=True)
            art.write(target)
            lines.append(f'{head}"artifact", "path": {_dumps(art.path)}}}')
        if rec.end is not None:
            e = rec.end
            lines.append(f'{head}"end", "status": {_dumps(e.status)}, "end_time": {e.end_time!r}}}')
        if lines:
            with (self.root / f"{rec.run_id}.jsonl").open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")

    # -- read -----------------------------------------------------------------------------------------------
    def _records(self, run_id: str) -> list[dict]:  # type: ignore[type-arg]
        path = self.root / f"{run_id}.jsonl"
        if not path.exists():
            raise RunNotFound(run_id, self.uri)
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def get_run(self, run_id: str) -> Run:
        run = Run(run_id, "Default", run_id[:8], RUNNING, None, 0.0, None)
        for r in self._records(run_id):
            kind = r["type"]
            if kind == "start":
                run.experiment, run.name, run.start_time = r["experiment"], r["name"], r["start_time"]
                run.parent_id = r.get("parent_id")
                run.tags.update(r.get("tags") or {})
            elif kind == "param":
                run.params[r["key"]] = r["value"]
            elif kind == "tag":
                run.tags[r["key"]] = r["value"]
            elif kind == "metric":
                run.metrics[r["key"]] = float(r["value"])
            elif kind == "end":
                run.status, run.end_time = r["status"], r["end_time"]
        return run

    def search_runs(self, experiment: str | None = None) -> list[Run]:
        if not self.root.exists():
            return []
        runs = [self.get_run(p.stem) for p in self.root.glob("*.jsonl")]
        runs = [r for r in runs if experiment in (None, r.experiment)]
        return sorted(runs, key=lambda r: r.start_time, reverse=True)

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        return [
            (r["step"], float(r["value"]), r["timestamp"])
            for r in self._records(run_id)
            if r["type"] == "metric" and r["key"] == key
        ]

    def list_artifacts(self, run_id: str) -> list[str]:
        return sorted({r["path"] for r in self._records(run_id) if r["type"] == "artifact"})

    def download_artifact(self, run_id: str, path: str) -> Path:
        self._records(run_id)
        target = self.root / run_id / "artifacts" / path
        if not target.exists():
            raise FileNotFoundError(f"run {run_id} has no artifact {path!r} (looked in {target})")
        return target
