"""The ``autolog`` command, run as a real subprocess (``python -m autolog``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import autolog


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autolog", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
        env=dict(os.environ),
    )


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[str]]:
    """Two finished runs in the default store of ``tmp_path``."""
    autolog.enable(backend="sqlite:///autolog-runs/runs.db")
    ids = []
    for lr in (0.1, 0.01):
        with autolog.start_run(f"lr-{lr}") as run:
            autolog.log_params({"lr": lr, "epochs": 3})
            for step in range(5):
                autolog.log_metrics({"loss": lr * (5 - step)}, step=step)
        ids.append(run.id)
    assert autolog.flush(10)
    return tmp_path, ids


def test_runs_table(store: tuple[Path, list[str]]) -> None:
    cwd, ids = store
    proc = cli("runs", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:6] == ["id", "experiment", "name", "status", "start", "duration"]
    assert ids[1][:12] in lines[2] and "lr-0.01" in lines[2]  # newest first
    assert "FINISHED" in lines[3] and "loss=0.1" in lines[3]


def test_show_by_prefix(store: tuple[Path, list[str]]) -> None:
    cwd, ids = store
    proc = cli("show", ids[0][:8], cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert f"run        {ids[0]}" in proc.stdout
    assert "lr = 0.1" in proc.stdout and "loss = 0.1  (5)" in proc.stdout


def test_metrics_and_plot(store: tuple[Path, list[str]]) -> None:
    pytest.importorskip("matplotlib")
    cwd, ids = store
    proc = cli("metrics", ids[1], "loss", "--plot", "loss.png", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    values = [line.split()[1] for line in proc.stdout.splitlines()[2:7]]
    assert values == ["0.05", "0.04", "0.03", "0.02", "0.01"]
    assert (cwd / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_marks_what_differs(store: tuple[Path, list[str]]) -> None:
    cwd, ids = store
    proc = cli("compare", *ids, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line for line in proc.stdout.splitlines() if line.startswith(("param", "metric"))}
    assert rows["lr"].split()[2] == "*" and rows["epochs"].split()[2] == "3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "doesnotexist"], "no run 'doesnotexist'"),
        (["metrics", "doesnotexist", "loss"], "no run 'doesnotexist'"),
        (["runs", "--backend", "bogus://x"], "unknown backend scheme 'bogus'"),
        (["artifacts", "abc", "--backend", "tensorboard:./tb"], "cannot read runs (a write-only store"),
        (["metrics", "{run}", "loss", "--plot", "nodir/loss.png"], "--plot nodir/loss.png: no folder nodir"),
        (["metrics", "{run}", "loss", "--plot", "loss.foo"], "matplotlib cannot write .foo files (it can: "),
        (["export", "--from", "sqlite:///nonexist.db", "--to", "jsonl:./jx"], "no autolog store at nonexist.db"),
        (["runs", "--limit", "abc"], "argument --limit: invalid int value: 'abc' (see: autolog runs --help)"),
        (["metrics"], "the following arguments are required: run, key"),
    ],
)
def test_errors_are_one_line_and_exit_2(store: tuple[Path, list[str]], args: list[str], message: str) -> None:
    cwd, ids = store
    if "--plot" in args:
        pytest.importorskip("matplotlib")
    proc = cli(*(a.replace("{run}", ids[0]) for a in args), cwd=cwd)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("autolog: ") and not proc.stderr.startswith("autolog: autolog:")
    assert not (cwd / "nodir").exists() and not (cwd / "loss.foo").exists() and not (cwd / "nonexist.db").exists()


def test_mlflow_file_store_without_its_variable_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    proc = cli("show", "abc", "--backend", "mlflow+file:./mlruns", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "MLFLOW_ALLOW_FILE_STORE=true" in proc.stderr


def test_an_mlflow_database_mlflow_cannot_read_is_a_one_line_error(tmp_path: Path) -> None:
    """A real SQLite file whose tables clash with MLflow's (as a store left half built did): SQLAlchemy's error, said
    in one line, not its traceback. (MLflow's own INFO lines about its tables may come before it.)"""
    pytest.importorskip("mlflow")
    import sqlite3

    with sqlite3.connect(tmp_path / "ml.db") as db:
        db.execute("CREATE TABLE logged_models (x INTEGER)")
    proc = cli("runs", "--backend", "mlflow+sqlite:///ml.db", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("autolog: the MLflow database cannot be read: OperationalError") and "already exists" in last


def test_a_tracking_server_that_is_down_is_a_one_line_error_in_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the port (a real refused connection). MLflow's own patience, 7 retries with back-off, is
    about 4 minutes; the CLI's reads wait seconds. The variables are left unset, as a user's shell would have them."""
    pytest.importorskip("mlflow")
    from tests._mlflow_server import free_port

    for name in (
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    url = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    proc = cli("runs", "--backend", f"mlflow+{url}", cwd=tmp_path)
    assert time.monotonic() - began < 60
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"the MLflow tracking server at {url} does not answer" in proc.stderr


def test_an_export_to_a_tracking_server_that_is_down_is_a_one_line_error(store: tuple[Path, list[str]]) -> None:
    """Not one run can go (nothing listens on the port): the store's error in one line, exit 2; not a summary of
    per-run failures with exit 1."""
    pytest.importorskip("mlflow")
    from tests._mlflow_server import free_port

    cwd, _ = store
    url = f"http://127.0.0.1:{free_port()}"
    proc = cli("export", "--quiet", "--from", "sqlite:///autolog-runs/runs.db", "--to", f"mlflow+{url}", cwd=cwd)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert f"the MLflow tracking server at {url} does not answer" in proc.stderr and proc.stdout == ""


def test_a_reader_that_stops_early_ends_the_command_quietly(store: tuple[Path, list[str]]) -> None:
    """``autolog runs | head -1``: made certain here by closing the pipe before the command writes."""
    cwd, _ = store
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "autolog", "runs"],
            check=False,
            stdout=write,
            stderr=subprocess.PIPE,
            cwd=cwd,
            timeout=120,
        )
    finally:
        os.close(write)
    assert proc.stderr.decode() == "" and proc.returncode == 141


def test_missing_store_is_a_one_line_error(tmp_path: Path) -> None:
    proc = cli("runs", cwd=tmp_path)
    assert proc.returncode == 2 and "no autolog store" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_metric_names_the_known_ones(store: tuple[Path, list[str]]) -> None:
    cwd, ids = store
    proc = cli("metrics", ids[0], "acc", cwd=cwd)
    assert proc.returncode == 2 and "has no metric 'acc' (it has: loss)" in proc.stderr


def test_run_executes_a_script_with_autologging_and_no_code_change(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\nimport autolog\n"
        "autolog.log_metrics({'args': len(sys.argv)}, step=0)\n"
        "assert __name__ == '__main__'\n"
    )
    proc = cli("run", "train.py", "a", "b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    autolog.enable(backend="sqlite:///autolog-runs/runs.db")
    (run,) = autolog.search_runs()
    assert run.metrics == {"args": 3.0} and run.status == "FINISHED"
    assert run.tags["autolog.script"] == str(script.resolve())


def test_artifacts_lists_and_gets_a_model_the_store_keeps_in_its_database(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    autolog.enable(backend="sqlite:///autolog-runs/runs.db")
    x, y = load_iris(return_X_y=True)
    LogisticRegression(max_iter=500).fit(x, y)
    assert autolog.flush(30)
    (run,) = autolog.search_runs()
    assert not (tmp_path / "autolog-runs" / "artifacts" / run.id / "model").exists()  # in the database

    listed = cli("artifacts", run.id[:8], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["model"]
    got = cli("artifacts", run.id[:8], "model", "--to", "out", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == str(Path("out") / "model")
    assert sorted(p.name for p in (tmp_path / "out" / "model").iterdir()) == ["autolog-model.json", "model.pkl"]
    here = cli("artifacts", run.id, "model", cwd=tmp_path)
    assert tmp_path / here.stdout.strip() == tmp_path / "autolog-runs" / "artifacts" / run.id / "model"  # written out
    loaded = autolog.models.load_from_dir(tmp_path / "out" / "model")
    assert (loaded.predict(x) == LogisticRegression(max_iter=500).fit(x, y).predict(x)).all()

    missing = cli("artifacts", run.id, "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "has no artifact 'nope'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
