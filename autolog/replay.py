"""Replay: sending what a journal holds past its confirmed offset (``autolog sync``, the next ``enable()``, and the
writer's own catch-up after an outage), exactly once for a store that keeps the offset in its batch transaction.

A journal whose lock is free belongs to a dead process: its records are decoded into the writer's queue records,
built into batches by a Writer of the target store, and written with the offset they reach; its runs that had not
ended are then ended KILLED, and the journal is deleted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import _errors, journal
from autolog.records import KILLED, RunEnd
from autolog.spool import backend_uri, default_dir, spool_dir
from autolog.writer import END, METRICS, START

if TYPE_CHECKING:
    from autolog.backends.base import Backend
    from autolog.options import Options
    from autolog.writer import Record, Writer


class MarkedBatch(list):  # type: ignore[type-arg]
    """A batch that carries (journal id, offset): a backend that can stores it in the batch's transaction."""

    spool_mark: tuple[str, int] | None = None


def split_for(writer: Writer, batch: list[Any]) -> list[Any]:
    from autolog.writer import split

    return split(batch, writer.backend.limits)


def batches(
    writer: Writer, directory: Path, jid: str, start: int, stop: int | None, *, out: dict[str, Any] | None = None
) -> Iterable[MarkedBatch]:
    """Marked batches of what the journal holds in (start, stop]; key blobs are read even before ``start``."""
    chunk: list[Record] = []
    last = 0
    for end, _obj, record in _records(directory, jid, start, stop, {} if out is None else out):
        if record is None:
            continue
        if chunk and record[0] == METRICS and chunk[-1][0] == METRICS:
            prev = chunk[-1]
            if prev[1:4] == record[1:4] and next(iter(record[4])) not in prev[4]:
                prev[4].update(record[4])
                last = end
                continue
        chunk.append(record)
        last = end
        if len(chunk) >= writer.batch_size:
            yield from _marked(writer, chunk, jid, last)
            chunk = []
    if chunk:
        yield from _marked(writer, chunk, jid, last)


def _marked(writer: Writer, chunk: list[Record], jid: str, last: int) -> Iterable[MarkedBatch]:
    parts = split_for(writer, writer._build(chunk))
    for i, part in enumerate(parts):
        marked = MarkedBatch(part)
        if i == len(parts) - 1:
            marked.spool_mark = (jid, last)
        yield marked


@dataclass
class _ReplayState:
    keys: dict[int, tuple[str, str]] = field(default_factory=dict)
    open_runs: dict[str, float] = field(default_factory=dict)  # run id -> last time seen
    backend: str = ""


def _records(
    directory: Path, jid: str, start: int, stop: int | None, out: dict[str, Any]
) -> Iterable[tuple[int, Any, Record | None]]:
    """Decode a journal into queue records; (end, raw item, record or None when confirmed or metadata)."""
    st = _ReplayState()
    out["state"] = st
    for end, item in journal.read(directory, jid):
        if stop is not None and end > stop:
            break
        tag = item[0]
        record: Record | None = None
        if tag == "m":
            _, kid, value, step, ts = item
            rid, key = st.keys.get(kid, (None, None))
            if rid is None:
                break  # a metric with no key: the rest is not trustworthy
            if rid in st.open_runs and ts > st.open_runs[rid]:
                st.open_runs[rid] = ts
            record = (METRICS, rid, step, ts, {key: value})
        elif tag == "k":
            st.keys[item[1]] = (item[2], item[3])
        elif tag == "o":
            for rid in item[1]:
                st.open_runs.setdefault(rid, 0.0)
        elif tag == "h":
            st.backend = item[1].get("backend", "")
        elif tag == "r":
            record = item[1]
            if record[0] == START:
                st.open_runs[record[1].run_id] = record[1].start_time
            elif record[0] == END:
                st.open_runs.pop(record[1].run_id, None)
        yield end, item, (record if end > start else None)


# -- replay of dead processes' journals ---------------------------------------------------------------------------
@dataclass
class SyncSummary:
    """What ``sync`` / a replay did. ``str()`` is the line ``autolog sync`` prints."""

    directory: str = ""
    journals: int = 0
    records: int = 0
    killed_runs: int = 0
    busy: int = 0  # journals of processes still alive (left alone)
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.journals and not self.busy and not self.failed:
            return f"autolog sync: nothing to send (no spool journals in {self.directory})"
        text = (
            f"autolog sync: sent {self.records} records from {self.journals} journal(s) in {self.directory}; "
            f"{self.killed_runs} run(s) of dead processes marked KILLED"
        )
        if self.busy:
            text += f"; {self.busy} journal(s) belong to running processes and were left alone"
        if self.failed:
            text += f"; {len(self.failed)} failed and were kept: " + "; ".join(self.failed)
        return text


def header_backend(directory: Path, jid: str) -> str:
    for _, item in journal.read(directory, jid):
        if item[0] == "h":
            return str(item[1].get("backend", ""))
        break
    return ""


