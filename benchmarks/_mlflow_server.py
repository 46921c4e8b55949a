"""A throw-away ``mlflow server`` on 127.0.0.1 for the backend benchmarks (SQLite store, local artifacts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mlflow_server(timeout: float = 180.0, cpus: set[int] | None = None) -> Iterator[str]:
    """Yield the URL of a new server. ``cpus``: the cores it may run on (``pin``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="autolog-bench-mlflow-"))
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(root / "artifacts")]
    with (root / "server.log").open("wb") as log:
        affinity = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True, preexec_fn=affinity)  # noqa: PLW1509
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((root / "server.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pin() -> tuple[set[int], set[int]]:
    """``--pin``: the server on the last core, this process (and the training processes it starts) on the others,
    as when the tracking server runs on another machine; every mode, bare included, gets the same cores. The
    training process's own threads (autolog's writer, MLflow's async logging) share its cores: nothing is hidden."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("--pin needs at least two cores")
    server, training = {cores[-1]}, set(cores[:-1])
    os.sched_setaffinity(0, training)
    return server, training
