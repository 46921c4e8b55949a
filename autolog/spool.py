"""The crash-durable spool: every record is in a local journal before the writer confirms it to the backend.

Design and cost (see ``docs/reliability.md``):

* Training thread: a metric whose value is a host number (``float``, ``int``, ``bool``, numpy scalar) is packed
  into a shared file mapping of the current journal segment with one precompiled ``struct.pack_into`` (32 bytes:
  key id, value, step, timestamp, MAGIC). Run ids and keys are interned to small key ids, written once per segment
  as blobs. No system call per metric; the OS keeps the mapped pages when the process is killed. Rare records (run
  start/end, params, tags) are pickled into the journal as blobs. A ``busy`` flag (no lock) lets one call at a
  time write the mapping, so journal order equals queue order when several threads log. Tensors are not read on
  the training thread (no device sync): a tensor value is kept in memory only, the stated exception to the SIGKILL
  promise. With the optional C extension (``autolog._speedups.FastPut``), a metric call whose keys already have key
  ids and whose values are exact floats/ints is packed and queued in C; it shares this closure's variables
  (``busy`` included) and hands every other call to the Python ``put`` unchanged.
* Writer thread: after the backend confirms a batch, the journal offset it reached is stored in the lock file and,
  for SQLite, in the store in the same transaction (exactly once); fully confirmed segments are deleted.
* Outage: a batch that still fails after the retries switches the spool to outage mode. Records that are in the
  journal are then no longer held in memory (training goes on at full speed); the rest (tensor values, artifacts)
  is held in memory up to ``max_queue``. Every second the writer tries to send the journal from the confirmed
  offset; when that works, it sends what it held and leaves outage mode.
* Bound: a process's journal never exceeds ``spool_max_bytes``. When it is full, new records are kept in memory
  only (not crash-durable), counted as ``unspooled`` and warned once; the spool never deletes what was not sent.
* Replay (``autolog.replay``): a journal whose lock is free belongs to a dead process. The next ``enable()`` with
  the same backend, and ``autolog sync``, send what it holds past its confirmed offset, then end its runs that had
  not ended as KILLED.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import _errors, _native, journal
from autolog.journal import MAGIC, SEGMENT_BYTES, SIZE, SLOT
from autolog.records import RunStart
from autolog.sanitize import safe_repr
from autolog.writer import ARTIFACT, END, METRICS, PARAMS, START, TAGS

if TYPE_CHECKING:
    from autolog.options import Options
    from autolog.replay import SyncSummary
    from autolog.writer import Record, Writer

_BASE_LEN = {METRICS: 5, PARAMS: 3, TAGS: 3, START: 2, END: 2, ARTIFACT: 3}
_SLACK = 1 << 16  # room kept at a segment's end for key blobs written in the middle of a call
_MAX_KEY_BLOB = _SLACK // 2
_PROBE_SECONDS = 1.0


def default_dir(backend: Any) -> Path:
    """``<store dir>/spool`` for a SQLite store, else ``./autolog-runs/spool``."""
    uri = backend if isinstance(backend, str) else getattr(backend, "uri", "")
    if isinstance(backend, (list, tuple)) and backend:
        uri = backend[0] if isinstance(backend[0], str) else getattr(backend[0], "uri", "")
    if isinstance(uri, str) and uri.startswith("sqlite:///") and len(uri) > len("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).parent / "spool"  # as backends.sqlite reads it (sqlite3 not imported)
    return Path("autolog-runs") / "spool"


def backend_uri(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)):
        return ",".join(backend_uri(s) for s in spec)
    return str(getattr(spec, "uri", "") or "")


def spool_dir(opts: Options) -> Path:
    return Path(opts.spool_dir) if opts.spool_dir else default_dir(opts.backend)


def _plain_value(value: Any) -> float | None:
    """A value the training thread may journal without a device sync: numbers and numpy scalars."""
    kind = type(value)
    if kind is bool:
        return float(value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return None


_text = safe_repr  # imported once: a function-level import here ran for every param and tag value


def _memory_part(record: Record) -> Record | None:
    """The part of a queued record that only memory holds (None when the journal has all of it): an artifact, a
    record logged while the journal was full, or a metric call's tensor values (the call as logged, without them)."""
    kind, n = record[0], len(record)
    if kind == METRICS:
        if n == 7:
            return (METRICS, record[1], record[2], record[3], record[6])
        if n == 6 and record[5] is None:
            return record[:5]
        return None
    return record if n == _BASE_LEN.get(kind, 0) else None


