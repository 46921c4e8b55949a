"""Time a workload under several modes, each run in a fresh process, alternating A B C A B C ...

A workload is a Python script that takes ``--mode NAME``, does its set-up, times only the part being compared
(e.g. the training call) and prints, as its last line of standard output, a JSON object with at least
``{"seconds": <float>}`` (other keys are kept and shown, e.g. "per_fit_ms").

    python benchmarks/runner.py benchmarks/sklearn_overhead.py --modes bare,autolog,mlflow --repeats 7
    python benchmarks/runner.py benchmarks/torch_loop.py --modes bare,autolog -- --steps 500

Options may come before or after the script; everything after ``--`` is passed to the script unchanged.

prints the median of each mode, the ratio of each mode's median to the first mode's with a 95 % bootstrap interval
(the runs of each mode resampled, 2,000 times, seeded), the median of the paired ratios (each run over the baseline
run of the same round), and a Markdown table that can be pasted into RESULTS.md (``--markdown FILE`` appends it with
the command line; ``--raw FILE`` keeps every run's JSON). On a shared machine whose speed drifts between processes,
the interval says how far a median ratio can be trusted: a target is shown only when the interval lies under it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_once(script: str, mode: str, extra: list[str], env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, script, "--mode", mode, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    raise SystemExit(f"{' '.join(cmd)} printed no JSON result line:\n{proc.stdout[-2000:]}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script")
    parser.add_argument("--modes", required=True, help="comma-separated; the first is the baseline")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per mode (alternated)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (page cache, imports)")
    parser.add_argument("--markdown", help="append the result table to this file")
    parser.add_argument("--raw", help="write every run's result (JSON, by mode and round) to this file")
    parser.add_argument("--title", default=None)
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.extra = extra
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    compile_bytecode()

    for _ in range(args.warmup):
        for mode in modes:
            run_once(args.script, mode, extra, env)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    started = time.time()
    for i in range(args.repeats):
        for mode in modes if i % 2 == 0 else list(reversed(modes)):  # A B C, C B A: no mode always goes first
            results[mode].append(run_once(args.script, mode, extra, env))
            print(f"  round {i + 1}/{args.repeats} {mode}: {results[mode][-1]['seconds']:.4f}s", file=sys.stderr)
    table = render(args, modes, results, time.time() - started)
    print(table)
    if args.raw:
        Path(args.raw).write_text(json.dumps({"argv": argv, "results": results}, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        with Path(args.markdown).open("a", encoding="utf-8") as fh:
            fh.write(table + "\n")
    return 0


def compile_bytecode() -> None:
    """Write autolog's bytecode once, as an install does. Where ``PYTHONDONTWRITEBYTECODE`` is set (this machine's
    environment sets it) an editable install never gets any, so each fresh process compiled autolog's modules from
    source, some inside the timed part (the store's modules, first imported on the writer thread: ~10 ms of
    compiling holding the GIL in the torch loop), while the frameworks' modules load from the bytecode pip wrote."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "autolog"), quiet=1)


def render(args: argparse.Namespace, modes: list[str], results: dict[str, list[dict[str, float]]], took: float) -> str:
    base_secs = [r["seconds"] for r in results[modes[0]]]
    base = statistics.median(base_secs)
    extra_keys = sorted({k for rs in results.values() for r in rs for k in r if k != "seconds"})
    head = [
        "mode",
        "median s",
        "min s",
        "max s",
        f"ratio to {modes[0]}",
        "95 % interval",
        "median paired ratio",
        *(f"median {k}" for k in extra_keys),
    ]
    lines = [
        f"### {args.title or Path(args.script).stem}",
        "",
        f"`python benchmarks/runner.py {args.script} --modes {args.modes}"
        + f" --repeats {args.repeats} --warmup {args.warmup}"
        + (f" -- {' '.join(args.extra)}`" if args.extra else "`"),
        f"({args.repeats} fresh processes per mode, alternated; {machine()}; took {took:.0f}s)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for mode in modes:
        secs = [r["seconds"] for r in results[mode]]
        med = statistics.median(secs)
        cells = [mode, f"{med:.4f}", f"{min(secs):.4f}", f"{max(secs):.4f}", f"{med / base:.3f}"]
        if mode == modes[0]:
            cells += ["", ""]
        else:
            lo, hi = ratio_interval(base_secs, secs)
            paired = [m / b for b, m in zip(base_secs, secs, strict=False)]
            cells += [f"{lo:.3f} to {hi:.3f}", f"{statistics.median(paired):.3f}"]
        for key in extra_keys:
            vals = [r[key] for r in results[mode] if key in r]
            cells.append(f"{statistics.median(vals):.4g}" if vals else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def ratio_interval(base: list[float], other: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95 % percentile-bootstrap interval of median(other) / median(base), each list resampled on its own."""
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(other, k=len(other))) / statistics.median(rng.choices(base, k=len(base)))
        for _ in range(rounds)
    )
    return ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]


if __name__ == "__main__":
    raise SystemExit(main())
