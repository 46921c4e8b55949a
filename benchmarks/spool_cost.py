"""What the crash-durable spool costs: per metric on the training thread, and writer throughput, spool off vs on.

    python benchmarks/runner.py --modes nospool,spool --repeats 5 benchmarks/spool_cost.py

(runner options go before the script path.) Each mode runs in a fresh process into a fresh SQLite store:

- ``ns_per_metric``: median over blocks of 1,000 ``run.log_metrics({"loss": x}, step)`` calls of the time per call,
  the writer draining between blocks (the training thread's own cost; as benchmarks/hot_path.py measures it);
- ``ns_per_metric_10_keys``: the same per metric with 10 keys per call;
- ``metrics_per_s`` and ``seconds``: 1,000,000 metrics (10 keys a call) logged as fast as possible and flushed:
  sustained ingest into SQLite, the writer confirming each batch's journal offset in the same transaction.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hot_path import per_call_cost, throughput

import autolog


def ten_key_cost(calls: int, block: int = 1000) -> float:
    values = {f"metric_{k}": 0.25 * k for k in range(10)}
    timings = []
    perf = time.perf_counter_ns
    with autolog.start_run("ten-keys") as run:
        log = run.log_metrics
        step = 0
        for _ in range(calls // block):
            t0 = perf()
            for _ in range(block):
                log(values, step)
                step += 1
            timings.append((perf() - t0) / block / 10)
            autolog.flush(60)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("nospool", "spool"), required=True)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--metrics", type=int, default=1_000_000)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp()) / "runs.db"
    autolog.enable(f"sqlite:///{store}", spool=args.mode == "spool")
    with autolog.start_run("per-call") as run:
        ns = per_call_cost(run.log_metrics, args.calls)
    ns10 = ten_key_cost(args.calls // 10)
    t0 = time.perf_counter()
    rate, _ = throughput(args.metrics)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "ns_per_metric": round(ns, 1),
                "ns_per_metric_10_keys": round(ns10, 1),
                "metrics_per_s": round(rate),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
