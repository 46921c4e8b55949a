"""XGBoost / LightGBM overhead: 400 rounds, 8,000 x 64 rows, two eval sets, two eval metrics, model logged.

Modes: ``bare``, ``autolog`` (``autolog.enable()`` into SQLite in a temp dir; the timed part ends after the store
has everything), ``mlflow`` (``mlflow.xgboost.autolog`` / ``mlflow.lightgbm.autolog`` with models logged into a
SQLite tracking store in a temp dir). ``--lib`` picks the library; ``--threads`` its threads (1 by default: stable
timings on a shared machine, the same in every mode). One untimed warm-up training of 5 rounds first.

    python benchmarks/runner.py --modes bare,autolog,mlflow --repeats 5 benchmarks/tabular_boosting.py -- --lib xgboost
    python benchmarks/runner.py --modes bare,autolog,mlflow --repeats 5 benchmarks/tabular_boosting.py -- --lib lightgbm
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROUNDS = 400


def _data() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=10_000, n_features=64, n_informative=24, random_state=0)
    return x[:8000], y[:8000], x[8000:], y[8000:]


def _xgboost(threads: int, rounds: int) -> None:
    import xgboost as xgb

    x, y, xv, yv = _data()
    dtrain, dvalid = xgb.DMatrix(x, y), xgb.DMatrix(xv, yv)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 6, "nthread": threads}
    xgb.train(params, dtrain, rounds, evals=[(dtrain, "train"), (dvalid, "valid")], verbose_eval=False)


def _lightgbm(threads: int, rounds: int) -> None:
    import lightgbm as lgb

    x, y, xv, yv = _data()
    train = lgb.Dataset(x, y)
    valid = lgb.Dataset(xv, yv, reference=train)
    params = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_threads": threads, "verbose": -1}
    lgb.train(params, train, rounds, valid_sets=[train, valid], valid_names=["train", "valid"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("bare", "autolog", "mlflow"), required=True)
    parser.add_argument("--lib", choices=("xgboost", "lightgbm"), default="xgboost")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", help="autolog's store (default: SQLite in a temp dir)")
    parser.add_argument("--mlflow-uri", help="MLflow's tracking URI for --mode mlflow (default: SQLite in a temp dir)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="bench-boost-"))
    os.chdir(tmp)
    train = _xgboost if args.lib == "xgboost" else _lightgbm
    __import__(args.lib)
    if args.mode == "autolog":
        import autolog

        autolog.enable(backend=args.backend or f"sqlite:///{tmp / 'runs.db'}")
    elif args.mode == "mlflow":
        import mlflow

        mlflow.set_tracking_uri(args.mlflow_uri or f"sqlite:///{tmp / 'mlflow.db'}")
        getattr(mlflow, args.lib).autolog(log_models=True, silent=True)
    train(args.threads, 5)  # warm-up: imports, database creation
    if args.mode == "autolog":
        autolog.flush()  # the warm-up run's chart and model are written before the timed training starts
    t0 = time.perf_counter()
    train(args.threads, ROUNDS)  # the training call as the user waits for it (the end of run included)
    seconds = time.perf_counter() - t0
    if args.mode == "autolog":
        autolog.flush()  # what exit would wait for: the importance chart drawn after the run ended
    print(json.dumps({"seconds": seconds, "with_flush_s": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
