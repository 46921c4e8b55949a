"""What flows from the writer to a backend, and what the read API returns.

The training thread appends plain tuples to the writer's queue (see ``writer.py``); the writer turns them into the
typed batch below, grouped per run with each run's records in logged order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)


@dataclass
class RunStart:
    run_id: str
    experiment: str
    name: str
    start_time: float
    parent_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RunEnd:
    run_id: str
    status: str
    end_time: float


class Metric(NamedTuple):
    """One metric value: the shape of every item of ``RunRecords.metrics``.

    The writer hands backends plain ``(key, value, step, timestamp)`` tuples of this shape, not Metric objects
    (building a NamedTuple costs ~300 ns a metric, most of the writer's own share at 10 keys a call): backends
    read them by unpacking or by index, never by attribute.
    """

    key: str
    value: float
    step: int
    timestamp: float


MetricRow = tuple[str, float, int, float]  # (key, value, step, timestamp): a Metric or a plain tuple


@dataclass
class Artifact:
    """A file or directory to store at ``path`` (relative, '/'-separated) in the run's artifact root.

    ``write(target)`` creates exactly ``target`` (a file or a directory); it runs on the writer thread, so the
    training thread does no I/O. ``files``, when the content is already bytes in memory, is the same content as
    ``{relative file path: bytes}`` (``""`` when the artifact is one file): a store may keep it without touching the
    file system (the SQLite store keeps small ones in the database).
    """

    path: str
    write: Callable[[Path], None]
    files: dict[str, bytes] | None = field(default=None, kw_only=True)

    @classmethod
    def of_bytes(cls, path: str, data: bytes) -> Artifact:
        """A one-file artifact whose content is ``data``, written exactly (no newline translation)."""

        def write(target: Path) -> None:
            target.write_bytes(data)

        return cls(path, write, files={"": data})


@dataclass
class ModelArtifact(Artifact):
    """A trained model: ``obj`` is a snapshot taken at the end of training.

    ``flavor`` names the framework (sklearn, xgboost, lightgbm, pytorch, keras); ``loader`` is "module:function"
    taking the directory ``write`` produced and returning the model. Backends with a model format of their own
    (MLflow) may use ``flavor`` and ``obj`` instead of ``write``.
    """

    flavor: str = ""
    obj: Any = None
    loader: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecords:
    """Everything one batch holds for one run, in logged order within each list."""

    run_id: str
    start: RunStart | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricRow] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    end: RunEnd | None = None

    def size(self) -> int:
        return (
            (self.start is not None)
            + len(self.params)
            + len(self.tags)
            + len(self.metrics)
            + len(self.artifacts)
            + (self.end is not None)
        )


Batch = list[RunRecords]


@dataclass
class Run:
    """A run as read back from a backend. ``metrics`` holds the last value of each key."""

    id: str
    experiment: str
    name: str
    status: str
    parent_id: str | None
    start_time: float
    end_time: float | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time
