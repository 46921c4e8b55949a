"""The TensorBoard backend, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def _load(directory: Path) -> EventAccumulator:
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_hparams_and_one_directory_per_run(tmp_path: Path) -> None:
    autolog.enable(backend=f"tensorboard:{tmp_path / 'tb'}", flush_interval=0.05)
    ids = []
    for i in range(2):
        with autolog.start_run(f"trial {i}", experiment="tb-exp") as run:
            autolog.log_params({"lr": 0.1 * (i + 1), "optimizer": "sgd", "nesterov": True})
            for step in range(50):
                autolog.log_metrics({"loss": 1.0 / (step + 1) + i, "acc": step / 50}, step=step)
        ids.append(run.id)
    assert autolog.flush(10)
    run_dirs = sorted(p for p in (tmp_path / "tb" / "tb-exp").iterdir())
    assert [p.name for p in run_dirs] == [f"trial_0_{ids[0][:8]}", f"trial_1_{ids[1][:8]}"]
    for i, directory in enumerate(run_dirs):
        acc = _load(directory)
        assert set(acc.Tags()["scalars"]) == {"loss", "acc"}
        loss = acc.Scalars("loss")
        assert [e.step for e in loss] == list(range(50))
        assert [e.value for e in loss] == pytest.approx([1.0 / (s + 1) + i for s in range(50)], rel=1e-6)
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hp = start.session_start_info.hparams
        assert hp["lr"].number_value == pytest.approx(0.1 * (i + 1))
        assert hp["optimizer"].string_value == "sgd" and hp["nesterov"].bool_value is True
        end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
        assert end.session_end_info.status == 1  # STATUS_SUCCESS


def test_writing_a_run_does_not_import_tensorflow(tmp_path: Path) -> None:
    """TensorFlow is not needed, and is not imported even where it is installed: TensorBoard's ``EventFileWriter``
    made its directory through ``tensorboard.compat.tf``, which imports all of TensorFlow (seconds, memory, its banner
    on stderr). A fresh process, since this one may have imported TensorFlow already; the files are read back here."""
    code = textwrap.dedent(
        f"""
        import sys
        import autolog
        autolog.enable(backend={f"tensorboard:{tmp_path / 'tb'}"!r}, sync=True)
        with autolog.start_run("no-tf", experiment="e"):
            autolog.log_params({{"lr": 0.1}})
            autolog.log_metrics({{"loss": 0.5}}, step=0)
        print("tensorflow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
    (directory,) = (tmp_path / "tb" / "e").iterdir()
    acc = _load(directory)
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(0, 0.5)]
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")
