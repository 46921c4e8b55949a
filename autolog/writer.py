"""The one writer thread per process: a bounded in-memory queue drained in batches into the backend.

Training thread (``put``): append a plain tuple to a ``collections.deque`` (atomic under the GIL), wake the writer
only when a batch is full. No I/O, no locks on the common path.

Writer thread: wakes every ``flush_interval`` seconds or when a batch is full; pops up to ``batch_size`` records;
converts and sanitises them (values to float, keys the backend accepts); groups them per run in logged order; splits
to the backend's limits; writes; retries failures with back-off. A batch that still fails is handed to
``on_failure`` (dropped and counted by default; the spool keeps it when there is one).

Full queue policy (``queue_full``): ``block`` (default) waits up to ``queue_full_timeout`` seconds for the writer to
make room, then drops the record; ``drop`` drops at once. Every drop is counted by reason and reported.

Flush: a marker record goes through the queue; its event is set once everything before it has been handled, so
``flush(timeout)`` waits for exactly what was logged before it.
"""

from __future__ import annotations

import operator
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from autolog import _errors, sanitize
from autolog.backends.base import Backend, Limits
from autolog.records import Artifact, Batch, MetricRow, RunEnd, RunRecords, RunStart
from autolog.tags import process_tags

if TYPE_CHECKING:
    from autolog.spool import Spool

# Record kinds: the first item of every queued tuple.
METRICS = "m"  # (METRICS, run_id, step, timestamp, {key: value})
PARAMS = "p"  # (PARAMS, run_id, {key: str})
TAGS = "t"  # (TAGS, run_id, {key: str})
START = "s"  # (START, RunStart)
END = "e"  # (END, RunEnd)
ARTIFACT = "a"  # (ARTIFACT, run_id, Artifact)
MARKER = "f"  # (MARKER, threading.Event)

Record = tuple[Any, ...]
_MIN_STEP, _MAX_STEP = -(1 << 63), (1 << 63) - 1  # what every store keeps as an integer


