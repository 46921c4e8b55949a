"""What the crash-durable spool costs: per metric on the training thread, and writer throughput, spool off vs on.

    python benchmarks/runner.py --modes nospool,spool --repeats 5 benchmarks/spool_cost.py

(runner options go before the script path.) Each mode runs in a fresh process into a fresh SQLite store:

- ``ns_per_metric``: median over blocks of 1,000 ``run.log_metrics({"loss": x}, step)`` calls of the time per call,
  the writer draining between blocks (the training thread's own cost; as benchmarks/hot_path.py measures it);
  ``cpu_ns_per_metric``: the same in the training thread's CPU time (robust to preemption on a shared machine);
- ``ns_per_metric_10_keys`` / ``cpu_ns_per_metric_10_keys``: the same per metric with 10 keys per call;
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

from hot_path import throughput

import autolog


def cost(keys: int, calls: int, block: int = 1000) -> tuple[float, float]:
    """(median wall ns, median training-thread CPU ns) per metric over blocks of ``block`` calls of ``keys`` keys.

    The writer drains between blocks (untimed). The CPU figure (``time.thread_time_ns``) is the one to trust on a
    shared machine: a block that is preempted by another process inflates wall time, not the thread's CPU time.
    """
    values = {f"metric_{k}": 0.25 * k for k in range(keys)}
    walls, cpus = [], []
    perf, cpu = time.perf_counter_ns, time.thread_time_ns
    with autolog.start_run(f"{keys}-keys") as run:
        log = run.log_metrics
        step = 0
        for _ in range(calls // block):
            t0, c0 = perf(), cpu()
            for _ in range(block):
                log(values, step)
                step += 1
            c1, t1 = cpu(), perf()
            walls.append((t1 - t0) / block / keys)
            cpus.append((c1 - c0) / block / keys)
            autolog.flush(60)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("nospool", "spool"), required=True)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--metrics", type=int, default=1_000_000)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp()) / "runs.db"
    autolog.enable(f"sqlite:///{store}", spool=args.mode == "spool")
    ns, cpu_ns = cost(1, args.calls)
    ns10, cpu_ns10 = cost(10, args.calls // 10)
    t0 = time.perf_counter()
    rate, _ = throughput(args.metrics)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "ns_per_metric": round(ns, 1),
                "cpu_ns_per_metric": round(cpu_ns, 1),
                "ns_per_metric_10_keys": round(ns10, 1),
                "cpu_ns_per_metric_10_keys": round(cpu_ns10, 1),
                "metrics_per_s": round(rate),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
