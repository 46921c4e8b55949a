"""Jupyter: a plain-torch loop in a real IPython kernel (ipykernel, started by jupyter_client as Jupyter does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
manager = pytest.importorskip("jupyter_client.manager")

import autolog  # noqa: E402

TRAIN_CELL = """
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr={lr})
for _ in range(5):
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 2, (8,)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""


def test_a_notebook_names_its_runs_and_a_cell_run_again_is_a_new_run(tmp_path: Path) -> None:
    env = {**os.environ, "JPY_SESSION_NAME": str(tmp_path / "My Experiment.ipynb")}  # what Jupyter Server sets
    km, kc = manager.start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    failures: list[str] = []

    def cell(code: str) -> None:
        reply = kc.execute_interactive(
            code,
            timeout=120,
            output_hook=lambda m: failures.append(m["content"].get("evalue", "")) if m["msg_type"] == "error" else None,
        )
        assert reply["content"]["status"] == "ok", failures

    try:
        cell(f"import torch, autolog\nautolog.enable(backend='sqlite:///{tmp_path}/runs.db')")
        cell(TRAIN_CELL.format(lr=0.1))
        cell(TRAIN_CELL.format(lr=0.01))  # the cell run again with another learning rate
    finally:
        km.shutdown_kernel(now=False)  # a clean shutdown, as Jupyter's "Shut Down Kernel"
    autolog.enable(backend=f"sqlite:///{tmp_path}/runs.db")
    found = sorted(autolog.search_runs(), key=lambda r: r.params["optimizer.lr"], reverse=True)
    assert [(r.name, r.status, r.params["optimizer.lr"]) for r in found] == [
        ("My Experiment", "FINISHED", "0.1"),
        ("My Experiment", "FINISHED", "0.01"),
    ]
    assert [len(autolog.get_metric_history(r.id, "loss")) for r in found] == [5, 5]
