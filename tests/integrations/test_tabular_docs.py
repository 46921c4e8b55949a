"""The examples in docs/tabular.md run, in one fresh process, in order."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")

DOC = Path(__file__).resolve().parents[2] / "docs" / "tabular.md"


def test_every_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 6
    script = "\n".join(
        f"def example_{i}():\n" + "".join(f"    {line}\n" for line in b.splitlines()) for i, b in enumerate(blocks)
    )
    script += "\n" + "\n".join(f"example_{i}()" for i in range(len(blocks)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.split("\n")
    assert lines[0].startswith("LogisticRegression 0.5 ['accuracy_score_test', 'training_accuracy_score'")
    assert lines[1].endswith(" 2") and lines[2] == "20" and lines[4] == "lightgbm.cv 10"
    assert lines[3] == "xgboost.cv ['test-auc-mean', 'test-auc-std', 'train-auc-mean', 'train-auc-std']"