def _plain_record(record: Record) -> tuple[Any, ...] | None:
    """A queue record reduced to picklable plain data, or None for records that are not journaled."""
    kind = record[0]
    if kind in (PARAMS, TAGS):
        values = {k if type(k) is str else _text(k): _text(v) for k, v in record[2].items()}
        return (kind, record[1], values)
    if kind == START:
        s: RunStart = record[1]
        tags = {str(k): _text(v) for k, v in s.tags.items()}
        return (START, RunStart(s.run_id, s.experiment, s.name, s.start_time, s.parent_id, tags))
    if kind == END:
        return (END, record[1])
    return None


class Spool:
    """One process's journal and the writer-side bookkeeping around it."""

    def __init__(self, directory: Path, uri: str, max_bytes: int) -> None:
        self.directory = directory
        self.uri = uri
        self.max_bytes = max_bytes
        self.jid = ""
        self.meta: journal.Meta | None = None
        self.lock = threading.Lock()
        self.segments: deque[tuple[int, int, Path]] = deque()  # (base, size, path), current last
        self.full = False
        self.confirmed = 0
        self.hi = 0  # the highest journal offset the writer has taken from its queue
        self.cursor = 0  # where the last journaled record the writer took from its queue ends
        self.outage = False
        self.held: list[Record] = []
        self.markers: list[threading.Event] = []
        self.counters = {"spooled": 0, "unspooled": 0, "replayed": 0}
        self._failed = False
        self._next_probe = 0.0
        self._maps: list[mmap.mmap] = []
        self.unfaulted: tuple[mmap.mmap, int] | None = None  # the new segment whose pages the writer faults in
        self.open_runs: dict[str, None] = {}
        self._put: Callable[[Record], None] | None = None
        self.segment_bytes = min(SEGMENT_BYTES, max(max_bytes // 4, 4 * _SLACK))

    # -- training thread ----------------------------------------------------------------------------------
    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jid = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.meta = journal.Meta(journal.lock_path(self.directory, self.jid), create=True)
        if not self.meta.try_lock():
            raise OSError(f"cannot lock {self.meta.path}")
        self.meta.set_confirmed(0)

    def make_put(self, writer: Writer) -> Callable[[Record], None]:
        """The writer's ``put`` with journaling: see the module docstring for the layout and its cost.

        One per journal: threads racing through the writer's first ``put`` all get the same closure."""
        with self.lock:
            if self._put is None:
                self._put = self._make_put(writer)
            return self._put

    def _make_put(self, writer: Writer) -> Callable[[Record], None]:  # noqa: PLR0915 - one closure: locals are fast
        if self.meta is None:
            self._open()
        queue = writer._queue
        append = queue.append
        crowded = min(writer.batch_size, writer.max_queue)
        put_crowded = writer._put_crowded
        lock = self.lock
        pack = SLOT.pack_into
        deferred: set[type] = set()  # types of values never journaled (tensors, text...): the C code keeps them aside
        state = self
        kid_counter = [0]
        busy = False
        sleep = time.sleep
        record_step: list[Any] = [0, 0.0]  # step and timestamp of the call ``odd`` is helping
        magic, metrics = MAGIC, METRICS  # closure locals: cheaper than globals on the hot path
        fresh = True
        ids: dict[str, dict[Any, int]] = {}
        buf: Any = None
        base = pos = limit = 0

        def roll(need: int) -> bool:
            """Start a new segment with room for ``need`` bytes; False when the spool is full."""
            nonlocal buf, base, pos, limit, ids, fresh
            opened = list(state.open_runs)
            header = ("h", {"backend": state.uri, "pid": os.getpid(), "created": time.time()})
            extra = journal.blob_size(header) + journal.blob_size(("o", opened))
            size = max(state.segment_bytes, need + _SLACK + extra)
            live = sum(s for _, s, _ in state.segments)
            if live + size > state.max_bytes and state.segments:
                if not state.full:
                    state.full = True
                    _errors.warn(
                        f"autolog: the spool reached AUTOLOG_SPOOL_MAX_BYTES={state.max_bytes} with records the "
                        "store has not confirmed; new records are kept in memory only until it catches up",
                        once_key="spool-full",
                    )
                limit = 0
                return False
            state.full = False
            new_base = base + pos if buf is not None else 0
            if state.segments:
                new_base = max(new_base, state.segments[-1][0] + state.segments[-1][1])
            path = journal.segment_path(state.directory, state.jid, new_base)
            new, start = journal.create_segment(path, size, [header, ("o", opened)])
            if buf is not None:
                state._maps.append(buf)  # closed by the writer once confirmed; a pending pack never races it
            buf, base, limit, ids = new, new_base, size - _SLACK, {}
            state.segments.append((new_base, size, path))
            pos = start
            state.unfaulted = (new, journal.PREFILL)  # the writer faults its pages in at its next pass (``prefault``)
            fresh = True  # the next metric record does not follow the previous one: it carries its end offset
            return True

        def register(rid: str, keys: dict[Any, int], key: Any, p: int) -> tuple[int, int]:
            text = key if type(key) is str else _text(key)
            if len(text) > _MAX_KEY_BLOB // 4:
                return 0, p  # a key this long stays in memory only (the writer still sends it)
            kid = kid_counter[0] + 1
            blob = journal.encode(("k", kid, rid, text))
            if p + journal.encoded_size(blob) + SIZE > limit + _SLACK:
                return 0, p  # no room left in this segment for this call: memory only
            kid_counter[0] = kid
            p = journal.write_encoded(buf, p, blob)
            keys[key] = kid
            return kid, p

        def slow(record: Record) -> None:
            """Everything that is not a metric call in the current segment: rare records, a full segment."""
            nonlocal pos
            kind = record[0]
            if kind == METRICS:
                if state.full or not roll(SIZE * len(record[4])):
                    state.counters["unspooled"] += len(record[4])
                    push((*record, None))
                    return
                fast(record)
                return
            plain = _plain_record(record)
            if plain is None:
                push(record)  # artifacts: memory only
                return
            blob = journal.encode(("r", plain))
            size = journal.encoded_size(blob)
            if (buf is None or pos + size > limit + _SLACK) and not roll(size):
                state.counters["unspooled"] += 1
                push(record)
                return
            pos = journal.write_encoded(buf, pos, blob)
            if kind == START:
                state.open_runs[record[1].run_id] = None
            elif kind == END:
                state.open_runs.pop(record[1].run_id, None)
            push((*record, base + pos))

        def push(record: Record) -> None:
            if len(queue) < crowded:
                append(record)
            else:
                put_crowded(record)

        def fast(record: Record) -> None:
            """Journal a metric call from inside ``slow`` (after a roll): ``put`` again, ``busy`` lifted for it."""
            nonlocal busy
            busy = False
            try:
                put(record)
            finally:
                busy = True

        def foreign(record: Record) -> None:
            """A call while another is writing the mapping (another thread, switched out mid-call): give it the GIL
            until it is done, then journal; after ~1,000 tries, keep the record in memory only (counted)."""
            for _ in range(1000):
                sleep(0)
                if not busy:
                    put(record)
                    return
            with lock:
                state.counters["unspooled"] += len(record[4]) if record[0] == METRICS else 1
            if record[0] == METRICS:
                record = (*record, None)
            _errors.warn(
                "autolog: a record logged while another thread held the spool for long is kept in memory only "
                "(written normally, but it would not survive a SIGKILL)",
                once_key="spool-foreign-thread",
            )
            push(record)

        def odd(rid: str, keys: dict[Any, int], key: Any, value: Any, p: int) -> tuple[int, bool]:
            """A new key in this segment, or a value that is not a plain number: (position, journaled?)."""
            kid = keys.get(key)
            if kid is None:
                kid, p = register(rid, keys, key, p)
            kind = type(value)
            if kind is not float and kind is not int:  # (identity, not a set: a class may be unhashable)
                value = _plain_value(value)
                if value is None:
                    if kind.__module__ != "numpy":  # never a plain number (a numpy array may be one next time)
                        try:
                            deferred.add(kind)
                        except TypeError:  # a class whose metaclass makes it unhashable: Python's path each time
                            pass
                    return p, False
            if not kid:
                return p, False
            try:
                pack(buf, p, kid, value, record_step[0], record_step[1], magic)
            except Exception:  # noqa: BLE001 - a huge int, an odd step: this value stays in memory only
                return p, False
            return p + 32, True

        def put(record: Record) -> None:
            # The hot path: no lock, no system call; keep it short (see benchmarks/spool_cost.py). ``busy`` makes
            # one call at a time write the mapping: a call from another thread that finds it set (a thread switch
            # inside a call) keeps its record in memory only. Test and set have no eval-breaker check between them
            # (CPython with the GIL), so two calls cannot both pass.
            nonlocal pos, fresh, busy
            if busy:
                foreign(record)
                return
            busy = True
            try:
                if record[0] != metrics:
                    slow(record)
                    return
                _, rid, step, ts, values = record
                start = p = pos
                span = len(values) << 5
                if p + span > limit:
                    slow(record)
                    return
                keys = ids.get(rid)
                if keys is None:
                    keys = ids[rid] = {}
                left = None
                for key, value in values.items():
                    kid = keys.get(key)
                    if kid is not None and ((kind := type(value)) is float or kind is int):
                        try:
                            pack(buf, p, kid, value, step, ts, magic)
                            p += 32
                            continue
                        except Exception:  # noqa: BLE001 - handled by ``odd`` below
                            pass
                    record_step[0], record_step[1] = step, ts
                    p, journaled = odd(rid, keys, key, value, p)
                    if not journaled:
                        if left is None:
                            left = {}
                        left[key] = value
                pos = p
                if left is not None:
                    record = (metrics, rid, step, ts, values, base + p, left)
                elif fresh or p - start != span:  # a key blob or a new segment came first: say where it ends
                    record = (metrics, rid, step, ts, values, base + p)
                    fresh = False
                # else: the common case, the record as given (its slots follow the previous one's; the writer counts)
                if len(queue) < crowded:
                    append(record)
                else:
                    put_crowded(record)
            finally:
                busy = False

        roll(0)
        native = _native.speedups
        if native is None:
            return put
        # The C extension takes the common case (known keys, plain values, room left) and hands the rest to
        # ``put``; it reads and writes this closure's own variables (its cells), so both share one state.
        cells = dict(zip(put.__code__.co_freevars, put.__closure__ or (), strict=True))
        shared = {name: cells[name] for name in ("busy", "buf", "pos", "limit", "base", "ids", "fresh")}
        fast_put: Callable[[Record], None] = native.FastPut(
            put, queue, crowded, put_crowded, metrics, magic, **shared, deferred=deferred
        )
        return fast_put

    # -- writer thread ------------------------------------------------------------------------------------
    def attach(self, writer: Writer) -> None:
        writer.on_failure = self._on_failure

    def prefault(self) -> None:
        """Fault the new segment's pages in, off the training thread (see ``journal.prefault``)."""
        pending, self.unfaulted = self.unfaulted, None
        if pending is not None:
            journal.prefault(*pending)

    def _on_failure(self, batch: Any, exc: BaseException) -> None:
        self._failed = True
        _errors.warn(
            f"autolog: the store {self.uri} failed ({exc!r}); records wait in the spool at {self.directory} "
            "and are sent when it answers",
            once_key=f"spool-outage:{type(exc).__name__}",
        )

    def handle(self, writer: Writer, chunk: list[Record], markers: list[threading.Event]) -> None:
        """Write one chunk (normal mode) or keep what the journal does not hold (outage mode)."""
        from autolog import replay

        hi = self._advance(chunk)
        if not self.outage:
            self._failed = False
            if chunk:
                parts = replay.split_for(writer, writer._build(chunk))
                backend = writer.backend
                for i, part in enumerate(parts):
                    marked = replay.MarkedBatch(part)
                    if hi and i == len(parts) - 1:
                        marked.spool_mark = (self.jid, hi)
                    writer._write_with_retry(backend, marked)
                    if self._failed:
                        break
            if not self._failed:
                if hi:
                    self.confirm(hi)
                for marker in markers:
                    marker.set()
                return
            self.outage = True
            self._next_probe = time.monotonic() + _PROBE_SECONDS
        self._hold(writer, chunk, hi)
        self.markers.extend(markers)

    def _advance(self, chunk: list[Record]) -> int:
        """The journal offset the chunk's records reach (0: none journaled). A metric record as logged (5 items)
        fills the slots right after the previous journaled record; others carry their end offset."""
        cursor, hi = self.cursor, 0
        for record in chunk:
            kind, n = record[0], len(record)
            if kind == METRICS:
                if n == 5:
                    cursor += len(record[4]) << 5
                    hi = cursor
                elif record[5] is not None:
                    cursor = hi = record[5]
            elif n > _BASE_LEN.get(kind, 99):
                cursor = hi = record[-1]
        self.cursor = cursor
        return hi

    def _hold(self, writer: Writer, chunk: list[Record], hi: int) -> None:
        self.hi = max(self.hi, hi)
        for record in chunk:
            keep = _memory_part(record)
            if keep is None:
                continue
            if len(self.held) >= writer.max_queue:
                writer._count_drop("spool_outage_memory_full", 1)
                continue
            self.held.append(keep)

    def recover(self, writer: Writer) -> None:
        """In outage mode: try to send the journal from the confirmed offset, then what was held in memory."""
        if time.monotonic() < self._next_probe:
            return
        self._next_probe = time.monotonic() + _PROBE_SECONDS
        from autolog import replay

        backend = writer.backend
        try:
            for batch in replay.batches(writer, self.directory, self.jid, self.confirmed, self.hi):
                backend.write(batch)
                if batch.spool_mark:
                    self.confirm(batch.spool_mark[1])
            self.confirm(self.hi)
            held, self.held = self.held, []
            for i in range(0, len(held), writer.batch_size):
                for part in replay.split_for(writer, writer._build(held[i : i + writer.batch_size])):
                    backend.write(part)
        except Exception:  # noqa: BLE001 - still down: stay in outage mode
            return
        self.outage = False
        markers, self.markers = self.markers, []
        for marker in markers:
            marker.set()

    def confirm(self, offset: int) -> None:
        if offset <= self.confirmed:
            return
        self.confirmed = offset
        if self.meta is not None:
            self.meta.set_confirmed(offset)
        while len(self.segments) > 1 and self.segments[0][0] + self.segments[0][1] <= offset:
            _, _, path = self.segments.popleft()
            with contextlib.suppress(OSError):
                path.unlink()
            if self._maps:
                with contextlib.suppress(BufferError, ValueError):
                    self._maps.pop(0).close()
            self.full = False

    def memory_only(self, records: list[Record]) -> int:
        """Of ``records`` (queued, not written) and of what an outage holds, the values the journal does not have
        (artifacts, tensor values, records logged while it was full): lost if the process ends now."""
        parts = [part for part in map(_memory_part, records) if part is not None]
        return sum(len(r[4]) if r[0] == METRICS else 1 for r in (*parts, *self.held))

    def unsent(self) -> int:
        """Records in the journal past the confirmed offset (metrics and rare records)."""
        if not self.jid:
            return 0
        return sum(
            1 for end, item in journal.read(self.directory, self.jid) if end > self.confirmed and item[0] in ("m", "r")
        )

    def close(self, *, delete: bool) -> None:
        """At the end of the process (or of this writer): delete the journal when everything was confirmed."""
        if self.meta is None:
            return
        for m in self._maps:
            with contextlib.suppress(BufferError, ValueError):
                m.close()
        self._maps.clear()
        if delete:
            for _, path in journal.segments(self.directory, self.jid):
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                self.meta.path.unlink()
        self.meta.close()
        self.meta = None

    def after_fork_in_child(self) -> None:
        """The parent's journal is the parent's: drop its mapping and lock descriptor, open a new one on first use."""
        self._maps.clear()
        self.unfaulted = None
        if self.meta is not None:
            with contextlib.suppress(OSError):
                os.close(self.meta.fd)
            self.meta.fd = -1
            self.meta.map = None
            self.meta = None
        self.segments.clear()
        self.open_runs = {}
        self._put = None
        self.confirmed = self.hi = self.cursor = 0
        self.outage = False
        self.held, self.markers = [], []


def sync(backend: str | None = None, spool_dir_: str | None = None) -> SyncSummary:
    """``autolog sync``: see ``autolog.replay.sync``."""
    from autolog import replay

    return replay.sync(backend, spool_dir_)


def replay_dead(opts: Options) -> SyncSummary | None:
    """At ``enable()``: see ``autolog.replay.replay_dead``."""
    from autolog import replay

    return replay.replay_dead(opts)


def install(writer: Writer, opts: Options) -> None:
    """Attach a spool to a new writer (the journal files are created with the first record)."""
    spool = Spool(spool_dir(opts), backend_uri(opts.backend), opts.spool_max_bytes)
    spool.attach(writer)
    writer.spool = spool