class Writer:
    def __init__(
        self,
        backend: Callable[[], Backend],
        *,
        batch_size: int = 2000,
        flush_interval: float = 1.0,
        max_queue: int = 1_000_000,
        queue_full: str = "block",
        queue_full_timeout: float = 5.0,
        max_retries: int = 5,
        sync: bool = False,
    ) -> None:
        self._backend_factory = backend
        self._backend: Backend | None = None
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.queue_full = queue_full
        self.queue_full_timeout = queue_full_timeout
        self.max_retries = max_retries
        self.sync = sync
        self.on_failure: Callable[[Batch, BaseException], None] = self._drop_failed
        self.spool: Spool | None = None  # the crash-durable journal (autolog.spool), attached by the session
        self.spool_unsent = 0  # records left in the spool by ``stop``
        self.memory_lost = 0  # records ``stop`` left unwritten that the spool's journal does not hold
        self._fresh_state()

    def _fresh_state(self) -> None:
        if hasattr(self, "_queue"):
            self._queue.clear()  # in place: puts bound before a fork keep appending to the live queue
        else:
            self._queue: deque[Record] = deque()
        self._wake_pending = False
        self._in_hand: list[Record] = []  # the chunk popped from the queue and being written (``pending`` counts it)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._export_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.counters: Counter[str] = Counter()
        self._sanitizer: sanitize.KeySanitizer | None = None
        self.put: Callable[[Record], None] = self._make_put() if self.sync else self._put_first

    # -- training thread --------------------------------------------------------------------------------------
    def _make_put(self) -> Callable[[Record], None]:
        """Build ``put``: a closure over local references, since attribute lookups are most of its cost.

        O(1), no I/O; it waits only under the ``block`` policy with a full queue. The deque is never replaced
        (after fork it is cleared in place), so a ``put`` bound earlier stays valid.
        """
        if self.spool is not None and not self.sync:
            return self.spool.make_put(self)
        queue = self._queue
        append = queue.append
        max_queue, batch_size = self.max_queue, self.batch_size

        if self.sync:

            def put_sync(record: Record) -> None:
                if len(queue) >= max_queue and not self._make_room(record):
                    return
                append(record)
                self.drain()

            return put_sync

        crowded = min(batch_size, max_queue)

        def put(record: Record) -> None:
            if len(queue) < crowded:  # the common case: one comparison and an append
                append(record)
            else:
                self._put_crowded(record)

        return put

    def _put_crowded(self, record: Record) -> None:
        """A batch is waiting: wake the writer (once), and apply the full-queue policy when needed."""
        if len(self._queue) >= self.max_queue and not self._make_room(record):
            return
        self._queue.append(record)
        if not self._wake_pending:
            self._wake_pending = True
            self._wake.set()

    def _put_first(self, record: Record) -> None:
        """The first put of a process (and of a forked child) starts the writer thread, then steps aside."""
        self.put = self._make_put()  # first: the spool's first segment is there when the thread starts
        self._start()
        self.put(record)

    def _make_room(self, record: Record) -> bool:
        if self.queue_full == "block":
            self._wake.set()
            deadline = time.monotonic() + self.queue_full_timeout
            while len(self._queue) >= self.max_queue and time.monotonic() < deadline:
                time.sleep(0.0005)
            if len(self._queue) < self.max_queue:
                return True
        self._count_drop("queue_full", _record_size(record))
        _errors.warn(
            f"autolog: the writer queue is full ({self.max_queue} records; policy {self.queue_full!r}); "
            "records are being dropped and counted. Raise AUTOLOG_MAX_QUEUE or check the backend.",
            once_key="queue_full",
        )
        return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call has been handled. False if ``timeout`` ran out."""
        if self.sync:
            self.drain()
            return True
        if self._thread is None and not self._queue:
            return True
        done = threading.Event()
        self._queue.append((MARKER, done))
        self._wake.set()
        if self._thread is None:
            self._start()
        return done.wait(timeout)

    def pending(self) -> int:
        """Records logged and not yet handled: those queued, plus those the writer is writing now (popped from the
        queue, so a store slower than a flush's deadline still counts them as waiting)."""
        queued = sum(_record_size(r) for r in list(self._queue) if r[0] != MARKER)
        return queued + sum(_record_size(r) for r in self._in_hand)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="autolog-writer", daemon=True)
                thread.start()
                self._thread = thread

    def after_fork_in_child(self) -> None:
        """A forked child starts with an empty queue and no thread: the parent's records are the parent's."""
        if self.spool is not None:
            self.spool.after_fork_in_child()
        self._fresh_state()
        if self._backend is not None:
            self._backend.after_fork()

    def stop(self, timeout: float) -> bool:
        """Flush within ``timeout`` and stop the thread. Never waits longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        ok = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # let the thread leave its loop before the interpreter finalises: a daemon thread still inside a
            # framework's C++ code (reading a tensor) while static destructors run can abort the process
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.spool is not None:  # what the store has not confirmed stays in the spool for `autolog sync`
            self.spool_unsent = 0 if ok else self.spool.unsent()
            if not ok:  # what the journal does not hold is lost with the process: counted, and said at exit
                waiting = [r for r in (*list(self._queue), *self._in_hand) if r[0] != MARKER]
                self.memory_lost = self.spool.memory_only(waiting)
                if self.memory_lost:
                    self._count_drop("held_in_memory_at_exit", self.memory_lost)
            self.spool.close(delete=ok)
        return ok

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    # -- writer thread ----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.spool is not None and self.spool.unfaulted is not None:
                try:  # a new journal segment: its pages, before the training thread gets there
                    self.spool.prefault()
                except Exception as exc:  # noqa: BLE001 - an optimisation: never fatal to the writer
                    _errors.warn(f"autolog: writer error: {exc!r}", once_key="writer-prefault")
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._wake_pending = False
            try:
                # what is queued at wake-up only: records arriving meanwhile wait for a full batch or the next
                # interval, so a slow store gets few large writes instead of a stream of tiny ones
                self.drain(len(self._queue))
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive anything
                _errors.warn(f"autolog: writer error: {exc!r}", once_key="writer-loop")
                self.counters["writer_errors"] += 1

    def drain(self, limit: int | None = None) -> None:
        """Write everything queued (or about ``limit`` records of it), ``batch_size`` records at a time."""
        with self._export_lock:
            spool = self.spool
            if spool is not None and spool.outage:
                spool.recover(self)
            budget = limit
            while self._queue and (budget is None or budget > 0):
                chunk, markers = self._pop_chunk()
                if budget is not None:
                    budget -= len(chunk) + len(markers)
                self.counters["queued"] += len(chunk)
                self._in_hand = chunk  # counted only when asked: ``pending`` is rare, batches are not
                try:
                    if spool is not None and spool.meta is not None:
                        spool.handle(self, chunk, markers)
                        continue
                    if chunk:
                        self._handle(chunk)
                finally:
                    self._in_hand = []
                for marker in markers:
                    marker.set()

    def _handle(self, chunk: list[Record]) -> None:
        """Build and write one chunk. Records popped but never built are counted, never lost silently."""
        try:
            self._open_backend()
        except Exception as exc:  # noqa: BLE001 - the backend cannot be opened even after retries
            n = sum(_record_size(r) for r in chunk)
            self._count_drop("backend_error", n)
            _errors.warn(
                f"autolog: the backend could not be opened ({exc!r}); {n} records dropped and counted",
                once_key=f"backend-open:{type(exc).__name__}",
            )
            return
        try:
            batch = self._build(chunk)
        except Exception:
            self._count_drop("internal_error", sum(_record_size(r) for r in chunk))
            raise
        self._write(batch)

    def _open_backend(self) -> Backend:
        """The backend, opened with the same retries and back-off as a write (it may need a server)."""
        delay = 0.05
        for attempt in range(self.max_retries + 1):
            try:
                return self.backend
            except Exception:
                if attempt == self.max_retries or self._stop.is_set():
                    raise
                self.counters["retried"] += 1
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _pop_chunk(self) -> tuple[list[Record], list[threading.Event]]:
        chunk: list[Record] = []
        markers: list[threading.Event] = []
        pop = self._queue.popleft
        while self._queue and len(chunk) < self.batch_size:
            record = pop()
            if record[0] == MARKER:
                markers.append(record[1])
                break  # write what came before the marker, then release it
            chunk.append(record)
        return chunk, markers

    def _keys(self) -> sanitize.KeySanitizer | None:
        """The backend's key sanitiser, or None when it accepts every key (no per-key call then)."""
        limits = self.backend.limits
        if limits.forbidden_key_chars is None and limits.max_key_length is None and not limits.path_keys:
            return None
        if self._sanitizer is None:
            self._sanitizer = sanitize.KeySanitizer(
                limits.forbidden_key_chars, limits.max_key_length, paths=bool(limits.path_keys)
            )
        return self._sanitizer

    def _build(self, chunk: Iterable[Record]) -> Batch:
        runs: dict[str, RunRecords] = {}
        earlier: list[RunRecords] = []  # pieces of a run closed by a param whose value changed (see PARAMS below)
        clean = self._keys()
        limits = self.backend.limits
        tensors: list[tuple[list[MetricRow], int, Any]] = []  # read together at the end: one device read per batch
        tensor_type = sanitize.tensor_type()
        for record in chunk:
            kind = record[0]
            if kind == METRICS:
                run_id, step, ts, values = record[1:5]  # the spool appends more items
                if type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP:
                    step = self._clean_step(step, values)
                    if step is None:
                        continue
                rr = runs.get(run_id) or runs.setdefault(run_id, RunRecords(run_id))
                metrics = rr.metrics
                append = metrics.append
                for key, value in values.items():  # the per-metric loop of the writer: keep it this short
                    if type(value) is float and type(key) is str and clean is None:
                        append((key, value, step, ts))
                    elif tensor_type is not None and isinstance(value, tensor_type):
                        tensors.append((metrics, len(metrics), value))  # its place, filled by ``_read_tensors``
                        if type(key) is not str or clean is not None:
                            key = self._clean_key(key, clean)
                        append((key, 0.0, step, ts))
                    else:
                        item = self._clean_metric(key, value, clean)
                        if item is not None:
                            append((*item, step, ts))
            elif kind == START:
                start: RunStart = record[1]
                rr = runs.setdefault(start.run_id, RunRecords(start.run_id))
                merged = {**process_tags(), **start.tags}  # host, pid, git commit: read here, not in training
                start.tags = self._texts(merged, clean and clean.tags, limits.max_tag_value_length, "tag")
                rr.start = start
            elif kind == PARAMS:
                self._add_params(runs, earlier, record[1], record[2], clean=clean, limits=limits)
            elif kind == TAGS:
                rr = runs.setdefault(record[1], RunRecords(record[1]))
                rr.tags.update(self._texts(record[2], clean and clean.tags, limits.max_tag_value_length, "tag"))
            elif kind == ARTIFACT:
                runs.setdefault(record[1], RunRecords(record[1])).artifacts.append(record[2])
            elif kind == END:
                end: RunEnd = record[1]
                runs.setdefault(end.run_id, RunRecords(end.run_id)).end = end
        if tensors:
            self._read_tensors(tensors)
        return [*earlier, *runs.values()]  # a run's earlier pieces before its last one

    def _add_params(
        self,
        runs: dict[str, RunRecords],
        earlier: list[RunRecords],
        run_id: str,
        values: dict[Any, Any],
        *,
        clean: sanitize.KeySanitizer | None,
        limits: Limits,
    ) -> None:
        """Add a ``log_params`` call to its run's piece of the batch.

        A param logged again with another value in the same batch starts a new piece of the run (closing the current
        one into ``earlier``): the backend sees both values, in order, as it would with a flush in between (MLflow
        keeps the first and warns, SQLite keeps the last). Merged into one dict, the first value was silently lost,
        so what a store kept depended on batch timing."""
        rr = runs.setdefault(run_id, RunRecords(run_id))
        extra = RunRecords(run_id)  # collects the artifacts of over-long values
        params = self._params(extra, values, clean and clean.params, limits)
        if any(rr.params.get(k, v) != v for k, v in params.items()):
            earlier.append(rr)
            rr = runs[run_id] = RunRecords(run_id)
        rr.params.update(params)
        rr.artifacts.extend(extra.artifacts)

    def _clean_step(self, step: Any, values: dict[Any, Any]) -> int | None:
        """A step as a 64-bit int (numpy and tensor integers, integral floats), or None: the call's metrics are then
        refused, warned about with the step and the keys, and counted (a store would keep a numpy int as bytes, and
        one past 64 bits would fail the whole batch)."""
        try:
            if isinstance(step, float) and step.is_integer():
                step = int(step)
            step = operator.index(step)
            if _MIN_STEP <= step <= _MAX_STEP:
                return step
        except Exception:  # noqa: BLE001 - not an integer: refused below
            pass
        keys = ", ".join(repr(k) for k in list(values)[:5])
        _errors.warn(
            f"autolog: step {sanitize.safe_repr(step)[:80]!r} (type {type(step).__name__}) is not a 64-bit integer; "
            f"the metrics logged with it ({keys}) are not logged",
            once_key=f"badstep:{type(step).__name__}",
        )
        self.counters["dropped.bad_step"] += len(values)
        return None

    def _clean_key(self, key: Any, clean: sanitize.KeySanitizer | None) -> str:
        if type(key) is not str:
            key = sanitize.key_text(key)
        return key if clean is None else clean(key)

    def _clean_metric(self, key: Any, value: Any, clean: sanitize.KeySanitizer | None) -> tuple[str, float] | None:
        """A metric off the common path (a key that is not a string or needs sanitising, a value that is not a
        float): (key, value) as the backend takes them, or None for a value that is not a number (counted)."""
        key = self._clean_key(key, clean)
        if type(value) is not float:
            value = sanitize.to_float(key, value)
            if value is None:
                self.counters["dropped.non_numeric"] += 1
                return None
        return key, value

    def _read_tensors(self, tensors: list[tuple[list[MetricRow], int, Any]]) -> None:
        """Fill in the tensor values of a batch: one stacked read per device (one host-device sync for a batch of
        GPU losses, one release of the GIL instead of one per value); a value that is not one number is warned
        about, counted and removed."""
        values = sanitize.tensors_to_floats([t for _, _, t in tensors])
        refused: dict[int, tuple[list[MetricRow], set[int]]] = {}
        for (metrics, i, tensor), value in zip(tensors, values, strict=True):
            key, _, step, ts = metrics[i]
            if value is None:
                value = sanitize.to_float(key, tensor)
            if value is None:
                self.counters["dropped.non_numeric"] += 1
                refused.setdefault(id(metrics), (metrics, set()))[1].add(i)
                continue
            metrics[i] = (key, value, step, ts)
        for metrics, gone in refused.values():
            metrics[:] = [m for i, m in enumerate(metrics) if i not in gone]

    def _texts(
        self, values: dict[Any, Any], clean: sanitize.KeySanitizer | None, max_len: int | None, what: str
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in values.items():
            key = sanitize.key_text(key)
            if clean is not None:
                key = clean(key)
            text = sanitize.safe_repr(value)
            if max_len is not None and len(text) > max_len:
                _errors.warn(f"autolog: {what} {key!r} is longer than the backend's {max_len} characters; truncated")
                text = text[:max_len]
            out[key] = text
        return out

    def _params(
        self, rr: RunRecords, values: dict[Any, Any], clean: sanitize.KeySanitizer | None, limits: Limits
    ) -> dict[str, str]:
        out = self._texts(values, clean, None, "param")
        max_len = limits.max_param_value_length
        if max_len is None:
            return out
        for key, text in out.items():
            if len(text) > max_len:
                _errors.warn(
                    f"autolog: param {key!r} is {len(text)} characters, over the backend's {max_len}; truncated, "
                    f"full value kept as artifact params/{key}.txt"
                )
                rr.artifacts.append(Artifact.of_bytes(f"params/{key}.txt", text.encode("utf-8")))
                out[key] = text[:max_len]
        return out

    def _write(self, batch: Batch) -> None:
        backend = self.backend
        for part in split(batch, backend.limits):
            self._write_with_retry(backend, part)

    def _write_with_retry(self, backend: Backend, batch: Batch) -> None:
        delay = 0.05
        for attempt in range(self.max_retries + 1):
            try:
                backend.write(batch)
                self.counters["written"] += sum(r.size() for r in batch)
                return
            except Exception as exc:  # noqa: BLE001 - any backend failure is retried, then handed on
                if attempt == self.max_retries or self._stop.is_set():
                    self.on_failure(batch, exc)
                    return
                self.counters["retried"] += 1
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def _drop_failed(self, batch: Batch, exc: BaseException) -> None:
        self._count_drop("backend_error", sum(r.size() for r in batch))
        _errors.warn(
            f"autolog: the backend failed after {self.max_retries} retries ({exc!r}); records dropped and counted",
            once_key=f"backend-error:{type(exc).__name__}",
        )

    def _count_drop(self, reason: str, n: int = 1) -> None:
        self.counters[f"dropped.{reason}"] += n

    def dropped(self) -> dict[str, int]:
        out = {k.split(".", 1)[1]: v for k, v in self.counters.items() if k.startswith("dropped.") and v}
        if self._backend is not None:  # a fan-out backend counts what one of its stores refused
            for reason, n in self._backend.dropped().items():
                out[reason] = out.get(reason, 0) + n
        return out


def _record_size(record: Record) -> int:
    return len(record[4]) if record[0] == METRICS else 1


def split(batch: Batch, limits: Limits) -> list[Batch]:
    """Split a batch so that no write exceeds the backend's declared limits. Per-run order is kept."""
    cap = limits.max_records_per_write
    if cap is None and limits.max_params_per_write is None and limits.max_tags_per_write is None:
        return [batch]
    parts: list[Batch] = []
    for rr in batch:
        parts.extend([p] for p in _split_run(rr, limits))
    return parts


def _split_run(rr: RunRecords, limits: Limits) -> list[RunRecords]:
    cap = limits.max_records_per_write or 1 << 62
    pcap = min(limits.max_params_per_write or cap, cap)
    tcap = min(limits.max_tags_per_write or cap, cap)
    pieces: list[RunRecords] = []
    params, tags = list(rr.params.items()), list(rr.tags.items())
    for i in range(0, len(params), pcap):
        pieces.append(RunRecords(rr.run_id, params=dict(params[i : i + pcap])))
    for i in range(0, len(tags), tcap):
        pieces.append(RunRecords(rr.run_id, tags=dict(tags[i : i + tcap])))
    for i in range(0, len(rr.metrics), cap):
        pieces.append(RunRecords(rr.run_id, metrics=rr.metrics[i : i + cap]))
    if not pieces:
        pieces.append(RunRecords(rr.run_id))
    pieces[0].start = rr.start
    pieces[-1].artifacts = rr.artifacts
    pieces[-1].end = rr.end
    return pieces
