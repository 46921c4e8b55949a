"""Two threads journaling at once, checked inside the process: the journal (decoded as `autolog sync` decodes it)
holds every metric call exactly once and in the writer queue's order, across segment rolls and new key ids, with
thread switches forced inside the calls. The subprocess test in test_sigkill.py checks the same promise through a
real abrupt exit; this one reads the journal directly, so a wrong answer cannot hide behind the child's output."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog import _native, replay, runs, session
from autolog import spool as spool_module
from autolog.backends.sqlite import SqliteBackend
from autolog.writer import METRICS, START

STEPS = 12_000


def _flat(records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Queue records and decoded journal records in one shape: one item per metric, one per run start."""
    out: list[tuple[Any, ...]] = []
    for record in records:
        if record[0] == METRICS:
            out.extend((record[1], record[2], key, value) for key, value in record[4].items())
        elif record[0] == START:
            out.append(("start", record[1].run_id))
    return out


def _train(name: str, ids: dict[str, str], ready: threading.Barrier) -> None:
    run = runs.new_run(name)
    ids[name] = run.id
    ready.wait()
    for i in range(STEPS):
        # a new key every 500 steps: key blobs are written in the middle of the other thread's stream
        run.log_metrics({"loss": float(i), f"k{i // 500}": i * 0.5}, step=i)


@pytest.mark.parametrize("native", [True, False], ids=["c", "python"])
def test_two_threads_journal_every_call_once_in_queue_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    if native and _native.speedups is None:
        pytest.skip("autolog._speedups is not built (or AUTOLOG_PURE_PYTHON=1): the Python case covers it")
    if not native:  # the pure-Python put and log_metrics, as without the C extension
        monkeypatch.setattr(_native, "speedups", None)
        monkeypatch.setattr(runs.ActiveRun, "log_metrics", runs._log_metrics_py)
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 1 << 17)  # 128 KiB segments: a roll every ~4,000 slots
    uri = f"sqlite:///{tmp_path / 'store' / 'runs.db'}"
    # the writer takes nothing before flush(): the whole journal and the whole queue can be compared
    autolog.enable(uri, flush_interval=3600, batch_size=1_000_000)
    writer = session.writer()
    ids: dict[str, str] = {}
    ready = threading.Barrier(2)
    threads = [threading.Thread(target=_train, args=(f"t{k}", ids, ready)) for k in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # a thread switch at almost every check: inside calls, rolls and key registrations
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    spool = writer.spool
    assert spool is not None
    assert spool.counters["unspooled"] == 0  # a call that found the other thread mid-call waited, then journaled
    assert len(spool.segments) > 2  # the segments rolled while both threads logged
    queued = _flat(list(writer._queue))
    items = list(replay._records(spool.directory, spool.jid, 0, None, {}))
    journaled = _flat([record for _, _, record in items if record is not None])
    assert len(queued) == 2 + 2 * 2 * STEPS
    assert journaled == queued  # every call once, in the order the writer will send it

    assert autolog.flush(120)  # and the writer's offsets, counted over both threads' records, confirm all of it
    assert spool.confirmed == items[-1][0]
    store = SqliteBackend(uri)
    for run_id in ids.values():
        assert [(s, v) for s, v, _ in store.get_metric_history(run_id, "loss")] == [(i, float(i)) for i in range(STEPS)]
        got = [(s, v) for block in range(STEPS // 500) for s, v, _ in store.get_metric_history(run_id, f"k{block}")]
        assert got == [(i, i * 0.5) for i in range(STEPS)]
    store.close()
