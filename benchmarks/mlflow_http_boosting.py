"""LightGBM (or XGBoost) training logged into a real MLflow tracking server over HTTP.

    python benchmarks/mlflow_http_boosting.py --lib lightgbm --repeats 3

Starts a throw-away ``mlflow server`` on 127.0.0.1 (SQLite store), then times ``benchmarks/tabular_boosting.py``
(400 rounds, 8,000 x 64 rows, two eval sets, two metrics, model logged) in fresh processes, alternated, through
``benchmarks/runner.py``: bare, autolog with ``backend="mlflow+http://..."``, and ``mlflow.<lib>.autolog()`` against
the same server. ``--pin`` gives the server a core of its own, as a remote server would have, and the training
processes the rest (their threads, autolog's writer included, share those).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import runner  # noqa: E402
from _mlflow_server import mlflow_server, pin  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", choices=("lightgbm", "xgboost"), default="lightgbm")
    parser.add_argument("--modes", default="bare,autolog,mlflow")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="the server on its own core (see _mlflow_server.pin)")
    args = parser.parse_args()
    server_cpus = pin()[0] if args.pin else None
    with mlflow_server(cpus=server_cpus) as url:
        return runner.main(
            [
                str(HERE / "tabular_boosting.py"),
                "--modes",
                args.modes,
                "--repeats",
                str(args.repeats),
                "--warmup",
                "0",
                "--title",
                f"{args.lib} into an MLflow server over HTTP" + (" (server on its own core)" if args.pin else ""),
                "--",
                "--lib",
                args.lib,
                "--backend",
                f"mlflow+{url}",
                "--mlflow-uri",
                url,
            ]
        )


if __name__ == "__main__":
    raise SystemExit(main())
