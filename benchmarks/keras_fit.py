"""Overhead of autologging one Keras ``fit`` (TensorFlow backend): bare vs autolog vs ``mlflow.tensorflow.autolog()``.

Workload: an MLP 64 -> 128 -> 2, 16 epochs, batch 64, 10% validation split, on synthetic data. Timed: ``model.fit``
alone (including, for the autologgers, what they do inside it: per-step and per-epoch logging, the end-of-run wait
for the store and the model snapshot). Each mode runs in a fresh process (see ``runner.py``):

    python benchmarks/runner.py --modes bare,autolog,mlflow --repeats 5 benchmarks/keras_fit.py

Both write into SQLite in a temporary directory, created before the timed part. Defaults otherwise: autolog logs
per-step metrics and the model; ``mlflow.tensorflow.autolog()`` logs per-epoch metrics and the model (an MLflow
model directory). ``epochs_logged`` (read back after timing) shows each logger was really on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("bare", "autolog", "mlflow"), required=True)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=16)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="autolog-bench-keras-"))
    os.chdir(workdir)

    if args.mode == "autolog":
        import autolog

        autolog.enable(backend=f"sqlite:///{workdir / 'runs.db'}")
        autolog.search_runs()  # create the store before the timed part, as for MLflow below
    elif args.mode == "mlflow":
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")  # MLflow 3 refuses new file stores
        mlflow.set_experiment("keras-bench")  # creates the database (migrations take seconds) before timing
        mlflow.tensorflow.autolog(silent=True)

    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, 64)).astype("float32")
    y = (x[:, :8].sum(axis=1) > 0).astype("int32")
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    start = time.perf_counter()
    model.fit(x, y, epochs=args.epochs, batch_size=64, validation_split=0.1, verbose=0)
    seconds = time.perf_counter() - start
    steps = args.epochs * -(-int(args.rows * 0.9) // 64)
    print(json.dumps({"seconds": seconds, "per_step_ms": 1000 * seconds / steps, "epochs_logged": logged(args.mode)}))


def logged(mode: str) -> int:
    """How many epochs the logger stored (after the timed part): proof that it was on."""
    if mode == "autolog":
        import autolog

        return len(autolog.get_metric_history(autolog.search_runs()[0].id, "loss"))
    if mode == "mlflow":
        import mlflow

        run = mlflow.last_active_run()
        return len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) if run else 0
    return 0


if __name__ == "__main__":
    main()
