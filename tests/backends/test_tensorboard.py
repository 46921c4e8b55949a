"""The TensorBoard backend, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

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
