"""Models logged through the MLflow backend are MLflow models: ``pyfunc.load_model("runs:/<id>/model")`` predicts,
the flavour is the framework's, ``autolog.load_model`` gives the native object back, ``register_model`` versions."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autolog
from autolog.models import model_artifact

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


def _pickle_save(obj: Any, directory: Path) -> None:
    (directory / "model.pkl").write_bytes(pickle.dumps(obj))


def load_pickle(directory: Path) -> Any:
    return pickle.loads((Path(directory) / "model.pkl").read_bytes())


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _sklearn(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(x, y)
    return model, model.predict


def _xgboost(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    return model, model.predict


def _lightgbm(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    lgb = pytest.importorskip("lightgbm")
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(x, y)
    return model, model.predict


def _pytorch(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(y)).backward()
        opt.step()
    model.eval()

    def predict(data: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(data)).numpy()

    return model, predict


def _keras(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)
    return model, lambda data: model.predict(data, verbose=0)


BUILD = {"sklearn": _sklearn, "xgboost": _xgboost, "lightgbm": _lightgbm, "pytorch": _pytorch, "keras": _keras}
MLFLOW_FLAVOR = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "pytorch": "pytorch",
    "keras": "keras",
}


@pytest.mark.parametrize("flavor", list(BUILD))
def test_model_in_mlflow_format_loads_and_predicts(flavor: str, mlflow_uri: str) -> None:
    x, y = _data()
    model, predict = BUILD[flavor](x, y)
    snapshot = model if flavor == "keras" else copy.deepcopy(model)
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05, disable_for="*")
    with autolog.start_run(f"model-{flavor}", experiment="exp-models") as run:
        run.log_model(model_artifact(flavor, snapshot, _pickle_save, f"{__name__}:load_pickle"))
    assert autolog.flush(120)
    df = mlflow.search_runs(experiment_names=["exp-models"], filter_string=f"tags.`autolog.run_id` = '{run.id}'")
    mid = str(df["run_id"].iloc[0])
    expected = np.asarray(predict(x[:20]))
    loaded = mlflow.pyfunc.load_model(f"runs:/{mid}/model")
    assert MLFLOW_FLAVOR[flavor] in loaded.metadata.flavors
    got = np.asarray(loaded.predict(x[:20]))
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)
    native = autolog.load_model(run.id)  # autolog's own loader: the framework object
    np.testing.assert_allclose(
        np.asarray(BUILD_PREDICT[flavor](native, x[:20])).reshape(expected.shape), expected, rtol=1e-5, atol=1e-6
    )


def _torch_predict(model: Any, data: np.ndarray) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.as_tensor(data)).numpy()


BUILD_PREDICT = {
    "sklearn": lambda m, d: m.predict(d),
    "xgboost": lambda m, d: m.predict(d),
    "lightgbm": lambda m, d: m.predict(d),
    "pytorch": _torch_predict,
    "keras": lambda m, d: m.predict(d, verbose=0),
}


def test_a_model_no_flavour_can_save_is_wrapped_as_pyfunc(mlflow_uri: str) -> None:
    from sklearn.linear_model import LinearRegression

    x, _ = _data()
    model = LinearRegression().fit(x, x[:, 0] * 2)
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05, disable_for="*")
    with autolog.start_run("wrapped", experiment="exp-wrapped") as run:
        run.log_model(model_artifact("custom", model, _pickle_save, f"{__name__}:load_pickle"))
    assert autolog.flush(60)
    df = mlflow.search_runs(experiment_names=["exp-wrapped"])
    loaded = mlflow.pyfunc.load_model(f"runs:/{df['run_id'].iloc[0]}/model")
    np.testing.assert_allclose(loaded.predict(x[:5]), model.predict(x[:5]), rtol=1e-6)
    assert type(autolog.load_model(run.id)) is LinearRegression


def test_register_model_creates_a_registry_version(mlflow_uri: str) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = _data()
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05, disable_for="*", register_model="autolog-tree")
    for i in range(2):
        model = DecisionTreeClassifier(max_depth=i + 1).fit(x, y)
        with autolog.start_run(f"tree-{i}", experiment="exp-registry"):
            autolog.active_run().log_model(model_artifact("sklearn", model, _pickle_save, f"{__name__}:load_pickle"))
    assert autolog.flush(60)
    versions = MlflowClient(mlflow_uri).search_model_versions("name = 'autolog-tree'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    loaded = mlflow.pyfunc.load_model("models:/autolog-tree/2")
    assert loaded.predict(x[:10]).shape == (10,)


def test_autologged_models_of_each_integration_load_with_pyfunc(mlflow_uri: str) -> None:
    """End to end: the integrations' own snapshots (bytes, state dicts) become MLflow models of the right flavour."""
    import lightgbm as lgb
    import torch
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05, experiment="exp-e2e")
    fitted = {
        "sklearn": LogisticRegression().fit(x, y),
        "xgboost": xgb.XGBClassifier(n_estimators=4, n_jobs=1).fit(x, y),
        "lightgbm": lgb.LGBMClassifier(n_estimators=4, verbose=-1).fit(x, y),
    }
    net = torch.nn.Linear(x.shape[1], 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(net(torch.as_tensor(x)), torch.as_tensor(y).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    autolog.end_run()
    assert autolog.flush(120)
    df = mlflow.search_runs(experiment_names=["exp-e2e"])
    assert len(df) == 4
    flavours = {}
    for mid in df["run_id"]:
        loaded = mlflow.pyfunc.load_model(f"runs:/{mid}/model")
        flavour = next(f for f in loaded.metadata.flavors if f != "python_function")
        flavours[flavour] = loaded
    assert set(flavours) == {"sklearn", "xgboost", "lightgbm", "pytorch"}
    for name, model in fitted.items():
        np.testing.assert_array_equal(np.asarray(flavours[name].predict(x[:20])).ravel(), model.predict(x[:20]))
    with torch.no_grad():
        expected = net(torch.as_tensor(x[:20])).numpy()
    np.testing.assert_allclose(np.asarray(flavours["pytorch"].predict(x[:20])), expected, rtol=1e-5, atol=1e-6)


def test_logging_a_model_prints_no_type_hint_warning_and_a_wrapped_model_loads_in_a_fresh_process(
    mlflow_uri: str, tmp_path: Path
) -> None:
    """MLflow warns "Add type hints to the `predict` method" when a PythonModel subclass without hints is defined:
    the pyfunc wrapper class used to be defined at import, so every process logging any model to MLflow printed it.
    It is defined on first use; a wrapped model (pickled by reference to it) still loads in a fresh process."""
    (tmp_path / "pickled.py").write_text(
        textwrap.dedent(
            """
            import pickle
            from pathlib import Path

            def save(obj, directory):
                (directory / "model.pkl").write_bytes(pickle.dumps(obj))

            def load(directory):
                return pickle.loads((Path(directory) / "model.pkl").read_bytes())
            """
        )
    )
    script = tmp_path / "log_models.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import numpy as np
            from sklearn.linear_model import LinearRegression, LogisticRegression
            import autolog
            from autolog.models import model_artifact
            from pickled import load, save

            x = np.arange(40, dtype=float).reshape(20, 2)
            autolog.enable(backend={f"mlflow+{mlflow_uri}"!r}, experiment="exp-hints", flush_interval=0.05)
            LogisticRegression().fit(x, (x[:, 0] > 20).astype(int))  # autologged: the sklearn flavour
            assert autolog.flush(60)
            print("native-done", file=sys.stderr, flush=True)
            if sys.argv[1] == "wrapped":
                with autolog.start_run("wrapped") as run:
                    run.log_model(model_artifact("custom", LinearRegression().fit(x, x[:, 0]), save, "pickled:load"))
                assert autolog.flush(60)
                print(run.id)
            """
        )
    )
    path = os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]])
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PYTHONPATH": path}
    native = subprocess.run(
        [sys.executable, str(script), "native"], capture_output=True, text=True, timeout=300, env=env, check=True
    )
    assert "native-done" in native.stderr
    assert "type hints" not in native.stderr, native.stderr
    wrapped = subprocess.run(
        [sys.executable, str(script), "wrapped"], capture_output=True, text=True, timeout=300, env=env, check=True
    )
    run_id = wrapped.stdout.strip().splitlines()[-1]
    df = mlflow.search_runs(experiment_names=["exp-hints"], filter_string=f"tags.`autolog.run_id` = '{run_id}'")
    uri = f"runs:/{df['run_id'].iloc[0]}/model"
    load = f"import mlflow, numpy as np; print(mlflow.pyfunc.load_model({uri!r}).predict(np.array([[4.0, 5.0]])))"
    loaded = subprocess.run(
        [sys.executable, "-c", load], check=False, capture_output=True, text=True, timeout=300, env=env
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert float(loaded.stdout.strip().strip("[]")) == pytest.approx(4.0)


def test_a_run_with_a_model_ends_without_asking_the_server_for_the_run(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow's client fetches the whole run (``runs/get``) before its first upload, to find the artifact store, and
    again in ``set_terminated``, to print the run's link: two requests at the end of every run, which the training
    call waits for. The backend knows both from ``runs/create``. A spy on the HTTP session (the requests still go to
    the real server) lists what was sent; the model's files, uploaded several at a time, are all there and load."""
    import requests

    sent: list[tuple[str, str]] = []
    real = requests.Session.request

    def spy(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url))
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    x, y = _data()
    model, predict = _pytorch(x, y)  # a folder inside the model (data/): uploads keep the layout
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05, disable_for="*")
    with autolog.start_run("ends-fast", experiment="exp-end") as run:
        autolog.log_metric("loss", 0.5, step=0)
        run.log_model(model_artifact("pytorch", copy.deepcopy(model), _pickle_save, f"{__name__}:load_pickle"))
    assert autolog.flush(120)
    paths = [urllib.parse.urlparse(url).path for _, url in sent]
    assert not [p for p in paths if p.endswith("/runs/get")], paths
    puts = [p for (method, _), p in zip(sent, paths, strict=True) if method == "PUT"]
    uploads = sorted(p.rsplit("/artifacts/", 1)[1] for p in puts)  # .../<run id>/artifacts/model/...
    df = mlflow.search_runs(experiment_names=["exp-end"])
    mid = str(df["run_id"].iloc[0])
    assert df["status"].iloc[0] == "FINISHED"
    client = MlflowClient(mlflow_uri)
    stored: list[str] = []
    todo = ["model"]
    while todo:
        for info in client.list_artifacts(mid, todo.pop()):
            (todo if info.is_dir else stored).append(info.path)
    assert uploads == sorted(stored) and "model/MLmodel" in stored and any(s.startswith("model/data/") for s in stored)
    expected = np.asarray(predict(x[:20]))
    got = np.asarray(mlflow.pyfunc.load_model(f"runs:/{mid}/model").predict(x[:20]))
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)
    out = capsys.readouterr().out  # the link MLflow prints when a run ends, printed as MLflow prints it
    experiment_id = str(df["experiment_id"].iloc[0])
    assert f"View run ends-fast at: {mlflow_uri}/#/experiments/{experiment_id}/runs/{mid}\n" in out


