"""Instructions executed by a workload's timed part, per thread, counted by valgrind's callgrind: a measure this
machine's speed drift does not move (the same run counts the same to within a fraction of a percent), where fresh
processes timed here spread by ±10 %.

Each mode runs once, in a fresh process, under ``valgrind --tool=callgrind --instr-atstart=no``; the workload switches
counting on right before its timed part and off right after it (``benchmarks/_counting.py``). The training thread
is the process's first thread; "other threads" adds up the rest (autolog's writer; the framework's own threads).

    python benchmarks/instructions.py benchmarks/torch_loop.py --modes bare,autolog --per 500 -- --steps 500

Instructions are not time: a cache miss or a wait for the GIL costs time and no instruction, so a ratio here is a
floor under the time ratio, not the time ratio itself. Needs valgrind (``apt-get install valgrind``); a callgrind
run is ~50 times slower than the workload itself.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runner


def count(script: str, mode: str, extra: list[str], out: Path) -> dict[str, int]:
    """{'training': instructions of the first thread, 'other': of the other threads} in the counted part."""
    prefix = out / f"cg.{mode}"
    cmd = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={prefix}.%p", sys.executable, script, "--mode", mode, *extra,
    ]  # fmt: skip
    env = {**os.environ, "AUTOLOG_BENCH_CALLGRIND": "1", "PYTHONHASHSEED": "0"}  # the same dict layouts each run
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: valgrind failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    totals: dict[str, int] = {"training": 0, "other": 0}
    for path in sorted(out.glob(f"cg.{mode}.*-*")):
        # "totals:" (callgrind writes "summary: 0" when counting started switched off)
        found = re.findall(r"^totals:\s*(\d+)", path.read_text(errors="replace"), re.MULTILINE)
        if found:
            totals["training" if path.name.endswith("-01") else "other"] += int(found[-1])
    if not totals["training"]:
        raise SystemExit(f"{mode}: no per-thread counts found under {out}")
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script")
    parser.add_argument("--modes", required=True, help="comma-separated; the first is the baseline")
    parser.add_argument("--per", type=float, default=1.0, help="divide counts by this (steps or fits timed)")
    parser.add_argument("--unit", default="step", help="what --per counts, for the table's header")
    parser.add_argument("--jobs", type=int, default=2, help="modes counted at once")
    parser.add_argument("--keep", help="keep callgrind's output files in this folder (callgrind_annotate reads them)")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    modes = args.modes.split(",")
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="autolog-callgrind-"))
    out.mkdir(parents=True, exist_ok=True)
    runner.compile_bytecode()  # as the timed runs have it
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = dict(zip(modes, pool.map(lambda m: count(args.script, m, extra, out), modes), strict=True))
    base = results[modes[0]]
    unit = "" if args.per == 1 else f" per {args.unit}"
    print(f"`python benchmarks/instructions.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n")
    print(f"| mode | training thread{unit} | ratio to {modes[0]} | other threads{unit} | all threads, ratio |")
    print("|---|---:|---:|---:|---:|")
    base_all = base["training"] + base["other"]
    for mode, r in results.items():
        print(
            f"| {mode} | {r['training'] / args.per:,.0f} | {r['training'] / base['training']:.4f} "
            f"| {r['other'] / args.per:,.0f} | {(r['training'] + r['other']) / base_all:.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
