"""Instruction counting around a workload's timed part, when it runs under valgrind's callgrind.

``benchmarks/instructions.py`` starts a workload under ``valgrind --tool=callgrind --instr-atstart=no``; the workload
calls ``start()`` right before its timed part and ``stop()`` right after it, which switch callgrind's counting on and
off (``callgrind_control``). Outside valgrind both do nothing, so the workloads time as before.
"""

from __future__ import annotations

import os
import subprocess

_UNDER_CALLGRIND = os.environ.get("AUTOLOG_BENCH_CALLGRIND") == "1"


def _control(flag: str) -> None:
    if _UNDER_CALLGRIND:
        subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())], check=True, capture_output=True)


def start() -> None:
    _control("on")


def stop() -> None:
    _control("off")
