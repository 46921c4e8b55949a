"""The MLflow backend against a real ``mlflow server`` (see conftest.py): what MLflow itself reads back."""

from __future__ import annotations

import json
import math
import os
import threading
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog.backends.mlflow import MlflowBackend
from autolog.records import Metric, RunEnd, RunRecords, RunStart

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


def rest(base: str, endpoint: str, **query: Any) -> dict[str, Any]:
    """GET one of the REST endpoints MLflow's UI uses."""
    url = f"{base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def mlflow_id(autolog_id: str, experiment: str) -> str:
    df = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`autolog.run_id` = '{autolog_id}'")
    assert len(df) == 1, df
    return str(df["run_id"].iloc[0])


def test_run_params_metrics_tags_as_mlflow_reads_them(mlflow_uri: str) -> None:
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05)
    long_value = "x" * 7000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run("first", experiment="exp-http", tags={"team": "core"}) as run:
            autolog.log_params({"lr": 0.01, "long": long_value, **{f"p{i}": i for i in range(150)}})
            for step in range(2500):  # > 1000 per request: the writer splits
                autolog.log_metrics({"loss": 1.0 / (step + 1), "bad key!?": float(step)}, step=step)
            autolog.log_metric("nan", math.nan, step=0)
        assert autolog.flush(60)
    messages = [str(w.message) for w in caught]
    assert any("'bad key!?'" in m and "'bad key__'" in m for m in messages), messages
    assert any("'long'" in m and "truncated" in m for m in messages), messages

    df = mlflow.search_runs(experiment_names=["exp-http"])
    assert len(df) == 1
    row = df.iloc[0]
    assert row["tags.mlflow.runName"] == "first"
    assert row["status"] == "FINISHED"
    assert row["tags.team"] == "core"
    assert row["tags.autolog.run_id"] == run.id
    assert row["tags.mlflow.user"] and row["tags.mlflow.source.type"] == "LOCAL"
    assert row["tags.mlflow.source.name"]
    assert row["params.lr"] == "0.01" and row["params.p149"] == "149"
    assert row["params.long"] == "x" * 6000
    assert row["metrics.loss"] == 1.0 / 2500
    mid = str(row["run_id"])

    client = MlflowClient(mlflow_uri)
    history = client.get_metric_history(mid, "loss")
    assert [m.step for m in history] == list(range(2500))
    assert [m.value for m in history] == [1.0 / (s + 1) for s in range(2500)]
    assert [m.value for m in client.get_metric_history(mid, "bad key__")] == [float(s) for s in range(2500)]
    assert math.isnan(client.get_metric_history(mid, "nan")[0].value)
    info = client.get_run(mid).info
    assert info.end_time >= info.start_time > 0
    assert abs(info.start_time / 1000 - time.time()) < 300

    # the REST API the UI uses
    got = rest(mlflow_uri, "runs/get", run_id=mid)["run"]
    assert got["info"]["run_name"] == "first" and got["info"]["status"] == "FINISHED"
    assert len(got["data"]["params"]) == 152
    page = rest(mlflow_uri, "metrics/get-history", run_id=mid, metric_key="loss", max_results=5000)
    assert [int(m.get("step", 0)) for m in page["metrics"]] == list(range(2500))

    # the full value of the truncated param is an artifact
    local = client.download_artifacts(mid, "params/long.txt", str(Path.cwd()))
    assert Path(local).read_text() == long_value

    # and autolog's read API reads MLflow back by autolog id
    again = autolog.get_run(run.id)
    assert (again.id, again.name, again.status, again.experiment) == (run.id, "first", "FINISHED", "exp-http")
    assert [s for s, _, _ in autolog.get_metric_history(run.id, "loss")] == list(range(2500))


def test_child_runs_carry_the_parent_run_id(mlflow_uri: str) -> None:
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05)
    with autolog.start_run("parent", experiment="exp-nest") as parent:
        for i in range(3):
            with autolog.start_run(f"child-{i}"):
                autolog.log_metric("score", i)
    assert autolog.flush(30)
    parent_mid = mlflow_id(parent.id, "exp-nest")
    df = mlflow.search_runs(experiment_names=["exp-nest"], filter_string=f"tags.mlflow.parentRunId = '{parent_mid}'")
    assert sorted(df["tags.mlflow.runName"]) == ["child-0", "child-1", "child-2"]
    assert sorted(df["metrics.score"]) == [0.0, 1.0, 2.0]


