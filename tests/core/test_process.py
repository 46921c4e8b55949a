"""Whole-process behaviour, each in a subprocess: bounded exit, fork, lazy enable, the end of a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import autolog


def run_script(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def test_exit_is_bounded_by_the_shutdown_timeout_while_the_backend_blocks_forever() -> None:
    code = """
        import threading, time, autolog
        from autolog.backends.base import Backend

        class Forever(Backend):
            uri = "forever:"
            def write(self, batch):
                threading.Event().wait()  # never returns

        autolog.enable(backend=Forever())
        with autolog.start_run("stuck"):
            for i in range(100):
                autolog.log_metrics({"m": i}, step=i)
        print("logged", flush=True)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AUTOLOG_SHUTDOWN_TIMEOUT": "1.5"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "logged"  # the script's last line ran: from here on it is exit
    t0 = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, stderr
    assert "not written within AUTOLOG_SHUTDOWN_TIMEOUT=1.5s" in stderr
    assert took < 1.5 + 1, took


def test_forked_child_logs_its_own_records_and_never_resends_the_parents(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code = f"""
        import os, autolog
        autolog.enable(backend="sqlite:///{db}", flush_interval=60, batch_size=10**6)
        with autolog.start_run("parent") as run:
            for i in range(50):
                autolog.log_metrics({{"parent": i}}, step=i)   # still queued at the fork
            pid = os.fork()
            if pid == 0:
                for i in range(7):
                    autolog.log_metrics({{"child": i}}, step=i)
                ok = autolog.flush(30)
                os._exit(0 if ok else 3)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        print(run.id)
    """
    proc = run_script(code)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    autolog.enable(backend=f"sqlite:///{db}")
    assert [s for s, _, _ in autolog.get_metric_history(run_id, "parent")] == list(range(50))
    assert [s for s, _, _ in autolog.get_metric_history(run_id, "child")] == list(range(7))
    assert autolog.get_run(run_id).status == "FINISHED"


def test_enable_imports_no_framework() -> None:
    code = """
        import sys, json
        import autolog
        autolog.enable()
        frameworks = ["sklearn", "xgboost", "lightgbm", "torch", "lightning", "pytorch_lightning", "keras",
                      "tensorflow", "mlflow", "numpy", "pandas", "matplotlib", "sqlite3"]
        print(json.dumps([m for m in frameworks if m in sys.modules]))
    """
    proc = run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_enable_after_a_framework_was_imported_patches_it_at_once() -> None:
    pytest.importorskip("sklearn")
    code = """
        import sklearn.linear_model, autolog
        autolog.enable(backend="memory:")
        print(sorted(autolog.integrations.active()))
    """
    proc = run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert "sklearn" in proc.stdout or "[]" in proc.stdout  # [] only while the sklearn integration is absent


def test_a_patched_framework_brings_the_local_stores_modules_and_opens_nothing(tmp_path: Path) -> None:
    """The store's modules are imported when a framework is patched, not by the writer in the first second of
    training (where they held the GIL); the store itself is still opened at the first write, and a server store's
    heavy client is not imported ahead."""
    pytest.importorskip("sklearn")
    code = f"""
        import sys, json
        import autolog
        autolog.enable(backend=["sqlite:///{tmp_path / "runs.db"}", "mlflow+http://127.0.0.1:9"])
        before = "autolog.backends.sqlite" in sys.modules
        import sklearn.linear_model
        print(json.dumps([before, "autolog.backends.sqlite" in sys.modules, "sqlite3" in sys.modules,
                          "mlflow" in sys.modules]))
    """
    proc = run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [False, True, True, False]
    assert not (tmp_path / "runs.db").exists()


def test_uncaught_exception_ends_the_open_run_failed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code = f"""
        import autolog
        autolog.enable(backend="sqlite:///{db}")
        autolog.log_metrics({{"loss": 0.5}}, step=0)   # no run open: an ambient run for the script
        print(autolog.active_run().id, flush=True)
        raise RuntimeError("training blew up")
    """
    proc = run_script(code)
    assert proc.returncode == 1 and "training blew up" in proc.stderr
    run_id = proc.stdout.strip()
    autolog.enable(backend=f"sqlite:///{db}")
    run = autolog.get_run(run_id)
    assert run.status == "FAILED"
    assert run.metrics == {"loss": 0.5}
    assert run.tags["autolog.pid"] != str(os.getpid())


def test_script_that_ends_normally_ends_its_run_finished_with_default_tags(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    script = tmp_path / "train.py"
    script.write_text(
        f"import autolog\nautolog.enable(backend='sqlite:///{db}')\nautolog.log_metric('x', 1.0)\n"
        "print(autolog.active_run().id)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    autolog.enable(backend=f"sqlite:///{db}")
    run = autolog.get_run(proc.stdout.strip())
    assert run.status == "FINISHED"
    assert run.tags["autolog.script"] == str(script.resolve())
    assert run.tags["autolog.python"].count(".") == 2
    assert "autolog.host" in run.tags


def test_a_dropped_start_run_context_manager_does_not_fail_the_run(memory_store: str) -> None:
    """``start_run(...).__enter__()`` with no reference kept: garbage collection must not end the run FAILED."""
    import gc

    run = autolog.start_run("kept-open").__enter__()
    gc.collect()
    assert not run.ended
    autolog.log_metrics({"x": 1.0}, step=0)
    autolog.end_run()
    assert autolog.flush(10)
    [stored] = autolog.search_runs()
    assert stored.status == "FINISHED" and stored.metrics == {"x": 1.0}
