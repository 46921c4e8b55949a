"""The embedded SQLite store: round trips, artifacts, several processes writing one file at once."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog
from autolog.backends.sqlite import ROWS, SqliteBackend
from autolog.records import Artifact, Metric, RunRecords, RunStart


def test_round_trip_through_the_async_writer(sqlite_store: str) -> None:
    with autolog.start_run("sq", tags={"team": "core"}) as run:
        autolog.log_params({"lr": 0.01, "layers": [64, 32]})
        for step in range(100):
            autolog.log_metrics({"loss": 1.0 / (step + 1), "nan": math.nan}, step=step)
        run.log_artifact(Artifact("notes/readme.txt", lambda p: p.write_text("hello")))
    assert autolog.flush(10)
    got = autolog.get_run(run.id)
    assert (got.name, got.status, got.experiment) == ("sq", "FINISHED", "Default")
    assert got.params == {"lr": "0.01", "layers": "[64, 32]"}
    assert got.tags["team"] == "core"
    assert got.metrics["loss"] == 0.01 and math.isnan(got.metrics["nan"])
    history = autolog.get_metric_history(run.id, "loss")
    assert [s for s, _, _ in history] == list(range(100))
    assert [v for _, v, _ in history] == [1.0 / (s + 1) for s in range(100)]
    backend = autolog.session.backend()
    assert backend.list_artifacts(run.id) == ["notes/readme.txt"]
    assert backend.download_artifact(run.id, "notes/readme.txt").read_text() == "hello"
    assert got.end_time is not None and got.end_time >= got.start_time


@pytest.mark.parametrize("n", [1, 3, ROWS - 1, ROWS, ROWS + 1, 3 * ROWS + 77])
def test_metrics_of_any_count_are_stored_once_in_logged_order(tmp_path: Path, n: int) -> None:
    """Metrics go in as multi-row INSERTs of ROWS rows and then powers of two: every count lands whole."""
    store = SqliteBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    start = RunStart("r1", "Default", "chunks", 1.0)
    rows = [("a" if i % 3 else "b", i / 7, i // 2, 100.0 + i) for i in range(n)]
    rows[0] = Metric(*rows[0])  # a Metric and plain tuples alike
    store.write([RunRecords("r1", start=start, metrics=list(rows))])
    for key in ("a", "b"):
        want = [(step, value, ts) for k, value, step, ts in rows if k == key]
        assert store.get_metric_history("r1", key) == want
    store.close()


def test_child_runs_and_experiments(sqlite_store: str) -> None:
    with autolog.start_run("parent", experiment="exp-a") as parent, autolog.start_run("child") as child:
        autolog.log_metric("m", 1.0)
    runs = autolog.search_runs("exp-a")
    assert {r.name for r in runs} == {"parent", "child"}
    assert autolog.get_run(child.id).parent_id == parent.id
    assert autolog.search_runs("nope") == []


def test_two_processes_writing_one_store_at_once_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "runs.db"
    n = 20_000
    code = textwrap.dedent(
        f"""
        import sys, autolog
        autolog.enable(backend="sqlite:///{db}", batch_size=500)
        with autolog.start_run(sys.argv[1]) as run:
            for step in range({n}):
                autolog.log_metrics({{"v": step}}, step=step)
        print(run.id)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, f"writer-{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    ids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        ids.append(out.strip())
    store = SqliteBackend(f"sqlite:///{db}")
    for run_id in ids:
        history = store.get_metric_history(run_id, "v")
        assert [s for s, _, _ in history] == list(range(n))
        assert store.get_run(run_id).status == "FINISHED"
    assert len(store.search_runs()) == 2


def test_relative_and_absolute_uris(tmp_path: Path) -> None:
    assert SqliteBackend("sqlite:///rel/runs.db").path == Path("rel/runs.db")
    assert SqliteBackend(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"
