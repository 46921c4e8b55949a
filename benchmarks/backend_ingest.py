"""Sustained ingest per backend: metrics per second from the first log call to the end of the flush.

    python benchmarks/backend_ingest.py                 # every backend, fresh process each, markdown table
    python benchmarks/backend_ingest.py --mode jsonl    # one backend (prints a JSON line: runner.py-compatible)

Each mode logs ``--metrics`` values (10 keys per ``log_metrics`` call, one step per call) into one run through the
real async writer, then ``flush()``es. The MLflow HTTP mode talks to a real ``mlflow server`` started here
(SQLite store), over one ``log_batch`` request per 1,000 metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = ["sqlite", "mlflow-http", "mlflow-sqlite", "tensorboard", "jsonl"]
DEFAULT_METRICS = {"sqlite": 500_000, "mlflow-http": 50_000, "mlflow-sqlite": 50_000}


def uri_for(mode: str, tmp: Path, url: str | None) -> str:
    return {
        "sqlite": f"sqlite:///{tmp / 'runs.db'}",
        "mlflow-http": f"mlflow+{url}",
        "mlflow-sqlite": f"mlflow+sqlite:///{tmp / 'mlflow.db'}",
        "tensorboard": f"tensorboard:{tmp / 'tb'}",
        "jsonl": f"jsonl:{tmp / 'jsonl'}",
    }[mode]


def one(mode: str, n: int, url: str | None) -> dict[str, float]:
    import autolog
    from autolog import session

    tmp = Path(tempfile.mkdtemp(prefix="autolog-ingest-"))
    autolog.enable(backend=uri_for(mode, tmp, url), shutdown_timeout=600)
    with autolog.start_run("warm-up"):  # opens the store (MLflow: migrations, the experiment) outside the timing
        autolog.log_metric("w", 0.0)
    assert autolog.flush(600)
    keys = [f"metric_{i}" for i in range(10)]
    with autolog.start_run("ingest") as run:
        t0 = time.perf_counter()
        for step in range(n // 10):
            run.log_metrics(dict.fromkeys(keys, step * 0.5), step)
        assert autolog.flush(600)
        seconds = time.perf_counter() - t0
    dropped = session.writer().dropped()
    assert not dropped, dropped
    autolog.disable()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"seconds": seconds, "metrics": float(n), "metrics_per_s": n / seconds}


def drive(args: argparse.Namespace) -> None:
    from _mlflow_server import mlflow_server
    from runner import compile_bytecode

    compile_bytecode()  # as runner.py does: autolog's modules load from bytecode, as in an install
    results: dict[str, list[dict[str, float]]] = {m: [] for m in args.modes}
    needs_server = "mlflow-http" in args.modes
    with mlflow_server() if needs_server else contextlib.nullcontext("") as url:
        for i in range(args.repeats):
            for mode in args.modes if i % 2 == 0 else list(reversed(args.modes)):
                n = args.metrics or DEFAULT_METRICS.get(mode, 200_000)
                cmd = [sys.executable, __file__, "--mode", mode, "--metrics", str(n)]
                cmd += ["--mlflow-url", url] if url else []
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                results[mode].append(json.loads(out.strip().splitlines()[-1]))
                print(f"  {mode}: {results[mode][-1]['metrics_per_s']:,.0f} metrics/s", file=sys.stderr)
    print(f"| backend | metrics logged | seconds (median of {args.repeats}) | metrics / s |")
    print("|---|---:|---:|---:|")
    for mode in args.modes:
        secs = statistics.median(r["seconds"] for r in results[mode])
        n = results[mode][0]["metrics"]
        print(f"| {mode} | {n:,.0f} | {secs:.2f} | {n / secs:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--modes", type=lambda s: s.split(","), default=MODES)
    parser.add_argument("--metrics", type=int, default=0, help="values per mode (default: per backend)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlflow-url")
    args = parser.parse_args()
    if args.mode is None:
        drive(args)
        return
    n = args.metrics or DEFAULT_METRICS.get(args.mode, 200_000)
    print(json.dumps(one(args.mode, n, args.mlflow_url)))


if __name__ == "__main__":
    main()
