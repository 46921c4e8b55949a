#!/usr/bin/env bash
# Set up a virtual environment with every framework and backend, then run the whole test suite.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AUTOLOG_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[all,dev]"
"$VENV/bin/python" -m ruff check autolog tests benchmarks examples
"$VENV/bin/python" -m mypy autolog
exec "$VENV/bin/python" -m pytest "$@"
