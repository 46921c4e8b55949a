"""Lightning overhead: MLP 64->128->2, batch 64, 2,048 steps, ``self.log("train_loss", loss)`` each step.

Modes (each in a fresh process through the runner, alternated):
- ``none``: ``Trainer(logger=False)``, no autologging;
- ``autolog``: ``autolog.enable()`` (SQLite store in a temp dir), ``logger=False``: ours is the only logger;
- ``mlflow``: ``mlflow.pytorch.autolog()`` into a local file store (it adds its own logger);
- ``csv``: Lightning's ``CSVLogger``;
- ``null_logger``: a control, a Lightning ``Logger`` that does nothing: what Lightning itself does for any logger
  (the values turned into numbers and handed over each logging step), which ``logger=False`` skips.

Every mode uses ``log_every_n_steps=1`` so that each step's value reaches the loggers, no checkpointing, no
progress bar, no model summary. Only ``trainer.fit`` is timed.

    python benchmarks/runner.py --modes none,autolog,mlflow,csv --repeats 5 benchmarks/lightning_fit.py

``--alternate N`` (with ``--mode autolog``) times N rounds of two fits in one process instead, autolog enabled and
disabled in turn (which comes first alternates), each on a new model and trainer: a pair shares the process's
warm caches and the machine's speed of the moment, which fresh processes here do not (no-logger fits alone spread
±30 % between processes). Disabled, what autolog leaves in the process is its patches, which let each call through
after one check. Prints each round and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _counting


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True, choices=("none", "autolog", "mlflow", "csv", "null_logger"))
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--alternate", type=int, default=0, help="rounds of autolog on / off in this process")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for an opt-in to the file store
    tmp = Path(tempfile.mkdtemp(prefix="autolog-bench-"))
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    if args.mode == "autolog":
        import autolog

        autolog.enable(backend=f"sqlite:///{tmp / 'runs.db'}")
    import lightning.pytorch as L
    import torch

    if args.mode == "mlflow":
        import mlflow

        mlflow.set_tracking_uri((tmp / "mlruns").as_uri())
        mlflow.pytorch.autolog(log_models=False, checkpoint=False, silent=True)

    class MLP(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = torch.utils.data.TensorDataset(torch.randn(64 * 256, 64), torch.randint(0, 2, (64 * 256,)))
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)
    logger: Any = False
    if args.mode == "csv":
        logger = L.loggers.CSVLogger(str(tmp / "csv"))
    if args.mode == "null_logger":

        class NullLogger(L.loggers.Logger):  # type: ignore[misc]
            name, version = "null", "0"

            def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
                pass

            def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
                pass

        logger = NullLogger()
    trainer_kwargs: dict[str, Any] = {
        "max_steps": args.steps,
        "logger": logger,
        "log_every_n_steps": 1,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(tmp),
    }
    trainer = L.Trainer(**trainer_kwargs)
    if args.alternate:
        _alternate(args.alternate, lambda: (L.Trainer(**trainer_kwargs), MLP()), loader, f"sqlite:///{tmp / 'runs.db'}")
        return
    model = MLP()
    _counting.start()
    t0 = time.perf_counter()
    trainer.fit(model, loader)
    seconds = time.perf_counter() - t0
    _counting.stop()
    print(json.dumps({"seconds": seconds, "per_step_us": seconds / args.steps * 1e6}))


def _alternate(rounds: int, make: Any, loader: Any, backend: str) -> None:
    import autolog

    ratios = []
    for r in range(rounds):
        seconds = {}
        for on in (True, False) if r % 2 else (False, True):
            if on:
                autolog.enable(backend=backend)  # the same store and settings each time
            else:
                autolog.disable()
            trainer, model = make()
            t0 = time.perf_counter()
            trainer.fit(model, loader)
            seconds[on] = time.perf_counter() - t0
        autolog.flush(60)  # the round's records written before the next round is timed
        ratios.append(seconds[True] / seconds[False])
        print(f"round {r + 1}: on {seconds[True]:.3f} s, off {seconds[False]:.3f} s, ratio {ratios[-1]:.4f}")
    print(json.dumps({"median_ratio": statistics.median(ratios), "ratios": ratios}))


if __name__ == "__main__":
    main()
