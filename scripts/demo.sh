#!/usr/bin/env bash
# Set up a virtual environment with the demo's frameworks, train a few real models with autologging on
# (into the embedded default store ./autolog-runs/runs.db), and print the runs table.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AUTOLOG_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[demo]"
"$VENV/bin/python" examples/demo.py
