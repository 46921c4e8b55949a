"""Load: 8 processes each log 200,000 metrics into one SQLite store at once: all 1,600,000 present, none twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PROCESSES = 8
CALLS = 20_000
KEYS = 10  # 10 metrics per call: 200,000 metrics per process

CHILD = """
    import sys, time, autolog
    autolog.enable("{uri}")
    values = {{f"m{{k}}": float(k) for k in range({keys})}}
    sys.stdin.readline()                      # start together
    with autolog.start_run("load-{{}}".format(sys.argv[1])) as run:
        for step in range({calls}):
            run.log_metrics(values, step=step)
    print(run.id, flush=True)
"""


def test_eight_processes_into_one_store(tmp_path: Path) -> None:
    db = tmp_path / "store" / "runs.db"
    code = textwrap.dedent(CHILD.format(uri=f"sqlite:///{db}", keys=KEYS, calls=CALLS))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    time.sleep(1.0)  # let every interpreter import autolog before the start line
    t0 = time.monotonic()
    outs = [p.communicate("go\n", timeout=300) for p in procs]
    took = time.monotonic() - t0
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "not written" not in err and "not stored" not in err, err
    run_ids = {out.strip() for out, _ in outs}
    assert len(run_ids) == PROCESSES
    conn = sqlite3.connect(db)
    total, distinct = conn.execute(
        "SELECT count(*), count(DISTINCT run || ':' || key || ':' || step) FROM metrics"
    ).fetchone()
    assert total == PROCESSES * CALLS * KEYS == 1_600_000
    assert distinct == total  # none twice
    per_run = conn.execute(
        "SELECT r.id, count(*), min(m.step), max(m.step) FROM metrics m JOIN runs r ON r.pk = m.run GROUP BY r.id"
    ).fetchall()
    assert {row[0] for row in per_run} == run_ids
    assert all(row[1:] == (CALLS * KEYS, 0, CALLS - 1) for row in per_run), per_run
    assert not list((tmp_path / "store" / "spool").glob("*")), "every journal is confirmed and removed"
    print(f"8 x 200,000 metrics in {took:.1f}s")
