"""The Backend contract: whole batches in, declared limits out, and an optional read side."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from autolog.records import Batch, Run


@dataclass(frozen=True)
class Limits:
    """What one ``write`` call may hold and which keys/values the store accepts (None: no limit).

    The writer splits batches and sanitises keys to fit, so a backend never has to refuse a batch for its shape.
    """

    max_records_per_write: int | None = None  # metrics + params + tags in one write
    max_params_per_write: int | None = None
    max_tags_per_write: int | None = None
    max_key_length: int | None = None
    max_param_value_length: int | None = None  # longer values: truncated, full value kept as an artifact
    max_tag_value_length: int | None = None
    forbidden_key_chars: str | None = None  # a regex character class of characters to replace with "_"
    path_keys: bool | None = None  # keys are "/" paths: empty, "." and ".." segments are dropped ("a//b" -> "a/b")


class Backend(ABC):
    """A tracking store. ``write`` receives a whole batch and should store it in one transaction or request.

    Each ``RunRecords.metrics`` item is a ``(key, value, step, timestamp)`` tuple (see ``records.Metric``): read
    it by unpacking or index. ``write`` may raise: the writer retries with back-off. It must be idempotent for a
    batch it is given again after a failure (a run start seen twice, the same metric twice).
    """

    uri: str = ""
    limits: Limits = Limits()

    @abstractmethod
    def write(self, batch: Batch) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called at shutdown."""

    def dropped(self) -> dict[str, int]:
        """Records this backend accepted but could not store (by reason): a fan-out counts its failing stores."""
        return {}

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """Called in a forked child before first use: drop connections inherited from the parent."""

    # Read side: optional; stores that cannot read back raise NotImplementedError.
    def search_runs(self, experiment: str | None = None) -> list[Run]:
        raise NotImplementedError(f"backend {self.uri!r} cannot list runs")

    def get_run(self, run_id: str) -> Run:
        raise NotImplementedError(f"backend {self.uri!r} cannot read runs")

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        raise NotImplementedError(f"backend {self.uri!r} cannot read metrics")

    def list_artifacts(self, run_id: str) -> list[str]:
        raise NotImplementedError(f"backend {self.uri!r} cannot list artifacts")

    def download_artifact(self, run_id: str, path: str) -> Path:
        """A local path holding the artifact ``path`` of the run (a file or a directory)."""
        raise NotImplementedError(f"backend {self.uri!r} cannot read artifacts")


class RunNotFound(KeyError):
    """No run with this id in the backend."""

    def __init__(self, run_id: str, uri: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.uri = uri

    def __str__(self) -> str:
        return f"no run {self.run_id!r} in {self.uri}"