def replay_journal(directory: Path, jid: str, backend: Backend, summary: SyncSummary, batch_size: int = 2000) -> None:
    """Send a dead process's unconfirmed records (exactly once for a store that keeps marks), end its open runs
    KILLED, then delete the journal. The caller holds the journal's lock."""
    from autolog.writer import Writer

    writer = Writer(lambda: backend, batch_size=batch_size)
    meta = journal.Meta(journal.lock_path(directory, jid), create=False)
    try:
        confirmed = meta.confirmed()
    finally:
        meta.close()
    mark = getattr(backend, "spool_mark", None)
    if callable(mark):
        confirmed = max(confirmed, mark(jid) or 0)
    out: dict[str, Any] = {}
    sent = 0
    for batch in batches(writer, directory, jid, confirmed, None, out=out):
        backend.write(batch)
        sent += sum(r.size() for r in batch)
    state: _ReplayState | None = out.get("state")
    killed = 0
    if state is not None and state.open_runs:
        ends = [(END, RunEnd(rid, KILLED, last or time.time())) for rid, last in state.open_runs.items()]
        backend.write(writer._build(ends))
        killed = len(ends)
    summary.records += sent
    summary.killed_runs += killed
    summary.journals += 1


def _delete(directory: Path, jid: str) -> None:
    for _, path in journal.segments(directory, jid):
        with contextlib.suppress(OSError):
            path.unlink()
    with contextlib.suppress(OSError):
        journal.lock_path(directory, jid).unlink()


def replay_dir(
    directory: Path, backend_for: Callable[[str], Backend | None], own: str = "", batch_size: int = 2000
) -> SyncSummary:
    """Replay every journal in ``directory`` whose owner is dead. ``backend_for(uri)`` picks the target store for a
    journal written for ``uri`` (None: leave that journal alone)."""
    summary = SyncSummary(directory=str(directory))
    for jid in journal.journals(directory):
        if jid == own:
            continue
        lock = journal.lock_path(directory, jid)
        if not lock.exists():
            continue
        meta = journal.Meta(lock, create=False)
        try:
            if not meta.try_lock():
                summary.busy += 1
                continue
            try:
                backend = backend_for(header_backend(directory, jid))
                if backend is None:
                    continue
                replay_journal(directory, jid, backend, summary, batch_size)
            except Exception as exc:  # noqa: BLE001 - kept for the next try, reported
                summary.failed.append(f"{jid}: {exc!r}")
                continue
            _delete(directory, jid)
        finally:
            meta.close()
    return summary


def replay_dead(opts: Options) -> SyncSummary | None:
    """At ``enable()``: send what dead processes left for this same backend (synchronously)."""
    if not opts.spool or opts.sync:
        return None
    directory = spool_dir(opts)
    if not directory.is_dir():
        return None
    uri = backend_uri(opts.backend)
    from autolog import session

    def target(found: str) -> Backend | None:
        # Only journals written for this very store (by URI); a Backend object without a URI, or a memory store
        # that lived in the dead process, is never guessed at: `autolog sync --backend URI` sends those.
        same = found == uri and uri != "" and not uri.startswith("memory:")
        return session.backend() if same else None

    summary = replay_dir(directory, target, batch_size=opts.batch_size)
    if summary.records or summary.killed_runs:
        _errors.warn(f"autolog: {summary}".replace("autolog: autolog sync: ", "autolog: replayed the spool: "))
    return summary


def sync(backend: str | None = None, spool_dir_: str | None = None) -> SyncSummary:
    """``autolog sync``: send every dead process's journal to ``backend`` (default: the store each was written for)."""
    from autolog.backends import open_backend
    from autolog.options import resolve

    opts = resolve({"backend": backend} if backend else {})
    if spool_dir_ or opts.spool_dir:
        directories = [Path(spool_dir_ or opts.spool_dir or "")]
    else:  # beside the store, and where journals for stores without a directory go
        directories = list(dict.fromkeys([spool_dir(opts), default_dir(None)]))
    opened: dict[str, Backend] = {}

    def target(found: str) -> Backend | None:
        uri = backend or found or backend_uri(opts.backend)
        if uri.startswith("memory:"):  # that store died with its process: say where to send it instead
            raise ValueError(f"it was written for {uri!r}, a store that lived in the dead process; pass --backend")
        if uri not in opened:
            opened[uri] = open_backend(uri.split(",") if "," in uri else uri)
        return opened[uri]

    summary = SyncSummary(directory=" and ".join(str(d) for d in directories))
    for directory in directories:
        one = replay_dir(directory, target, batch_size=opts.batch_size)
        summary.journals += one.journals
        summary.records += one.records
        summary.killed_runs += one.killed_runs
        summary.busy += one.busy
        summary.failed += one.failed
    for b in opened.values():
        b.close()
    return summary
