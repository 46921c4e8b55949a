"""The embedded SQLite store: round trips, artifacts, several processes writing one file at once."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog
from autolog import models
from autolog.backends import _sqlite_schema
from autolog.backends import sqlite as sqlite_backend
from autolog.backends._sqlite_schema import VERSION, StoreVersionError
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


V1_SCHEMA = """
CREATE TABLE runs (pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, experiment TEXT NOT NULL, name TEXT NOT NULL,
                   status TEXT NOT NULL, parent_id TEXT, start_time REAL NOT NULL, end_time REAL);
CREATE TABLE params (run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run, key));
CREATE TABLE tags (run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run, key));
CREATE TABLE metrics (run INTEGER NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, value REAL,
                      timestamp REAL NOT NULL);
CREATE INDEX metrics_run ON metrics (run);
CREATE TABLE artifacts (run INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (run, path));
CREATE TABLE spool_marks (journal TEXT PRIMARY KEY, confirmed INTEGER NOT NULL);
"""


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    """A store written by the first layout (text keys, one index) reads the same after the upgrade."""
    db = tmp_path / "runs.db"
    con = sqlite3.connect(db)
    con.executescript(V1_SCHEMA)
    con.execute("INSERT INTO runs VALUES (1, 'run-a', 'Default', 'a', 'FINISHED', NULL, 1.0, 9.0)")
    con.execute("INSERT INTO runs VALUES (2, 'run-b', 'exp', 'b', 'RUNNING', 'run-a', 2.0, NULL)")
    con.execute("INSERT INTO params VALUES (1, 'lr', '0.1')")
    con.execute("INSERT INTO spool_marks VALUES ('j1', 640)")
    for step in range(5):  # the two runs' rows interleaved, as two processes would write them
        con.execute("INSERT INTO metrics VALUES (1, 'loss', ?, ?, ?)", (step, 1.0 / (step + 1), 10.0 + step))
        con.execute("INSERT INTO metrics VALUES (2, 'acc', ?, ?, ?)", (step, None if step == 4 else step, 20.0))
        con.execute("INSERT INTO metrics VALUES (1, 'lr', ?, ?, ?)", (step, 0.1, 10.0 + step))
    con.commit()
    con.close()

    store = SqliteBackend(f"sqlite:///{db}")
    a, b = store.get_run("run-a"), store.get_run("run-b")
    assert (a.status, a.params, a.metrics) == ("FINISHED", {"lr": "0.1"}, {"loss": 0.2, "lr": 0.1})
    assert b.parent_id == "run-a" and math.isnan(b.metrics["acc"])
    assert store.get_metric_history("run-a", "loss") == [(s, 1.0 / (s + 1), 10.0 + s) for s in range(5)]
    assert [v for _, v, _ in store.get_metric_history("run-b", "acc")][:4] == [0.0, 1.0, 2.0, 3.0]
    assert store.spool_mark("j1") == 640
    store.write([RunRecords("run-b", metrics=[("acc", 5.0, 5, 21.0)])])  # and it takes new values after them
    assert [s for s, _, _ in store.get_metric_history("run-b", "acc")] == list(range(6))
    store.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == VERSION
    by_hand = con.execute("SELECT run, count(*) FROM metrics GROUP BY run ORDER BY run").fetchall()
    assert by_hand == [(1, 10), (2, 6)]  # the ``metrics`` view keeps SQL written for the old table working
    con.close()


def test_a_store_from_a_newer_autolog_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {VERSION + 1}")
    con.close()
    with pytest.raises(StoreVersionError, match="newer than this autolog"):
        SqliteBackend(f"sqlite:///{db}").search_runs()


def test_a_rolled_back_batch_leaves_no_cached_run_or_key_behind(tmp_path: Path) -> None:
    """The pk and key id a failed transaction took are given back: another writer may take them meanwhile."""
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    mine, other = SqliteBackend(uri), SqliteBackend(uri)  # two writers, as two processes
    start = RunStart("mine", "Default", "mine", 1.0)
    with pytest.raises(OverflowError):  # a step SQLite cannot hold fails the whole batch, after the run's insert
        mine.write([RunRecords("mine", start=start, metrics=[("loss", 1.0, 2**70, 1.0)])])
    other.write(
        [RunRecords("theirs", start=RunStart("theirs", "Default", "theirs", 2.0), metrics=[("acc", 7.0, 0, 2.0)])]
    )
    mine.write([RunRecords("mine", start=start, metrics=[("loss", 2.0, 1, 3.0)])])  # the writer's retry
    assert mine.get_run("mine").metrics == {"loss": 2.0}
    assert mine.get_run("theirs").metrics == {"acc": 7.0}
    mine.close()
    other.close()


# -- small artifacts of bytes in memory live in the database ---------------------------------------------------------
def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_small_artifact_of_bytes_is_kept_in_the_database_and_written_out_when_read(tmp_path: Path) -> None:
    store = SqliteBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    model = models.bytes_model_artifact("sklearn", {"model.pkl": b"\x80\x05pickle"}, None, "m:load", {"n": 1})
    text = Artifact.of_bytes("params/long.txt", b"a\rb" * 10)
    store.write([RunRecords("r1", start=RunStart("r1", "Default", "r", 1.0), artifacts=[model, text])])
    assert _files_under(store.artifact_root) == []  # no folder, no file at write time
    assert store.list_artifacts("r1") == ["model", "params/long.txt"]
    con = sqlite3.connect(tmp_path / "runs.db")
    stored = dict(con.execute("SELECT path, data FROM artifact_files"))
    con.close()
    assert stored == {
        "model/model.pkl": b"\x80\x05pickle",
        f"model/{models.META_FILE}": models.meta_json({"flavor": "sklearn", "loader": "m:load", "n": 1}),
        "params/long.txt": b"a\rb" * 10,
    }
    folder = store.download_artifact("r1", "model")
    assert folder == store.artifact_root / "r1" / "model"
    assert (folder / "model.pkl").read_bytes() == b"\x80\x05pickle"
    assert json.loads((folder / models.META_FILE).read_text())["loader"] == "m:load"
    assert store.download_artifact("r1", "params/long.txt").read_bytes() == b"a\rb" * 10
    assert _files_under(store.artifact_root) == [
        "r1/model/autolog-model.json",
        "r1/model/model.pkl",
        "r1/params/long.txt",
    ]
    with pytest.raises(FileNotFoundError, match="no artifact 'mode'"):
        store.download_artifact("r1", "mode")  # a prefix of a path is not an artifact
    store.close()


def test_an_artifact_over_the_inline_limit_is_written_as_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_backend, "INLINE_MAX", 10)
    store = SqliteBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    small, big = Artifact.of_bytes("small.txt", b"x" * 10), Artifact.of_bytes("big.txt", b"x" * 11)
    store.write([RunRecords("r1", start=RunStart("r1", "Default", "r", 1.0), artifacts=[small, big])])
    assert _files_under(store.artifact_root) == ["r1/big.txt"]
    assert store.list_artifacts("r1") == ["big.txt", "small.txt"]
    assert store.download_artifact("r1", "small.txt").read_bytes() == b"x" * 10
    store.close()


def test_an_artifact_logged_again_reads_as_its_newest_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline after inline (once read and written out), files after inline, inline after files: the last wins."""
    store = SqliteBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    start = RunStart("r1", "Default", "r", 1.0)
    store.write([RunRecords("r1", start=start, artifacts=[Artifact.of_bytes("a.txt", b"one")])])
    assert store.download_artifact("r1", "a.txt").read_bytes() == b"one"  # written out now
    store.write([RunRecords("r1", artifacts=[Artifact.of_bytes("a.txt", b"two")])])
    assert store.download_artifact("r1", "a.txt").read_bytes() == b"two"
    monkeypatch.setattr(sqlite_backend, "INLINE_MAX", 2)
    store.write([RunRecords("r1", artifacts=[Artifact.of_bytes("a.txt", b"three")])])  # too big: a file
    assert store.download_artifact("r1", "a.txt").read_bytes() == b"three"
    monkeypatch.setattr(sqlite_backend, "INLINE_MAX", 100)
    store.write([RunRecords("r1", artifacts=[Artifact.of_bytes("a.txt", b"four")])])
    assert store.download_artifact("r1", "a.txt").read_bytes() == b"four"
    assert store.list_artifacts("r1") == ["a.txt"]
    con = sqlite3.connect(tmp_path / "runs.db")
    assert con.execute("SELECT path, data FROM artifact_files").fetchall() == [("a.txt", b"four")]
    con.close()
    store.close()


