"""The JSONL backend: one file per run, one JSON object per record, loads with pandas, reads back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import autolog
from autolog.records import Artifact


def test_one_file_per_run_one_object_per_record(tmp_path: Path) -> None:
    autolog.enable(backend=f"jsonl:{tmp_path / 'runs'}", flush_interval=0.05)
    with autolog.start_run("j", tags={"team": "core"}) as run:
        autolog.log_params({"lr": 0.5})
        for step in range(30):
            autolog.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        autolog.log_metric("odd", math.nan, step=0)
        autolog.log_metric("odd", math.inf, step=1)
        run.log_artifact(Artifact("notes.txt", lambda p: p.write_text("hi")))
    with autolog.start_run("other"):
        autolog.log_metric("x", 1.0)
    assert autolog.flush(10)
    files = sorted((tmp_path / "runs").glob("*.jsonl"))
    assert len(files) == 2
    lines = (tmp_path / "runs" / f"{run.id}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["type"] for r in records][:2] == ["start", "param"] and records[-1]["type"] == "end"
    assert all(r["run_id"] == run.id for r in records)
    assert records[0]["tags"]["team"] == "core" and records[-1]["status"] == "FINISHED"
    assert sum(r["type"] == "metric" for r in records) == 32

    pd = pytest.importorskip("pandas")
    df = pd.read_json(tmp_path / "runs" / f"{run.id}.jsonl", lines=True, precise_float=True)
    loss = df[(df["type"] == "metric") & (df["key"] == "loss")]
    assert list(loss["step"]) == list(range(30))
    assert list(loss["value"]) == [1.0 / (s + 1) for s in range(30)]
    odd = list(df[df["key"] == "odd"]["value"])
    assert math.isnan(odd[0]) and odd[1] == math.inf

    got = autolog.get_run(run.id)
    assert (got.name, got.status, got.params) == ("j", "FINISHED", {"lr": "0.5"})
    assert [s for s, _, _ in autolog.get_metric_history(run.id, "loss")] == list(range(30))
    backend = autolog.session.backend()
    assert backend.list_artifacts(run.id) == ["notes.txt"]
    assert backend.download_artifact(run.id, "notes.txt").read_text() == "hi"
    assert {r.name for r in autolog.search_runs()} == {"j", "other"}
