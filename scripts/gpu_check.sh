#!/usr/bin/env bash
# The checks that need a CUDA device, in one run (CI has none): the no-added-sync tests, the C extension built for
# the machine's Python, and the plain-loop and Lightning benchmarks on that machine, GPU and CPU.
# Usage on a GPU machine whose python3 holds torch, lightning, scikit-learn, wrapt and pytest:
#   OUT=/some/dir bash scripts/gpu_check.sh [REPEATS]   (5 by default; LIGHTNING_REPEATS=N adds Lightning, CPU)
# On the lent H100 (2026-11-26) a benchmark process took ~20 s: 5 rounds of two modes, ~3.5 minutes a benchmark.
set -uo pipefail
export PYTHONUNBUFFERED=1
repeats=${1:-5}
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
nproc; grep -m1 "model name" /proc/cpuinfo; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import sys, torch, lightning; print(sys.version.split()[0], torch.__version__, lightning.__version__)"
python3 setup.py -q build_ext --inplace 2>&1 | tail -2
python3 -c "import autolog._speedups as s; print('C extension:', s.__file__)"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/integrations/test_torch_cuda.py tests/core/test_speedups.py \
    2>&1 | tee "$out/tests.log"
run() {  # name, runner arguments...
    local name=$1; shift
    timeout 260 python3 benchmarks/runner.py --raw "$out/$name.json" "$@" 2>&1 | tee "$out/$name.md"
}
run torch_gpu benchmarks/torch_loop.py --modes bare,autolog --repeats "$repeats" --warmup 0 -- --device cuda
run torch_cpu benchmarks/torch_loop.py --modes bare,autolog --repeats "$repeats" --warmup 0
if [ "${LIGHTNING_REPEATS:-0}" -gt 0 ]; then
    run lightning_cpu benchmarks/lightning_fit.py --modes none,autolog --repeats "$LIGHTNING_REPEATS" --warmup 1
fi
