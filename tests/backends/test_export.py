"""``autolog export`` from the embedded SQLite store into a real MLflow server: everything arrives, once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autolog
from autolog import cli
from autolog.backends.sqlite import SqliteBackend
from autolog.export import export
from autolog.integrations.sklearn import _log as sklearn_log
from autolog.records import Artifact, Metric, RunEnd, RunRecords, RunStart

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
    assert len(out.out.splitlines()) == 1  # the summary only: MLflow's "View run ..." lines go to stderr
    assert "View run" in out.err
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


def test_an_export_where_no_run_goes_is_the_stores_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not one run could go (nothing listens on the port): the store's error, one line, exit 2 (it was a summary of
    per-run failures with exit 1; exit 1 stays for an export where some runs went and others failed)."""
    db = tmp_path / "runs.db"
    autolog.enable(backend=f"sqlite:///{db}", flush_interval=0.05)
    for name in ("first", "second"):
        with autolog.start_run(name):
            autolog.log_metric("m", 1.0)
    assert autolog.flush(10)
    dead = f"mlflow+http://127.0.0.1:{free_port()}"  # nothing listens there
    assert cli.main(["export", "--from", f"sqlite:///{db}", "--to", dead, "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("autolog: the MLflow tracking server at http://127.0.0.1:")


def _live(src: str, run_id: str, steps: range, **more: object) -> None:
    """Write a piece of a run still in progress into the source store, as a training process would."""
    t0 = 1_700_000_000.0
    metrics = [Metric(key, float(s), s, t0 + s) for s in steps for key in ("val loss?", "loss")]
    SqliteBackend(src).write([RunRecords(run_id, metrics=metrics, **more)])  # type: ignore[arg-type]


def _find(client: MlflowClient, autolog_id: str) -> Any:
    exp = client.get_experiment_by_name("exp-reexport")
    (found,) = client.search_runs([exp.experiment_id], filter_string=f"tags.`autolog.run_id` = '{autolog_id}'")
    return found


@pytest.mark.parametrize("store", ["server", "file"])
def test_reexport_of_a_run_with_rewritten_keys_sends_only_what_is_new(
    store: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow holds 'val loss?' as 'val loss_': a re-export looks it up under that name. Asked under the source key,
    the file store refuses the request (the run's end never reached MLflow) and a server finds nothing, so every value
    and the rewritten param were sent again and counted again."""
    if store == "file":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        tracking = f"file:{tmp_path / 'mlruns'}"
    else:
        tracking = request.getfixturevalue("mlflow_uri")
    src, dst = f"sqlite:///{tmp_path / 'runs.db'}", f"mlflow+{tracking}"
    run_id = "d" * 32
    start = RunStart(run_id, "exp-reexport", "live", 1_700_000_000.0)
    _live(src, run_id, range(3), start=start, params={"lr (init)": "0.1"})
    first = export(src, dst, progress=False)
    assert first.ok and (first.runs_copied, first.metrics, first.params) == (1, 6, 1), first

    _live(src, run_id, range(3, 5), params={"b": "2"})
    again = export(src, dst, progress=False)
    assert again.ok, again
    assert (again.runs_copied, again.metrics, again.params) == (1, 4, 1), again  # only the new values and param

    _live(src, run_id, range(0), end=RunEnd(run_id, "FINISHED", 1_700_000_100.0))
    ended = export(src, dst, progress=False)
    assert ended.ok and (ended.runs_copied, ended.metrics, ended.params) == (1, 0, 0), ended
    assert str(export(src, dst, progress=False)).startswith("exported 0 run(s)")

    client = MlflowClient(tracking)
    mrun = _find(client, run_id)
    assert mrun.info.status == "FINISHED" and mrun.info.end_time == 1_700_000_100_000
    assert mrun.data.params == {"lr _init_": "0.1", "b": "2"}
    for key in ("val loss_", "loss"):
        assert [(m.step, m.value) for m in client.get_metric_history(mrun.info.run_id, key)] == [
            (s, float(s)) for s in range(5)
        ]


def test_reexport_of_a_run_in_progress_sends_tags_new_or_changed_since(mlflow_uri: str, tmp_path: Path) -> None:
    """An MLflow run found again takes no tags from the start record: tags set after the first export, or changed
    since, must travel on their own."""
    src, dst = f"sqlite:///{tmp_path / 'runs.db'}", f"mlflow+{mlflow_uri}"
    run_id = "e" * 32
    start = RunStart(run_id, "exp-reexport", "tagged", 1_700_000_000.0, tags={"stage": "warmup", "odd tag?": "a"})
    _live(src, run_id, range(2), start=start)
    assert export(src, dst, progress=False).ok

    _live(src, run_id, range(2, 3), tags={"later": "yes", "stage": "main", "odd tag?": "b"})
    assert export(src, dst, progress=False).ok
    tags = _find(MlflowClient(mlflow_uri), run_id).data.tags
    assert (tags.get("later"), tags.get("stage"), tags.get("odd tag_")) == ("yes", "main", "b")
    assert "odd tag?" not in tags and tags["autolog.run_id"] == run_id
