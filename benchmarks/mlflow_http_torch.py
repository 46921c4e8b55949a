"""A plain PyTorch loop logging its loss every step to an MLflow tracking server: autolog vs MLflow's own logging.

    python benchmarks/mlflow_http_torch.py              # starts an mlflow server, runs every mode, markdown table
    python benchmarks/mlflow_http_torch.py --mode bare  # one timed run (a JSON line: runner.py-compatible;
                                                        # non-bare modes need --mlflow-url)

Workload: MLP 64 -> 128 -> 2, batch 64, 2,000 SGD steps on synthetic data, CPU. Modes:
- ``bare``: no logging;
- ``autolog``: ``autolog.enable(backend="mlflow+<url>")`` and nothing else, as in ``torch_loop.py``: the loss (from
  the loss function) and the learning rate are logged at each optimizer step, the tensor read by the writer thread
  (no ``.item()`` in the loop). (Until 2026-11-26 this mode also logged the loss by hand, three values a step.)
- ``mlflow-sync``: ``mlflow.log_metric("loss", loss.item(), step)`` — one HTTP request per step;
- ``mlflow-async``: the same with ``synchronous=False`` (MLflow's own background queue), flushed at the end.
Timed: the training loop (``seconds``: what the user waits for while training) and, beside it, the loop plus the
final flush (every value on the server). Imports and server start-up are not timed. ``--pin`` gives the server a
core of its own, as a remote server would have, and the training processes the rest (their threads, autolog's
writer included, share those).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = ["bare", "autolog", "mlflow-sync", "mlflow-async"]


def train(mode: str, steps: int, url: str | None) -> dict[str, float]:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(steps, 64, 64)
    y = torch.randint(0, 2, (steps, 64))
    log = None
    if mode == "autolog":
        import autolog

        autolog.enable(backend=f"mlflow+{url}", experiment="bench-torch", shutdown_timeout=600)
        run_cm = autolog.start_run("autolog")
        run = run_cm.__enter__()
        run.log_metrics({"warmup": 0.0}, 0)  # the writer opens the store and sends a first batch, untimed
        assert autolog.flush(600)  # (the MLflow modes likewise connect and create their run before the loop)
        # nothing else: autologging (joined to this run) logs the loss and the learning rate at each step
    elif mode.startswith("mlflow"):
        import mlflow

        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("bench-torch")
        mlflow.start_run(run_name=mode)
        sync = mode == "mlflow-sync"

        def log_mlflow(values: dict[str, torch.Tensor], step: int) -> None:
            mlflow.log_metric("loss", values["loss"].item(), step=step, synchronous=sync)

        log = log_mlflow  # type: ignore[assignment]
    loss_fn = torch.nn.functional.cross_entropy
    t0 = time.perf_counter()
    for step in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x[step]), y[step])
        loss.backward()
        opt.step()
        if log is not None:
            log({"loss": loss}, step)
    loop = time.perf_counter() - t0
    if mode == "autolog":
        import autolog

        assert autolog.flush(600)
    elif mode == "mlflow-async":
        import mlflow

        mlflow.flush_async_logging()
    seconds = time.perf_counter() - t0
    if mode == "autolog":
        run_cm.__exit__(None, None, None)
    elif mode.startswith("mlflow"):
        import mlflow

        mlflow.end_run()
    return {"seconds": loop, "with_flush": seconds}


def drive(args: argparse.Namespace) -> None:
    from _mlflow_server import mlflow_server, pin
    from runner import compile_bytecode

    compile_bytecode()  # as runner.py does: autolog's modules load from bytecode, as in an install
    server_cpus = pin()[0] if args.pin else None
    results: dict[str, list[float]] = {m: [] for m in args.modes}
    flushed: dict[str, list[float]] = {m: [] for m in args.modes}
    with mlflow_server(cpus=server_cpus) as url:
        for i in range(args.repeats):
            for mode in args.modes if i % 2 == 0 else list(reversed(args.modes)):
                cmd = [sys.executable, __file__, "--mode", mode, "--steps", str(args.steps), "--mlflow-url", url]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                got = json.loads(out.strip().splitlines()[-1])
                results[mode].append(got["seconds"])
                flushed[mode].append(got["with_flush"])
                print(f"  round {i + 1} {mode}: {results[mode][-1]:.3f}s", file=sys.stderr)
    base = statistics.median(results[args.modes[0]])
    print(f"| mode | training loop s (median of {args.repeats}) | ratio to {args.modes[0]} | loop + final flush s |")
    print("|---|---:|---:|---:|")
    for mode in args.modes:
        med = statistics.median(results[mode])
        print(f"| {mode} | {med:.3f} | {med / base:.3f} | {statistics.median(flushed[mode]):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--modes", type=lambda s: s.split(","), default=MODES)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlflow-url")
    parser.add_argument("--pin", action="store_true", help="the server on its own core (see _mlflow_server.pin)")
    args = parser.parse_args()
    if args.mode is None:
        drive(args)
        return
    print(json.dumps(train(args.mode, args.steps, args.mlflow_url)))


if __name__ == "__main__":
    main()