def test_a_run_the_user_started_in_mlflow_is_joined_not_duplicated(mlflow_uri: str) -> None:
    autolog.enable(backend="mlflow", flush_interval=0.05)  # MLflow's own configuration: MLFLOW_TRACKING_URI
    mlflow.set_experiment("exp-join")
    with mlflow.start_run(run_name="mine") as mine:
        mlflow.log_param("user_param", 1)
        with autolog.start_run("inner"):
            autolog.log_params({"alpha": 0.5})
            for step in range(10):
                autolog.log_metrics({"acc": step / 10}, step=step)
        assert autolog.flush(30)
        assert MlflowClient().get_run(mine.info.run_id).info.status == "RUNNING"  # not ended by autolog
    df = mlflow.search_runs(experiment_names=["exp-join"])
    assert len(df) == 1
    row = df.iloc[0]
    assert row["run_id"] == mine.info.run_id and row["status"] == "FINISHED"
    assert row["params.alpha"] == "0.5" and row["params.user_param"] == "1"
    history = MlflowClient().get_metric_history(mine.info.run_id, "acc")
    assert [(m.step, m.value) for m in history] == [(s, s / 10) for s in range(10)]


def test_a_batch_written_twice_is_stored_once(mlflow_uri: str) -> None:
    """A retry after the server took a batch but the answer was lost: the same batch arrives again."""
    backend = MlflowBackend(f"mlflow+{mlflow_uri}")
    t0 = time.time()
    start = RunStart("a" * 32, "exp-retry", "retried", t0)
    metrics = [Metric("loss", float(i), i, t0 + i / 1000) for i in range(500)]
    batch = [
        RunRecords(
            start.run_id, start=start, params={"k": "v"}, metrics=metrics, end=RunEnd(start.run_id, "FINISHED", t0 + 1)
        )
    ]
    backend.write(batch)
    MlflowBackend(f"mlflow+{mlflow_uri}").write(batch)  # a fresh process: finds the run again by its tag
    df = mlflow.search_runs(experiment_names=["exp-retry"])
    assert len(df) == 1
    history = MlflowClient(mlflow_uri).get_metric_history(str(df["run_id"].iloc[0]), "loss")
    assert [(m.step, m.value) for m in history] == [(i, float(i)) for i in range(500)]


