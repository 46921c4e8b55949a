"""``tensorboard:<dir>`` — event files TensorBoard reads: ``tensorboard --logdir <dir>``.

One sub-directory per run, ``<dir>/<experiment>/<run name>_<id8>``: metrics as scalars per step (TensorBoard keeps
a scalar as a float32: values are rounded to it, and a finite value beyond its range reads back as +/-inf, with a
warning naming the key); params and the
run's status through the hparams plugin (written when the run ends, so every param is in one session); tags as
one text summary; artifacts as plain files under ``<run dir>/artifacts/``. Write-only: read runs back with the
store you fan out to beside it (e.g. ``backend=["sqlite:///...", "tensorboard:./tb"]``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from autolog import _errors
from autolog.backends.base import Backend, Limits
from autolog.records import FAILED, FINISHED, KILLED, Batch, RunRecords, RunStart

_UNSAFE = re.compile(r"[^\w.\-]+")
RUN_FILE = "autolog-run.json"
_FLOAT32_MAX = 3.4028234663852886e38


def _dir_name(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "_"


def _hparam_value(text: str) -> Any:
    """Params are text; the hparams plugin filters numbers and booleans better as such."""
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    return text if math.isnan(number) else number  # NaN is no use as an hparam: keep the text


class _EventFile:
    """One TensorBoard event file, written with plain file I/O and TensorBoard's own record framing.

    TensorBoard's ``EventFileWriter`` makes its directory and opens its file through ``tensorboard.compat.tf``, which
    imports all of TensorFlow when it is installed (seconds of CPU, much memory and TF's banner, on the writer thread
    of a torch or sklearn script). The file format is TensorBoard's: the same name pattern, a ``file_version`` event
    first, then one record per event (``RecordWriter``: length, CRCs, no TensorFlow). Events are written as they come
    (the writer thread is already off the training thread: no second thread) and flushed after each batch."""

    _count = itertools.count()

    def __init__(self, directory: Path) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        directory.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(self._count)}"
        self._file = (directory / name).open("wb")
        self._records = RecordWriter(self._file)
        self.add_event(Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def add_event(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _RunLog:
    def __init__(self, directory: Path, start: RunStart | None) -> None:
        self.dir = directory
        self.writer = _EventFile(directory)
        self.params: dict[str, str] = {}
        self.start_time = start.start_time if start is not None else time.time()


class TensorBoardBackend(Backend):
    limits = Limits()

    def __init__(self, uri: str) -> None:
        head, _, rest = uri.partition(":")
        if head != "tensorboard" or not rest:
            raise ValueError(f"autolog: a TensorBoard backend URI looks like tensorboard:./tb-logs, got {uri!r}")
        self.uri = uri
        self.root = Path(rest[2:] if rest.startswith("//") else rest)
        self._runs: dict[str, _RunLog] = {}
        self._lock = threading.Lock()

    def write(self, batch: Batch) -> None:
        with self._lock:
            for rec in batch:
                self._write_run(rec)

    def _run(self, rec: RunRecords) -> _RunLog:
        log = self._runs.get(rec.run_id)
        if log is None:
            directory = self._find(rec.run_id)
            if directory is None:
                s = rec.start
                experiment, name = (s.experiment, s.name) if s is not None else ("Default", rec.run_id[:8])
                directory = self.root / _dir_name(experiment) / f"{_dir_name(name)}_{rec.run_id[:8]}"
                directory.mkdir(parents=True, exist_ok=True)
                (directory / RUN_FILE).write_text(json.dumps({"run_id": rec.run_id}), encoding="utf-8")
            log = self._runs[rec.run_id] = _RunLog(directory, rec.start)
        return log

    def _find(self, run_id: str) -> Path | None:
        """The directory of a run started by another process (or before a restart)."""
        for marker in self.root.glob(f"*/*_{run_id[:8]}/{RUN_FILE}"):
            if json.loads(marker.read_text(encoding="utf-8")).get("run_id") == run_id:
                return marker.parent
        return None

    def _write_run(self, rec: RunRecords) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        log = self._run(rec)
        # every event is built before any is added: a failure leaves nothing half-written for the retry to repeat
        events = [
            Event(wall_time=ts, step=step, summary=Summary(value=[Summary.Value(tag=key, simple_value=value)]))
            for key, value, step, ts in rec.metrics
        ]
        for key, value, _, _ in rec.metrics:
            if not -_FLOAT32_MAX <= value <= _FLOAT32_MAX and not math.isnan(value):
                _warn_out_of_range(key, value)
        tags = {**(rec.start.tags if rec.start is not None else {}), **rec.tags}
        if tags:
            events.append(_text_event("tags", "\n".join(f"- **{k}**: {v}" for k, v in sorted(tags.items()))))
        for art in rec.artifacts:
            target = log.dir / "artifacts" / art.path
            target.parent.mkdir(parents=True, exist_ok=True)
            art.write(target)
        params = {**log.params, **rec.params}
        if rec.end is not None:
            events.extend(_hparams_events(params, log.start_time, rec.end.status, rec.end.end_time))
        for event in events:
            log.writer.add_event(event)
        log.params = params
        if rec.end is not None:
            log.writer.close()
            del self._runs[rec.run_id]
        else:
            log.writer.flush()

    def close(self) -> None:
        """Runs not ended (the process is exiting): their params still reach the hparams plugin."""
        with self._lock:
            for log in self._runs.values():
                if log.params:
                    for event in _hparams_events(log.params, log.start_time, "RUNNING", time.time()):
                        log.writer.add_event(event)
                log.writer.close()
            self._runs.clear()


def _warn_out_of_range(key: str, value: float) -> None:
    """A finite value float32 cannot hold (simple_value is a float32) reads back as +/-inf: say so, once per key."""
    try:
        struct.pack("<f", value)  # rounds to float32; raises only where the result would be infinite
    except OverflowError:
        sign = "-" if value < 0 else ""
        _errors.warn(
            f"autolog: metric {key!r} = {value!r} is beyond the float32 range TensorBoard stores; "
            f"it reads back as {sign}inf",
            once_key=f"tensorboard-float32:{key}",
        )


def _text_event(tag: str, text: str) -> Any:
    """A text-plugin summary, built from TensorBoard's protos (its summary helpers would import TensorFlow)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.text import metadata
    from tensorboard.util import tensor_util

    value = Summary.Value(
        tag=tag,
        metadata=metadata.create_summary_metadata("tags", "run tags"),
        tensor=tensor_util.make_tensor_proto(text.encode()),
    )
    return Event(wall_time=time.time(), step=0, summary=Summary(value=[value]))


def _hparams_events(params: dict[str, str], start_time: float, status: str, end_time: float) -> list[Any]:
    """Session start (the hyper-parameters) and session end (the status) for the hparams plugin."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=start_time)
    for key, text in params.items():
        value = _hparam_value(text)
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, float):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = value
    code = {FINISHED: api_pb2.STATUS_SUCCESS, FAILED: api_pb2.STATUS_FAILURE, KILLED: api_pb2.STATUS_FAILURE}
    end = plugin_data_pb2.SessionEndInfo(status=code.get(status, api_pb2.STATUS_UNKNOWN), end_time_secs=end_time)
    version = metadata.PLUGIN_DATA_VERSION

    def event(tag: str, data: Any, wall_time: float) -> Any:
        plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
        summary = Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])
        return Event(wall_time=wall_time, step=0, summary=summary)

    return [
        event(
            metadata.SESSION_START_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_start_info=start, version=version),
            start_time,
        ),
        event(
            metadata.SESSION_END_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_end_info=end, version=version),
            end_time,
        ),
    ]
