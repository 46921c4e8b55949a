"""scikit-learn overhead: 20 ``LogisticRegression(C=...)`` fits on 2,000 x 64 rows, models logged.

Modes: ``bare`` (no logging), ``autolog`` (``autolog.enable()`` into SQLite in a temp dir, training metrics and
models on, the end of the timed part waits for the store), ``autolog_lean`` (the same with
``training_metrics=False``), ``autolog_off`` (a control: autolog enabled into the same store with the sklearn
integration left alone, ``disable_for=["sklearn"]``: the process's cost of autolog being there, no fit logged),
``mlflow`` (``mlflow.sklearn.autolog(log_models=True)``
into a SQLite tracking store in a temp dir). One untimed warm-up fit first (MLflow creates its database then;
autolog's is created when the warm-up run is written, by the ``flush()`` after it). Also reported: ``enable_ms``
(``autolog.enable()`` / ``mlflow.sklearn.autolog()`` with sklearn imported), ``first_fit_ms`` (the first fit after
it, which patches the class on first use) and, for autolog, ``first_flush_ms`` (writing that first run: opening the
store) and ``flush_ms`` (the final flush alone, inside ``seconds``: the writer's share of the 20 runs).

    python benchmarks/runner.py --modes bare,autolog,mlflow --repeats 5 benchmarks/sklearn_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _counting

FITS = 20
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread: stable timings on a shared machine, the same in every mode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("bare", "autolog", "autolog_lean", "autolog_off", "mlflow"), required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=2000, n_features=64, n_informative=16, random_state=0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sklearn-"))
    os.chdir(tmp)
    if args.mode.startswith("autolog"):
        import autolog
    elif args.mode == "mlflow":
        import mlflow
        import mlflow.sklearn
    t0 = time.perf_counter()
    if args.mode.startswith("autolog"):
        lean = args.mode == "autolog_lean"
        off = ["sklearn"] if args.mode == "autolog_off" else None
        autolog.enable(backend=f"sqlite:///{tmp / 'runs.db'}", training_metrics=not lean, disable_for=off)
    elif args.mode == "mlflow":
        mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        mlflow.sklearn.autolog(log_models=True, silent=True)
    enable_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    LogisticRegression(C=1.0, max_iter=200).fit(x, y)  # warm-up, untimed in "seconds"
    first_fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if args.mode.startswith("autolog"):
        autolog.flush()  # the store is created here, once: not a per-fit cost
    first_flush_s = time.perf_counter() - t0

    cs = np.logspace(-2, 2, FITS)
    _counting.start()
    t0 = time.perf_counter()
    for c in cs:
        LogisticRegression(C=float(c), max_iter=200).fit(x, y)
    t1 = time.perf_counter()
    if args.mode.startswith("autolog"):
        autolog.flush()
    seconds = time.perf_counter() - t0
    _counting.stop()
    flush_s = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "seconds": seconds,
                "per_fit_ms": seconds / FITS * 1e3,
                "enable_ms": enable_s * 1e3,
                "first_fit_ms": first_fit_s * 1e3,
                **({"first_flush_ms": first_flush_s * 1e3} if args.mode.startswith("autolog") else {}),
                # the final flush alone: the writer's share, done while the fits' thread waits for it
                **({"flush_ms": flush_s * 1e3} if args.mode.startswith("autolog") else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
