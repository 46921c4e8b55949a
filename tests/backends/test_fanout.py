"""Fan-out: every backend gets every record; one failing does not stop the others and is counted and reported."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import autolog
from autolog.backends import open_backend
from autolog.backends.fanout import FanoutBackend


def test_every_backend_gets_everything(tmp_path: Path) -> None:
    db = tmp_path / "s" / "runs.db"
    autolog.enable(backend=[f"sqlite:///{db}", f"jsonl:{tmp_path / 'j'}"], flush_interval=0.05)
    with autolog.start_run("both") as run:
        for step in range(100):
            autolog.log_metrics({"loss": float(step)}, step=step)
    assert autolog.flush(10)
    assert isinstance(autolog.session.backend(), FanoutBackend)
    sqlite = open_backend(f"sqlite:///{db}")
    assert [v for _, v, _ in sqlite.get_metric_history(run.id, "loss")] == [float(s) for s in range(100)]
    lines = (tmp_path / "j" / f"{run.id}.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["type"] == "metric" for line in lines) == 100
    assert [s for s, _, _ in autolog.get_metric_history(run.id, "loss")] == list(range(100))  # read: the first


def test_one_failing_backend_does_not_stop_the_others(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the JSONL directory should be")  # a real failure: mkdir raises
    db = tmp_path / "s" / "runs.db"
    autolog.enable(backend=[f"jsonl:{blocker}", f"sqlite:///{db}"], flush_interval=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run("half") as run:
            for step in range(40):
                autolog.log_metrics({"loss": float(step)}, step=step)
        assert autolog.flush(10)
    sqlite = open_backend(f"sqlite:///{db}")
    assert len(sqlite.get_metric_history(run.id, "loss")) == 40
    assert sqlite.get_run(run.id).status == "FINISHED"
    dropped = autolog.session.writer().dropped()
    assert dropped == {f"backend_error in jsonl:{blocker}": 42}  # start + 40 metrics + end
    messages = [str(w.message) for w in caught]
    assert any(f"jsonl:{blocker} failed" in m for m in messages), messages
    assert any("42 records were not stored" in m for m in messages), messages


def test_limits_are_the_strictest_of_all(tmp_path: Path) -> None:
    fan = open_backend([f"sqlite:///{tmp_path / 'a.db'}", "mlflow+http://127.0.0.1:9"])
    assert fan.limits.max_records_per_write == 1000 and fan.limits.max_key_length == 250
    assert fan.limits.path_keys  # MLflow's "/" path keys: "a//b" is "a/b" in the SQLite store beside it too
