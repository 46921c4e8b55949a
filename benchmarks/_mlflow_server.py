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
        settle(proc.pid)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group (the server and what it started)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / tick


def settle(pgid: int, idle: float = 0.05, timeout: float = 120.0) -> float:
    """Wait until the server has gone quiet: under ``idle`` of a core over a second. MLflow 3's server answers
    ``/health`` while its job runner and seven huey consumers are still starting (~20 s of both cores on a
    2-core machine): timing a training beside that measures MLflow's start-up, not the logging. Returns the
    seconds waited (also on stderr)."""
    if not Path("/proc/self/stat").exists():
        return 0.0
    start = time.monotonic()
    used = _group_cpu_seconds(pgid)
    while time.monotonic() - start < timeout:
        time.sleep(1.0)
        now = _group_cpu_seconds(pgid)
        if now - used < idle:
            break
        used = now
    waited = time.monotonic() - start
    print(f"mlflow server settled after {waited:.0f}s", file=sys.stderr)
    return waited


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