def test_the_links_are_not_printed_when_mlflow_is_told_not_to(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    autolog.enable(backend=f"mlflow+{mlflow_uri}", flush_interval=0.05, disable_for="*")
    with autolog.start_run("quiet", experiment="exp-quiet"):
        autolog.log_metric("loss", 0.5, step=0)
    assert autolog.flush(60)
    assert mlflow.search_runs(experiment_names=["exp-quiet"])["status"].iloc[0] == "FINISHED"
    assert "View run" not in capsys.readouterr().out


def test_a_run_that_ends_at_exit_still_gets_its_model_into_mlflow(mlflow_uri: str, tmp_path: Path) -> None:
    """A plain torch loop's run ends when the script exits: its model is saved and uploaded from autolog's exit
    handler, after Python has closed ``concurrent.futures`` to new work (its pools refuse work once the
    interpreter's threads have been joined, before the exit handlers run). The model must still arrive."""
    script = f"""
import torch, autolog
autolog.enable(backend="mlflow+{mlflow_uri}", experiment="exp-ends-at-exit")
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(3):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 2, (16,)))
    loss.backward()
    optimizer.step()
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "AUTOLOG_TESTING": "0"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "not written" not in proc.stderr and "not stored" not in proc.stderr, proc.stderr
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("exp-ends-at-exit").experiment_id])
    assert run.info.status == "FINISHED"
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert np.asarray(loaded.predict(np.zeros((3, 4), dtype=np.float32))).shape == (3, 2)
