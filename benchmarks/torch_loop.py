"""Plain PyTorch loop overhead: MLP 64->128->2, batch 64, 2,000 steps, the loss logged each step.

Modes (run each in a fresh process through the runner, alternated):
- ``bare``: the loop alone;
- ``autolog``: ``autolog.enable()`` (SQLite store in a temp dir) and nothing else changed: the loss is captured from
  the loss module, the lr from the optimizer, at the optimizer step hook;
- ``mlflow_sync``: ``mlflow.log_metric("loss", loss.item(), step)`` each step into a local file store;
- ``mlflow_async``: the same with ``synchronous=False``;
- controls, each ``autolog`` with one part taken away: ``autolog_nohook`` (``disable_for=["torch"]``: the process
  holds autolog, its writer and store, but the loop runs unpatched), ``autolog_noloss`` (the loss functions
  unwrapped after ``enable()``: the step hook logs the learning rate only), ``autolog_nostep`` (the optimizer step
  hook removed: losses are captured into the bounded pending queue and no run starts), ``autolog_nospool``
  (``spool=False``) and ``autolog_nowriter`` (``flush_interval=1000``: the writer stays asleep until the batch fills).

    python benchmarks/runner.py --modes bare,autolog,mlflow_sync,mlflow_async --repeats 5 benchmarks/torch_loop.py

``-- --device cuda`` runs the model on a GPU (batches pinned, copied with ``non_blocking=True``).

Only the loop is timed (``"seconds"``); autolog's end of run (flush, model save) is reported apart as
``"end_seconds"``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _counting

CONTROLS: dict[str, dict[str, object]] = {
    "autolog_nohook": {"disable_for": ["torch"]},
    "autolog_noloss": {},
    "autolog_nostep": {},
    "autolog_nospool": {"spool": False},
    "autolog_nowriter": {"flush_interval": 1000.0},
}


def _take_away(mode: str) -> None:
    """The part of the torch integration a control mode runs without (private names: a diagnostic only)."""
    from autolog.integrations import torch as integration

    if mode == "autolog_noloss":
        import torch.nn.functional as F

        for name in integration._loss_names(F):
            setattr(F, name, getattr(F, name).__wrapped__)
    elif mode == "autolog_nostep":
        for handle in integration._loop.handles:
            handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True, choices=("bare", "autolog", *CONTROLS, "mlflow_sync", "mlflow_async"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--device", default="cpu", help="e.g. cuda: the model and each batch on that device")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for an opt-in to the file store
    tmp = Path(tempfile.mkdtemp(prefix="autolog-bench-"))

    import torch

    if args.mode.startswith("autolog"):
        import autolog

        autolog.enable(backend=f"sqlite:///{tmp / 'runs.db'}", **CONTROLS.get(args.mode, {}))  # type: ignore[arg-type]
        _take_away(args.mode)
    log = None
    if args.mode.startswith("mlflow"):
        import mlflow

        mlflow.set_tracking_uri((tmp / "mlruns").as_uri())
        mlflow.start_run()
        synchronous = args.mode == "mlflow_sync"

        def log(loss: torch.Tensor, step: int) -> None:
            mlflow.log_metric("loss", loss.item(), step=step, synchronous=synchronous)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = torch.utils.data.TensorDataset(torch.randn(64 * 100, 64), torch.randint(0, 2, (64 * 100,)))
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)
    device = torch.device(args.device)
    if device.type == "cuda":
        loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, pin_memory=True)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()

    step = 0
    _counting.start()
    t0 = time.perf_counter()
    while step < args.steps:
        for x, y in loader:
            if device.type != "cpu":
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if log is not None:
                log(loss, step)
            step += 1
            if step == args.steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()  # the queued kernels belong to the timed loop
    seconds = time.perf_counter() - t0
    _counting.stop()

    t1 = time.perf_counter()
    if args.mode.startswith("autolog"):
        import autolog

        autolog.end_run()
    elif log is not None:
        import mlflow

        mlflow.end_run()
    print(
        json.dumps({"seconds": seconds, "end_seconds": time.perf_counter() - t1, "per_step_us": seconds / step * 1e6})
    )


if __name__ == "__main__":
    main()
