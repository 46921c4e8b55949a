"""``autolog export`` from the embedded SQLite store into a real MLflow server: everything arrives, once."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import autolog
from autolog import cli
from autolog.backends.sqlite import SqliteBackend
from autolog.integrations.sklearn import _log as sklearn_log
from autolog.records import Artifact, Metric, RunEnd, RunRecords

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _populate(db: Path) -> tuple[str, str, str]:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(50, 3))
    model = LogisticRegression().fit(x, x[:, 0] > 0)
    autolog.enable(backend=f"sqlite:///{db}", flush_interval=0.05)
    with autolog.start_run("parent", experiment="exp-export") as parent:
        autolog.log_params({"C": 1.0, "solver": "lbfgs"})
        for step in range(300):
            autolog.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 300}, step=step)
        parent.log_artifact(Artifact("notes/readme.txt", lambda p: p.write_text("hello")))
        # the scikit-learn integration's own model: bytes kept in the store's database (``Artifact.files``), written
        # out when export reads it; the notes above are a file beside the store
        sklearn_log.log_model(parent, model)
        with autolog.start_run("child") as child:
            autolog.log_metric("fold", 0.5, step=0)
    assert autolog.flush(30)
    autolog.session.reset_for_tests()
    # a third run still going: no end yet
    backend = SqliteBackend(f"sqlite:///{db}")
    from autolog.records import RunStart

    t0 = time.time()
    backend.write(
        [
            RunRecords(
                "c" * 32,
                start=RunStart("c" * 32, "exp-export", "running", t0),
                metrics=[Metric("v", float(i), i, t0 + i) for i in range(10)],
            )
        ]
    )
    return parent.id, child.id, "c" * 32


def _mid(autolog_id: str) -> str:
    df = mlflow.search_runs(experiment_names=["exp-export"], filter_string=f"tags.`autolog.run_id` = '{autolog_id}'")
    assert len(df) == 1
    return str(df["run_id"].iloc[0])


def test_export_sqlite_to_mlflow_idempotent(
    mlflow_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "store" / "runs.db"
    parent_id, child_id, open_id = _populate(db)
    assert not (db.parent / "artifacts" / parent_id / "model").exists()  # in the database until read
    src, dst = f"sqlite:///{db}", f"mlflow+{mlflow_uri}"
    assert cli.main(["export", "--from", src, "--to", dst]) == 0
    out = capsys.readouterr()
    assert "exported 3 run(s)" in out.out and "0 already there" in out.out
    assert "run" in out.err  # the tqdm bar

    client = MlflowClient(mlflow_uri)
    pid = _mid(parent_id)
    parent = client.get_run(pid)
    assert parent.info.run_name == "parent" and parent.info.status == "FINISHED"
    assert parent.data.params == {"C": "1.0", "solver": "lbfgs"}
    history = client.get_metric_history(pid, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(300)]
    child = client.get_run(_mid(child_id))
    assert child.data.tags["mlflow.parentRunId"] == pid
    assert client.get_run(_mid(open_id)).info.status == "RUNNING"
    files = {a.path for a in client.list_artifacts(pid)}
    assert {"notes", "model"} <= files
    loaded = mlflow.pyfunc.load_model(f"runs:/{pid}/model")  # the sklearn model became an MLflow model
    assert loaded.predict(np.zeros((2, 3))).shape == (2,)

    # the open run goes on in the source; a second export sends only what is new, and skips what is complete
    backend = SqliteBackend(src)
    t1 = time.time()
    more = [Metric("v", float(i), i, t1 + i) for i in range(10, 15)]
    backend.write([RunRecords(open_id, metrics=more, end=RunEnd(open_id, "FINISHED", t1 + 20))])
    assert cli.main(["export", "--from", src, "--to", dst, "--quiet"]) == 0
    assert "exported 1 run(s)" in capsys.readouterr().out
    assert cli.main(["export", "--from", src, "--to", dst, "--quiet"]) == 0
    assert "exported 0 run(s)" in capsys.readouterr().out
    assert len(mlflow.search_runs(experiment_names=["exp-export"])) == 3
    assert [m.value for m in client.get_metric_history(pid, "loss")] == [1.0 / (s + 1) for s in range(300)]
    assert [(m.step, m.value) for m in client.get_metric_history(_mid(open_id), "v")] == [
        (i, float(i)) for i in range(15)
    ]
    assert client.get_run(_mid(open_id)).info.status == "FINISHED"


def test_export_failure_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    db = tmp_path / "runs.db"
    autolog.enable(backend=f"sqlite:///{db}", flush_interval=0.05)
    with autolog.start_run("lonely"):
        autolog.log_metric("m", 1.0)
    assert autolog.flush(10)
    dead = f"mlflow+http://127.0.0.1:{free_port()}"  # nothing listens there
    assert cli.main(["export", "--from", f"sqlite:///{db}", "--to", dead, "--quiet"]) == 1
    assert "1 FAILED" in capsys.readouterr().out