def test_the_request_to_a_server_is_the_one_mlflow_would_send(mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """To a server the backend builds LogBatch's JSON itself (C encoder: MLflow's own took 30-50 µs a metric on the
    writer thread). A spy on MLflow's REST call (which still sends it) checks the body equals what
    ``RestStore.log_batch`` would send, NaN and infinities included; the server then reads it back."""
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import Param, RunTag
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.utils.proto_json_utils import message_to_json

    sent: list[str] = []
    real = RestStore._call_endpoint

    def spy(self: Any, api: Any, json_body: Any = None, *args: Any, **kwargs: Any) -> Any:
        if api is LogBatch:
            sent.append(json_body)
        return real(self, api, json_body, *args, **kwargs)

    backend = MlflowBackend(f"mlflow+{mlflow_uri}")
    store = backend._rest_store()
    assert isinstance(store, RestStore)
    real = type(store)._call_endpoint  # autolog's own RestStore: MLflow's call, without its retries
    monkeypatch.setattr(type(store), "_call_endpoint", spy)
    client = backend.client
    run_id = client.create_run(client.create_experiment(f"body-{time.time_ns()}")).info.run_id
    metrics = [("loss", 0.25, 3, 1_700_000_000_123), ("nan", math.nan, 4, 5), ("up", math.inf, 2**40, 6)]
    metrics += [("down", -math.inf, 0, 7), ("tiny", 5e-324, 1, 8)]
    params, tags = {"lr": "0.1", "name": 'a "quoted" é'}, {"note": "x\ny"}
    backend._log_batch(run_id, metrics, params, tags)
    expected = LogBatch(
        run_id=run_id,
        metrics=[MlflowMetric(k, v, t, s).to_proto() for k, v, s, t in metrics],
        params=[Param(k, v).to_proto() for k, v in params.items()],
        tags=[RunTag(k, v).to_proto() for k, v in tags.items()],
    )
    assert len(sent) == 1
    assert json.loads(sent[0]) == json.loads(message_to_json(expected))
    backend._log_batch(run_id, [("loss", 0.5, 4, 9)], {}, {})  # metrics alone: no empty params or tags
    assert json.loads(sent[1]) == json.loads(
        message_to_json(LogBatch(run_id=run_id, metrics=[MlflowMetric("loss", 0.5, 9, 4).to_proto()]))
    )
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss")) == [(3, 0.25), (4, 0.5)]
    assert math.isnan(client.get_metric_history(run_id, "nan")[0].value)
    assert client.get_run(run_id).data.params == params


@pytest.mark.parametrize("scheme", ["sqlite", "file"])
def test_local_tracking_stores(scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses its file store unless asked
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if scheme == "sqlite" else f"file:{tmp_path / 'mlruns'}"
    autolog.enable(backend=f"mlflow+{uri}", flush_interval=0.05)
    with autolog.start_run("local", experiment="exp-local") as run:
        for step in range(20):
            autolog.log_metrics({"v": step * 2}, step=step)
    assert autolog.flush(60)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("exp-local")
    (found,) = client.search_runs([exp.experiment_id])
    assert found.data.tags["autolog.run_id"] == run.id and found.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(found.info.run_id, "v")] == [
        (s, s * 2.0) for s in range(20)
    ]


def test_a_process_killed_while_mlflow_builds_a_fresh_sqlite_store_leaves_no_broken_database(tmp_path: Path) -> None:
    """MLflow builds a new SQLite store through its whole migration history (~10 s here). A process that died part
    way (killed, or a script exiting within its shutdown_timeout) used to leave it half built, refused by MLflow from
    then on ("table ... already exists"). Now the store is built aside and put in place once whole: the next
    process finds none, builds it, and ``autolog sync`` sends what waited in the spool."""
    import signal
    import subprocess
    import sys

    script = (
        "import autolog\n"
        "autolog.enable(backend='mlflow+sqlite:///ml.db', experiment='fresh')\n"
        "with autolog.start_run('r'):\n"
        "    autolog.log_metrics({'loss': 1.0}, step=0)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "AUTOLOG_TESTING": ""})
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*ml.db*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # into MLflow's migrations
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    done = _python(tmp_path, "-m", "autolog", "runs", "--backend", "mlflow+sqlite:///ml.db")
    assert done.returncode == 0 and "no runs yet" in done.stdout, done.stderr[-2000:]
    assert not list(tmp_path.glob(".ml.db.*"))  # the killed process's half-built store was removed
    assert "sent" in _python(tmp_path, "-m", "autolog", "sync").stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'ml.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("fresh").experiment_id])
    assert [(m.step, m.value) for m in client.get_metric_history(found.info.run_id, "loss")] == [(0, 1.0)]


def _python(folder: Path, *args: str) -> Any:
    import subprocess
    import sys

    env = {**os.environ, "AUTOLOG_TESTING": ""}
    return subprocess.run(
        [sys.executable, *args], check=False, cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def test_server_killed_mid_run_every_metric_arrives_in_order_once(
    mlflow_server: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the tracking server in the middle of a run, keep training, restart it: nothing lost, nothing twice,
    and the training thread never waits for the dead server."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # no retries inside MLflow's client: ours do it
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.02, max_retries=60, shutdown_timeout=180)
    n, kill_at = 3000, 1000
    with autolog.start_run("outage", experiment="exp-outage") as run:
        for step in range(kill_at):
            autolog.log_metrics({"loss": 1.0 / (step + 1), "step_sq": float(step * step)}, step=step)
        mlflow_server.stop()  # the writer may be in the middle of a request: the retry must not duplicate it
        worst, started = 0.0, time.perf_counter()
        for step in range(kill_at, n):
            t0 = time.perf_counter()
            autolog.log_metrics({"loss": 1.0 / (step + 1), "step_sq": float(step * step)}, step=step)
            worst = max(worst, time.perf_counter() - t0)
            if step % 100 == 0:
                time.sleep(0.01)  # "training": the writer keeps failing meanwhile
        outage_loop = time.perf_counter() - started
        writer = autolog.session.writer()
        assert writer.pending() > 0  # the records wait in memory, training goes on
        mlflow_server.start()
    # A call that waited on the writer would wait out its retries and back-off (seconds against a dead server); a
    # call held up by the writer's own Python work (the GIL; ~0.25 s seen once on a loaded 2-core machine, while the
    # writer compiled modules from source in its outage path) is not waiting for the server.
    assert worst < 0.5, f"a log call waited {worst:.3f}s for the dead server"
    assert outage_loop < 0.2 + 2.0, outage_loop  # 20 sleeps of 10 ms plus 2,000 appends
    assert autolog.flush(180)
    assert writer.counters["retried"] > 0 and not writer.dropped()
    client = MlflowClient(mlflow_uri)
    mid = mlflow_id(run.id, "exp-outage")
    for key, fn in (("loss", lambda s: 1.0 / (s + 1)), ("step_sq", lambda s: float(s * s))):
        history = client.get_metric_history(mid, key)
        assert [m.step for m in history] == list(range(n)), key
        assert [m.value for m in history] == [fn(s) for s in range(n)], key
    assert client.get_run(mid).info.status == "FINISHED"


def test_a_changed_param_is_warned_and_left_out_and_the_run_goes_on(mlflow_uri: str) -> None:
    """MLflow keeps a param's first value and refuses a whole request that changes one: the changed value is left
    out with a warning naming both values and counted, and everything else in that batch and after it arrives
    (it used to put the writer into a permanent outage). Also when the first value was set by someone else."""
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05)
    mlflow.set_experiment("exp-param-changed")
    with mlflow.start_run(run_name="mine") as mine:
        mlflow.log_param("set_by_user", "a")
        with autolog.start_run("inner"):
            autolog.log_params({"lr": 0.1})
            assert autolog.flush(30)
            with pytest.warns(autolog.AutologWarning) as caught:
                autolog.log_params({"lr": 0.2, "batch_size": 32, "set_by_user": "b"})
                autolog.log_metrics({"acc": 0.5}, step=0)
                assert autolog.flush(30)
            autolog.log_metrics({"acc": 0.75}, step=1)
    assert autolog.flush(30)
    messages = " ".join(str(w.message) for w in caught)
    assert "'lr'" in messages and "'0.1'" in messages and "'0.2'" in messages
    assert "'set_by_user'" in messages and "'a'" in messages and "'b'" in messages
    run = MlflowClient().get_run(mine.info.run_id)
    assert run.data.params == {"lr": "0.1", "batch_size": "32", "set_by_user": "a"}
    history = MlflowClient().get_metric_history(mine.info.run_id, "acc")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.75)]
    assert autolog.session.writer().dropped() == {"param_changed": 2}


