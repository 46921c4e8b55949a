"""The writer: per-run order under several producers, flush by size and by interval, the full-queue policy."""

from __future__ import annotations

import threading
import time

import pytest

import autolog
from autolog import runs, session
from autolog.backends.base import Backend, Limits
from autolog.backends.memory import MemoryBackend
from autolog.records import Batch
from autolog.writer import Writer, split


def test_per_run_order_with_several_producer_threads() -> None:
    backend = MemoryBackend()
    autolog.enable(backend=backend, batch_size=37, flush_interval=0.01)
    n, threads = 3000, 4
    run_ids: list[str] = [""] * threads

    def produce(i: int) -> None:
        with autolog.start_run(f"producer-{i}") as run:
            run_ids[i] = run.id
            for step in range(n):
                run.log_metrics({"x": float(step), "y": float(-step)}, step)

    workers = [threading.Thread(target=produce, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert autolog.flush(30)
    for run_id in run_ids:
        for key, sign in (("x", 1), ("y", -1)):
            history = backend.get_metric_history(run_id, key)
            assert [s for s, _, _ in history] == list(range(n))
            assert [v for _, v, _ in history] == [sign * float(s) for s in range(n)]
        assert backend.get_run(run_id).status == "FINISHED"
    assert backend.writes > 1  # it really was written in several batches


def test_flush_by_size_wakes_the_writer_before_the_interval() -> None:
    backend = MemoryBackend()
    autolog.enable(backend=backend, batch_size=10, flush_interval=60)
    run = runs.new_run("size")
    for step in range(25):
        run.log_metrics({"m": step}, step)
    deadline = time.monotonic() + 10
    while len(backend.history.get((run.id, "m"), [])) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(backend.history[(run.id, "m")]) >= 10  # written long before the 60 s interval


def test_flush_by_interval_writes_a_small_batch() -> None:
    backend = MemoryBackend()
    autolog.enable(backend=backend, batch_size=10_000, flush_interval=0.05)
    run = runs.new_run("interval")
    run.log_metrics({"m": 1.0}, 0)
    deadline = time.monotonic() + 10
    while (run.id, "m") not in backend.history and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.history[(run.id, "m")][0][:2] == (0, 1.0)


class BlockingBackend(Backend):
    """A real backend whose write blocks until released (models a hung store)."""

    uri = "blocking:"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.inner = MemoryBackend()

    def write(self, batch: Batch) -> None:
        self.release.wait()
        self.inner.write(batch)


def test_full_queue_drop_policy_counts_every_dropped_record() -> None:
    backend = BlockingBackend()
    autolog.enable(backend=backend, max_queue=50, queue_full="drop", batch_size=10, silent=True)
    run = runs.new_run("full")
    for step in range(500):
        run.log_metrics({"m": step}, step)
    dropped = session.writer().dropped()["queue_full"]
    backend.release.set()
    assert autolog.flush(10)
    stored = len(backend.inner.history[(run.id, "m")])
    assert dropped > 0
    assert stored + dropped == 500  # nothing lost silently


def test_full_queue_block_policy_waits_for_room_then_loses_nothing() -> None:
    backend = BlockingBackend()
    autolog.enable(backend=backend, max_queue=20, queue_full="block", queue_full_timeout=30, batch_size=5)
    run = runs.new_run("block")
    threading.Timer(0.3, backend.release.set).start()
    t0 = time.monotonic()
    for step in range(200):
        run.log_metrics({"m": step}, step)
    waited = time.monotonic() - t0
    assert autolog.flush(10)
    assert [s for s, _, _ in backend.inner.history[(run.id, "m")]] == list(range(200))
    assert waited >= 0.25  # the producer really was held back until the backend moved
    assert session.writer().dropped() == {}


def test_block_policy_gives_up_after_its_timeout_and_counts() -> None:
    backend = BlockingBackend()
    autolog.enable(backend=backend, max_queue=5, queue_full="block", queue_full_timeout=0.05, silent=True)
    run = runs.new_run("give-up")
    for step in range(40):
        run.log_metrics({"m": step}, step)
    assert session.writer().dropped()["queue_full"] >= 30
    backend.release.set()


class FlakyBackend(MemoryBackend):
    def __init__(self, failures: int) -> None:
        super().__init__("flaky:")
        self.failures = failures

    def write(self, batch: Batch) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("store unavailable")  # a fault injected in a test backend of our own
        super().write(batch)


def test_backend_errors_are_retried_until_they_succeed() -> None:
    backend = FlakyBackend(failures=3)
    autolog.enable(backend=backend, max_retries=5)
    run = runs.new_run("flaky")
    run.log_metrics({"m": 1.0}, 0)
    assert autolog.flush(10)
    assert backend.history[(run.id, "m")][0][:2] == (0, 1.0)
    assert session.writer().counters["retried"] == 3


def test_backend_that_stays_down_is_counted_as_dropped() -> None:
    backend = FlakyBackend(failures=10**9)
    autolog.enable(backend=backend, max_retries=1, silent=True, spool=False)  # with the spool they wait instead
    run = runs.new_run("down")
    run.log_metrics({"a": 1.0, "b": 2.0}, 0)
    assert autolog.flush(10)
    assert session.writer().dropped()["backend_error"] >= 2
    assert "backend error" in (session.drop_report() or "")


def test_flush_times_out_while_the_backend_blocks() -> None:
    backend = BlockingBackend()
    autolog.enable(backend=backend)
    runs.new_run("hung").log_metrics({"m": 1.0}, 0)
    t0 = time.monotonic()
    assert autolog.flush(0.2) is False
    assert time.monotonic() - t0 < 2
    backend.release.set()
    assert autolog.flush(10) is True


def test_split_respects_declared_limits_and_keeps_order() -> None:
    writer = Writer(MemoryBackend, sync=True)
    run = runs.new_run("unused")  # only for an id
    records = [("m", run.id, step, 0.0, {f"k{j}": float(step) for j in range(7)}) for step in range(30)]
    batch = writer._build(records)
    limits = Limits(max_records_per_write=50, max_params_per_write=3)
    batch[0].params = {f"p{i}": "v" for i in range(8)}
    parts = split(batch, limits)
    assert all(sum(len(r.metrics) + len(r.params) for r in part) <= 50 for part in parts)
    assert all(len(r.params) <= 3 for part in parts for r in part)
    metrics = [m for part in parts for r in part for m in r.metrics]
    assert metrics == batch[0].metrics  # every metric, once, in order
    assert {k for part in parts for r in part for k in r.params} == {f"p{i}" for i in range(8)}


def test_sync_mode_writes_on_the_calling_thread(memory_store: MemoryBackend) -> None:
    run = runs.new_run("sync")
    run.log_metrics({"m": 3.0}, 7)
    assert memory_store.history[(run.id, "m")][0][:2] == (7, 3.0)  # no flush needed
    assert session.writer()._thread is None


@pytest.mark.parametrize("policy", ["block", "drop"])
def test_invalid_and_valid_queue_policies(policy: str) -> None:
    autolog.enable(backend="memory:", queue_full=policy)
    assert session.options().queue_full == policy


def test_model_metadata_json_is_encoded_once_per_content_and_types_are_kept() -> None:
    import json

    from autolog import models

    meta = {"flavor": "sklearn", "loader": "m:load", "n": 1, "none": None}
    assert models.meta_json(meta) == json.dumps(meta, indent=2).encode()
    assert models.meta_json(dict(meta)) is models.meta_json(meta)  # cached
    assert models.meta_json({**meta, "x": 0.5}) == json.dumps({**meta, "x": 0.5}, indent=2).encode()
    assert json.loads(models.meta_json({**meta, "n": True}))["n"] is True  # True == 1, yet not the same text
    assert json.loads(models.meta_json({**meta, "n": 1.0}))["n"] == 1.0
    assert models.meta_json({**meta, "x": -0.0}) != models.meta_json({**meta, "x": 0.0})  # equal keys, not texts
    odd = {"flavor": "x", "shape": [1, 2], "path": models.Path("/a")}  # not plain: encoded as before
    assert models.meta_json(odd) == json.dumps(odd, indent=2, default=str).encode()
