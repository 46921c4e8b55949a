"""Two figures for the core: the cost of ``log_metrics`` on the training thread, and the writer's throughput.

    python benchmarks/hot_path.py                # both, into a SQLite store in a temp dir
    python benchmarks/hot_path.py --metrics 2000000

1. Training-thread cost: one ``run.log_metrics({"loss": x}, step)`` call, timed in blocks of 1,000 calls; the
   median block / 1,000 is the cost per logged metric. The writer thread runs meanwhile, as in real training.
   Also shown: ``autolog.log_metrics`` (the module-level call, which looks up the active run).
2. Writer throughput: N metrics logged as fast as possible (10 keys per call), then flushed; metrics per second
   from the first call to the end of the flush, i.e. sustained ingest into SQLite (WAL, one transaction a batch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import autolog


def per_call_cost(log: Callable[..., None], calls: int, block: int = 1000, drain: bool = True) -> float:
    """Median ns per call over blocks of ``block`` calls.

    drain=True: the writer empties the queue between blocks (untimed), so a block measures the training thread's
    own work. drain=False: the writer runs concurrently and competes for the GIL, so its Python share is included.
    """
    timings = []
    perf = time.perf_counter_ns
    step = 0
    for _ in range(calls // block):
        t0 = perf()
        for _ in range(block):
            log({"loss": 0.5}, step)
            step += 1
        timings.append((perf() - t0) / block)
        if drain:
            autolog.flush(60)
    return statistics.median(timings)


def throughput(total: int, keys: int = 10) -> tuple[float, float]:
    values = {f"metric_{k}": 0.25 * k for k in range(keys)}
    with autolog.start_run("throughput") as run:
        t0 = time.perf_counter()
        for step in range(total // keys):
            run.log_metrics(values, step)
        logged = time.perf_counter() - t0
        assert autolog.flush(600)
        took = time.perf_counter() - t0
    return total / took, logged / total * 1e9


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--metrics", type=int, default=1_000_000)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp()) / "runs.db"
    autolog.enable(f"sqlite:///{store}")
    with autolog.start_run("per-call") as run:
        ns = per_call_cost(run.log_metrics, args.calls)
        module_ns = per_call_cost(autolog.log_metrics, args.calls)
        concurrent_ns = per_call_cost(run.log_metrics, args.calls, drain=False)
    autolog.flush(600)
    rate, put_ns = throughput(args.metrics)
    stored = len(autolog.get_metric_history(autolog.search_runs()[0].id, "metric_3"))
    result = {
        "log_metrics_ns_per_metric": round(ns, 1),
        "autolog_log_metrics_ns": round(module_ns, 1),
        "with_writer_running_ns": round(concurrent_ns, 1),
        "writer_metrics_per_s": round(rate),
        "producer_ns_per_metric_10_keys": round(put_ns, 1),
        "stored_per_key": stored,
        "expected_per_key": args.metrics // 10,
        "dropped": autolog.session.writer().dropped(),
    }
    print(json.dumps(result))
    return 0 if stored == args.metrics // 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