def test_the_drop_report_names_a_fanout_store_by_its_uri_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report turns reasons into words (param_changed -> param changed), never the store's URI after them."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = f"mlflow+file:{tmp_path / 'my_mlruns'}"
    autolog.enable(backend=[f"sqlite:///{tmp_path / 'runs.db'}", store], flush_interval=60)
    with autolog.start_run("r"), pytest.warns(autolog.AutologWarning):
        autolog.log_params({"lr": 0.1})
        assert autolog.flush(30)
        autolog.log_params({"lr": 0.2})
        assert autolog.flush(30)
    assert autolog.session.drop_report() == f"autolog: 1 records were not stored (1 param changed in {store})"


def test_a_param_changed_within_one_batch_is_seen_as_across_batches(mlflow_uri: str, tmp_path: Path) -> None:
    """Two ``log_params`` calls changing one param, written in ONE batch (the writer sleeps 60 s between batches;
    ``flush`` sends everything queued at once): MLflow keeps the first value, warns naming key and both values, and
    counts it, as it does when a flush separates the calls; the SQLite store beside it keeps the last, as documented.
    The writer used to merge the two calls into one dict, so MLflow silently got the last value."""
    db = tmp_path / "runs.db"
    autolog.enable(backend=[f"sqlite:///{db}", f"mlflow+{mlflow_uri}"], flush_interval=60)
    with pytest.warns(autolog.AutologWarning, match="'lr'") as caught:
        with autolog.start_run("same batch", experiment="exp-param-batch") as run:
            autolog.log_params({"lr": 0.1, "opt": "sgd"})
            autolog.log_metrics({"loss": 1.0}, step=0)
            autolog.log_params({"lr": 0.2, "epochs": 3})
            autolog.log_params({"lr": 0.3})
            autolog.log_metrics({"loss": 0.5}, step=1)
            assert autolog.session.writer().counters["queued"] == 0  # nothing taken yet: the run's end sends it all
    messages = " ".join(str(w.message) for w in caught)
    assert "'0.1'" in messages and "'0.2'" in messages, messages
    dropped = autolog.session.writer().dropped()  # 0.2 and 0.3, as with a flush between each; under MLflow's URI
    assert dropped == {f"param_changed in mlflow+{mlflow_uri}": 2}
    row = mlflow.search_runs(experiment_names=["exp-param-batch"]).iloc[0]
    assert (row["params.lr"], row["params.opt"], row["params.epochs"]) == ("0.1", "sgd", "3")
    assert row["status"] == "FINISHED"
    history = MlflowClient(mlflow_uri).get_metric_history(str(row["run_id"]), "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]
    assert autolog.get_run(run.id).params == {"lr": "0.3", "opt": "sgd", "epochs": "3"}  # SQLite: the last value


def test_an_mlflow_server_that_is_not_there_does_not_hold_up_the_other_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real fault: nothing listens on the MLflow port (connection refused), MLflow's client at its defaults. Its
    own retries (7, exponential back-off: minutes per request) used to run inside each write of the one writer
    thread: the SQLite and JSONL stores beside it got almost nothing, flush(10) ran out, the run stayed RUNNING. The
    backend's requests now skip MLflow's retries (per client: the process's MLflow settings are left alone), and the
    fan-out rests a failed store while the others carry on."""
    from tests._mlflow_server import free_port

    for name in [n for n in os.environ if n.startswith("MLFLOW_HTTP_")]:
        monkeypatch.delenv(name)
    before = dict(os.environ)
    dead = f"mlflow+http://127.0.0.1:{free_port()}"
    db, jl = tmp_path / "s" / "runs.db", tmp_path / "jl"
    autolog.enable(backend=[f"sqlite:///{db}", f"jsonl:{jl}", dead], flush_interval=0.05, shutdown_timeout=20)
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run("fan", experiment="exp-dead") as run:
            autolog.log_params({"lr": 0.1})
            for step in range(50):
                autolog.log_metrics({"loss": float(step)}, step=step)
                if step % 10 == 0:
                    time.sleep(0.1)  # several batches: every one after the first skips the resting store
        assert autolog.flush(10)
    assert time.monotonic() - started < 15
    got = autolog.get_run(run.id)
    assert got.status == "FINISHED" and got.params == {"lr": "0.1"}
    assert [v for _, v, _ in autolog.get_metric_history(run.id, "loss")] == [float(s) for s in range(50)]
    lines = [json.loads(line) for line in (jl / f"{run.id}.jsonl").read_text().splitlines()]
    assert sum(line["type"] == "metric" for line in lines) == 50
    assert autolog.session.writer().dropped() == {f"backend_error in {dead}": 53}  # start, param, 50 values, end
    assert any(f"backend {dead} failed" in str(w.message) for w in caught)
    assert dict(os.environ) == before  # MLflow's settings for the rest of the process: untouched


def test_artifacts_go_beside_the_request_and_their_failure_is_the_writes() -> None:
    """A run's artifacts (a model saved in MLflow's format, then uploaded) are sent while the batch's request waits
    for the server. The helper must run at the same time as the request (the helper waits for the request to begin,
    and would time out if it ran before or after it), its error must fail the write (so the writer retries the batch
    as it did), and the request's own error must win over it."""
    from autolog.backends.mlflow import _beside

    began = threading.Event()
    seen: list[bool] = []
    with _beside(lambda: seen.append(began.wait(10))):
        began.set()
    assert seen == [True]

    def fail() -> None:
        raise OSError("upload refused")

    with pytest.raises(OSError, match="upload refused"), _beside(fail):
        pass
    with pytest.raises(ValueError, match="request refused"), _beside(fail):
        raise ValueError("request refused")


def test_uploads_at_once_make_every_call_once_and_raise_the_first_error_after_all() -> None:
    from autolog.backends.mlflow import _all_at_once

    done: list[int] = []
    lock = threading.Lock()
    together = threading.Barrier(4, timeout=10)  # four calls at the same time, or the barrier breaks

    def call(i: int) -> None:
        if i < 4:
            together.wait()
        with lock:
            done.append(i)
        if i == 5:
            raise OSError("refused: 5")

    with pytest.raises(OSError, match="refused: 5"):
        _all_at_once([(call, (i,)) for i in range(12)], 4)
    assert sorted(done) == list(range(12))  # every call made once, the ones after the failure too