def test_writing_out_an_artifact_a_reader_wrote_out_first_keeps_that_copy(tmp_path: Path) -> None:
    """Two readers at once: the second rename finds the folder there, leaves it and its own temporary nothing."""
    target = tmp_path / "run" / "model"
    sqlite_backend._write_out(target, "model", [("model/a", b"1"), ("model/sub/b", b"2")])
    sqlite_backend._write_out(target, "model", [("model/a", b"1"), ("model/sub/b", b"2")])
    assert _files_under(tmp_path) == ["run/model/a", "run/model/sub/b"]


def test_a_scikit_learn_model_goes_through_the_database_and_loads(sqlite_store: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=500).fit(x, y)
    assert autolog.flush(30)
    (run,) = autolog.search_runs()
    backend = autolog.session.backend()
    assert "model" in backend.list_artifacts(run.id)
    assert not (backend.artifact_root / run.id / "model").exists()
    loaded = autolog.load_model(run.id)
    assert (loaded.predict(x) == est.predict(x)).all()
    assert (backend.artifact_root / run.id / "model" / "model.pkl").is_file()


def test_a_version_2_store_gains_the_artifact_files_table(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    con = sqlite3.connect(db)
    for statement in _sqlite_schema.TABLES:
        if "artifact_files" not in statement:
            con.execute(statement)
    con.execute("INSERT INTO runs VALUES (1, 'run-a', 'Default', 'a', 'FINISHED', NULL, 1.0, 9.0)")
    con.execute("INSERT INTO artifacts VALUES (1, 'old.txt')")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    (tmp_path / "artifacts" / "run-a").mkdir(parents=True)
    (tmp_path / "artifacts" / "run-a" / "old.txt").write_bytes(b"old")
    store = SqliteBackend(f"sqlite:///{db}")
    assert store.download_artifact("run-a", "old.txt").read_bytes() == b"old"
    store.write([RunRecords("run-a", artifacts=[Artifact.of_bytes("new.txt", b"new")])])
    assert store.list_artifacts("run-a") == ["new.txt", "old.txt"]
    assert store.download_artifact("run-a", "new.txt").read_bytes() == b"new"
    store.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == VERSION == 3
    con.close()


def test_a_folder_of_artifacts_some_inline_some_files_reads_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "INLINE_MAX", 4)
    store = SqliteBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    small, big = Artifact.of_bytes("params/a.txt", b"aa"), Artifact.of_bytes("params/b.txt", b"bbbbbbbb")
    store.write([RunRecords("r1", start=RunStart("r1", "Default", "r", 1.0), artifacts=[small, big])])
    assert _files_under(store.artifact_root) == ["r1/params/b.txt"]  # the big one only, as a file
    folder = store.download_artifact("r1", "params")
    assert _files_under(folder) == ["a.txt", "b.txt"]
    assert (folder / "a.txt").read_bytes() == b"aa" and (folder / "b.txt").read_bytes() == b"bbbbbbbb"
    store.close()
