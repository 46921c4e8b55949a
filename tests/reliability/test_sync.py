"""`autolog sync` on journals written for a store that died with its process, and with nothing to send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from autolog.backends.sqlite import SqliteBackend

CHILD = """
    import autolog
    autolog.enable("memory:gone", flush_interval=60)
    cm = autolog.start_run("in-memory")
    run = cm.__enter__()
    for i in range(1000):
        run.log_metrics({"loss": float(i)}, step=i)
    print(run.id, flush=True)
    import time; time.sleep(60)
"""


def sync(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autolog", "sync", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_sync_with_nothing_to_send(tmp_path: Path) -> None:
    proc = sync(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("autolog sync: nothing to send")


def test_a_journal_for_a_memory_store_needs_a_backend_and_is_kept_until_then(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD)], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    refused = sync(tmp_path)
    assert "1 failed and were kept" in refused.stdout and "pass --backend" in refused.stdout, refused.stdout
    assert refused.returncode == 2  # records still waiting: a script or a cron job must see it
    assert refused.stderr.startswith("autolog: 1 journal(s) could not be sent") and refused.stderr.count("\n") == 1
    uri = f"sqlite:///{tmp_path / 'rescued.db'}"
    sent = sync(tmp_path, "--backend", uri)
    assert "sent 1001 records from 1 journal(s)" in sent.stdout, sent.stdout  # the run's start and 1,000 metrics
    store = SqliteBackend(uri)
    assert [s for s, _, _ in store.get_metric_history(run_id, "loss")] == list(range(1000))
    assert store.get_run(run_id).status == "KILLED"
