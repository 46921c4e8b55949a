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

The library's own ``fit`` is timed too, from inside whatever wraps it (``LogisticRegression.fit`` is replaced, before
any patching, by a function that times the original): ``fit_ms`` is its mean over the 20 fits, and
``outside_ms`` is the rest of ``seconds`` a fit, the time spent around the library's fit (autolog's or MLflow's
work before and after it, the final flush included; in ``bare`` only the timer's own). Fresh processes on this
machine spread by ±20 %, which buries a 2 ms difference between two modes' totals; ``outside_ms`` is measured
inside each process, so it does not carry that spread. What it leaves out is any slowing of the fit itself, which
``fit_ms`` of the modes compares, and ``--alternate ROUNDS`` measures in one process (blocks of 20 fits through
autolog and blocks calling the library's fit directly, alternated: ``fit_slower_ms``).

    python benchmarks/runner.py --modes bare,autolog,mlflow --repeats 5 benchmarks/sklearn_overhead.py
    python benchmarks/sklearn_overhead.py --mode autolog --alternate 40
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _counting

FITS = 20
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread: stable timings on a shared machine, the same in every mode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("bare", "autolog", "autolog_lean", "autolog_off", "mlflow"), required=True)
    parser.add_argument(
        "--alternate",
        type=int,
        metavar="ROUNDS",
        help="autolog only: in this one process, ROUNDS pairs of blocks of 20 fits, one through autolog's patched "
        "fit, one calling the library's fit directly, alternated; prints the library fit's mean time in each kind "
        "of block (does it run slower after autolog's work?) and autolog's time around it",
    )
    args = parser.parse_args()
    if args.alternate and args.mode != "autolog":
        parser.error("--alternate compares autolog's patched fit with the library's own: use it with --mode autolog")
    warnings.simplefilter("ignore")
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=2000, n_features=64, n_informative=16, random_state=0)
    inner = _time_library_fit(LogisticRegression)
    timed_fit = LogisticRegression.fit  # the library's fit with its timer, before anything patches it
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
    if args.alternate:
        _alternate(args.alternate, LogisticRegression, timed_fit, cs, x, y, inner)
        return
    inner.clear()
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
                "fit_ms": sum(inner) / FITS * 1e3,
                "outside_ms": (seconds - sum(inner)) / FITS * 1e3,
            }
        )
    )


def _alternate(rounds: int, cls: Any, timed_fit: Any, cs: Any, x: Any, y: Any, inner: list[float]) -> None:
    """Blocks of FITS fits, alternately through autolog (``cls(C=c).fit``) and around it (``timed_fit`` called
    directly: the library's fit alone, no run), in one process: the drift between processes cancels out."""
    import statistics

    import autolog

    patched: list[float] = []
    raw: list[float] = []
    outside: list[float] = []
    for _ in range(rounds):
        inner.clear()
        t0 = time.perf_counter()
        for c in cs:
            cls(C=float(c), max_iter=200).fit(x, y)
        autolog.flush()
        outside.append(((time.perf_counter() - t0) - sum(inner)) / FITS * 1e3)
        patched.append(sum(inner) / FITS * 1e3)
        inner.clear()
        for c in cs:
            timed_fit(cls(C=float(c), max_iter=200), x, y)
        raw.append(sum(inner) / FITS * 1e3)
    slower = [p - r for p, r in zip(patched, raw, strict=True)]
    print(
        json.dumps(
            {
                "rounds": rounds,
                "fit_ms_patched": statistics.median(patched),
                "fit_ms_raw": statistics.median(raw),
                "fit_slower_ms": statistics.median(slower),
                "fit_slower_ms_quartiles": statistics.quantiles(slower, n=4),
                "outside_ms": statistics.median(outside),
            }
        )
    )


def _time_library_fit(cls: type) -> list[float]:
    """Replace ``cls.fit`` by a function that times the original into the returned list (done before autolog or
    MLflow patch the class, so their wrappers call it and its time is the library's fit alone)."""
    original = cls.fit  # type: ignore[attr-defined]
    times: list[float] = []
    clock = time.perf_counter

    @functools.wraps(original)  # its signature too: MLflow's autolog reads X and y by the fit's parameter names
    def fit(self: object, *args: object, **kwargs: object) -> object:
        t0 = clock()
        try:
            return original(self, *args, **kwargs)
        finally:
            times.append(clock() - t0)

    cls.fit = fit  # type: ignore[attr-defined]
    return times


if __name__ == "__main__":
    main()
