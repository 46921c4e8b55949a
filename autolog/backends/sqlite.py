"""``sqlite:///path/to/runs.db`` — the embedded default store (``./autolog-runs/runs.db``).

WAL mode, one ``BEGIN IMMEDIATE`` transaction per batch, a generous busy timeout: several processes can write
the same file at once. Artifacts are files beside the database, under ``artifacts/<run id>/``, except small ones
whose content is already bytes in memory (``Artifact.files``, up to ``INLINE_MAX``: a scikit-learn model per fit),
which are kept in the database, in the batch's transaction, and written out there the first time they are read.
NaN is stored as NULL (SQLite has no NaN) and read back as NaN. The tables, their version and the upgrade of an
older store: ``_sqlite_schema``.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

from autolog.backends import _sqlite_schema
from autolog.backends.base import Backend, Limits, RunNotFound
from autolog.records import RUNNING, Artifact, Batch, MetricRow, Run, RunRecords

# An artifact of bytes in memory up to this size goes in the database: no folder and no file to create (on this
# kind of machine two folders and two files cost the writer ~0.3-0.7 ms a model, SQLite rows ~0.03 ms).
INLINE_MAX = 1 << 20

# Metrics go in as multi-row INSERTs of up to ROWS rows: one statement per row (executemany) costs SQLite a
# statement start (cursors opened, the table's end sought) per row, ~2.5x the cost of the row itself. Each row binds
# key id, value, step, timestamp. Statement texts: ROWS rows and every power of two below it (all stay cached).
ROWS = 128
_INSERT = {
    rows: "INSERT INTO metric_values (key_id, value, step, timestamp) VALUES " + ",".join(["(?,?,?,?)"] * rows)
    for rows in (ROWS, *(1 << b for b in range(ROWS.bit_length() - 1)))
}
_LAST_VALUES = """
    SELECT k.key, m.value FROM metric_last l JOIN metric_values m ON m.seq = l.seq JOIN metric_keys k ON k.id = l.key_id
    WHERE l.run = ?"""
_NOTE_LAST = (
    "INSERT INTO metric_last VALUES (?, ?, ?) ON CONFLICT (run, key_id) DO UPDATE SET seq = max(seq, excluded.seq)"
)
_HISTORY = """
    SELECT m.step, m.value, m.timestamp
    FROM metric_spans s CROSS JOIN metric_values m ON m.seq BETWEEN s.first AND s.last
    WHERE s.run = ? AND m.key_id = (SELECT id FROM metric_keys WHERE key = ?) ORDER BY s.first, m.seq"""
# CROSS JOIN: SQLite keeps the spans as the outer loop; left to itself it scans every value for the ORDER BY


def _chunk_sizes(n: int) -> list[int]:
    """``n`` rows as statements of ROWS rows, then the rest in powers of two (largest first)."""
    rest = n % ROWS
    return [ROWS] * (n // ROWS) + [1 << b for b in reversed(range(ROWS.bit_length())) if rest >> b & 1]


def path_from_uri(uri: str) -> Path:
    """``sqlite:///rel/path.db`` is relative to the working directory, ``sqlite:////abs/path.db`` absolute."""
    if not uri.startswith("sqlite:///"):
        raise ValueError(f"autolog: a SQLite backend URI looks like sqlite:///path/to/runs.db, got {uri!r}")
    rest = uri[len("sqlite:///") :]
    if not rest or rest == "/":
        raise ValueError(f"autolog: the SQLite URI {uri!r} names no file")
    return Path(rest)


class SqliteBackend(Backend):
    limits = Limits(max_records_per_write=None)

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.path = path_from_uri(uri)
        self.artifact_root = self.path.parent / "artifacts"
        self._local = threading.local()
        self._pid = os.getpid()
        self._pks: dict[str, int] = {}  # run id -> runs.pk
        self._key_ids: dict[str, int] = {}  # metric key -> metric_keys.id
        self._fresh: list[tuple[dict[str, int], str]] = []  # cache entries made in the open transaction

    # -- connection ---------------------------------------------------------------------------------------
    def _conn(self, create: bool = True) -> sqlite3.Connection:
        if self._pid != os.getpid():
            self.after_fork()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not create and not self.path.exists():
                raise FileNotFoundError(f"no autolog store at {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                _sqlite_schema.ensure(conn, self.path)
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def after_fork(self) -> None:
        self._local = threading.local()  # never use the parent's connection in a child
        self._pid = os.getpid()
        self._pks, self._key_ids, self._fresh = {}, {}, []

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        committed = False
        try:
            yield conn
            conn.execute("COMMIT")
            committed = True
        finally:
            if not committed:
                if conn.in_transaction:  # a failed COMMIT may have rolled back already
                    conn.execute("ROLLBACK")
                for cache, key in self._fresh:  # a pk or key id taken back may go to another process's run or key
                    cache.pop(key, None)
            self._fresh.clear()

    # -- write ----------------------------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        for rec in batch:  # files first: a failed transaction is retried and rewrites them
            for art in rec.artifacts:
                if _inline(art) is not None:
                    continue  # in the transaction, below
                target = self.artifact_root / rec.run_id / art.path
                target.parent.mkdir(parents=True, exist_ok=True)
                art.write(target)
        mark = getattr(batch, "spool_mark", None)  # (journal id, offset): confirmed in the same transaction
        with self._transaction() as conn:
            for rec in batch:
                self._write_run(conn, rec)
            if mark is not None:
                conn.execute(
                    "INSERT INTO spool_marks VALUES (?, ?) ON CONFLICT (journal) "
                    "DO UPDATE SET confirmed = max(confirmed, excluded.confirmed)",
                    mark,
                )

    def spool_mark(self, journal: str) -> int | None:
        """The spool offset of ``journal`` this store has confirmed (see autolog.spool), None if none."""
        if not self.path.exists():
            return None
        row = self._conn().execute("SELECT confirmed FROM spool_marks WHERE journal = ?", (journal,)).fetchone()
        return None if row is None else int(row[0])

    def _run_pk(self, conn: sqlite3.Connection, rec: RunRecords) -> int:
        pk = self._pks.get(rec.run_id)
        if pk is not None:
            return pk
        s = rec.start
        if s is not None:
            conn.execute(
                "INSERT OR IGNORE INTO runs (id, experiment, name, status, parent_id, start_time) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (s.run_id, s.experiment, s.name, RUNNING, s.parent_id, s.start_time),
            )
        row = conn.execute("SELECT pk FROM runs WHERE id = ?", (rec.run_id,)).fetchone()
        if row is None:  # records for a run whose start we never saw: keep them, under a placeholder run
            first = rec.metrics[0][3] if rec.metrics else 0.0
            cur = conn.execute(
                "INSERT INTO runs (id, experiment, name, status, start_time) VALUES (?, 'Default', ?, ?, ?)",
                (rec.run_id, rec.run_id[:8], RUNNING, first),
            )
            row = (cur.lastrowid,)
        self._pks[rec.run_id] = int(row[0])
        self._fresh.append((self._pks, rec.run_id))
        return int(row[0])

    def _write_run(self, conn: sqlite3.Connection, rec: RunRecords) -> None:
        pk = self._run_pk(conn, rec)
        tags = dict(rec.start.tags) if rec.start is not None else {}
        tags.update(rec.tags)
        if tags:
            conn.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [(pk, k, v) for k, v in tags.items()])
        if rec.params:
            conn.executemany(
                "INSERT OR REPLACE INTO params VALUES (?, ?, ?)", [(pk, k, v) for k, v in rec.params.items()]
            )
        if rec.metrics:
            self._insert_metrics(conn, pk, rec.metrics)
        for art in rec.artifacts:
            self._write_artifact(conn, pk, rec.run_id, art)
        if rec.end is not None:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ? WHERE pk = ?", (rec.end.status, rec.end.end_time, pk)
            )

    def _write_artifact(self, conn: sqlite3.Connection, pk: int, run_id: str, art: Artifact) -> None:
        """List the artifact; keep its files here when it is inline. Logged again, the new content replaces the old
        wherever that was (rows here, files written earlier, or a copy written out by a read)."""
        path = art.path
        files = _inline(art)
        if not conn.execute("INSERT OR IGNORE INTO artifacts VALUES (?, ?)", (pk, path)).rowcount:
            conn.execute(_DELETE_FILES, (pk, path, path + "/", path + "0"))
            if files is not None:
                _remove(self.artifact_root / run_id / path)
        if files is not None:
            conn.executemany(
                "INSERT INTO artifact_files VALUES (?, ?, ?)",
                [(pk, f"{path}/{name}" if name else path, data) for name, data in files.items()],
            )

    def _insert_metrics(self, conn: sqlite3.Connection, pk: int, metrics: Sequence[MetricRow]) -> None:
        """Insert (key, value, step, timestamp) rows in logged order as one ``seq`` range; note the range as the run's
        span and each key's last row (SQLite turns NaN into NULL by itself)."""
        flat: list[Any] = list(chain.from_iterable(metrics))  # key, value, step, timestamp, key, ...
        keys = flat[0::4]
        try:
            flat[0::4] = map(self._key_ids.__getitem__, keys)
        except KeyError:
            self._intern(conn, keys)
            flat[0::4] = map(self._key_ids.__getitem__, keys)
        execute, i, first, last = conn.execute, 0, 0, 0
        for rows in _chunk_sizes(len(metrics)):
            last = execute(_INSERT[rows], flat[i : i + 4 * rows]).lastrowid or 0
            first = first or last - rows + 1
            i += 4 * rows
        if last - first + 1 != len(metrics):  # rowids are max + 1 under the write lock: cannot happen
            raise RuntimeError(f"autolog: metric rows of one batch are not contiguous in {self.path}")
        execute("INSERT INTO metric_spans VALUES (?, ?, ?)", (pk, first, last))
        last_of = dict(zip(flat[0::4], range(first, last + 1), strict=True))  # key id -> its last seq in this batch
        conn.executemany(_NOTE_LAST, [(pk, kid, seq) for kid, seq in last_of.items()])

    def _intern(self, conn: sqlite3.Connection, keys: list[str]) -> None:
        for key in dict.fromkeys(keys):
            if key not in self._key_ids:
                conn.execute("INSERT OR IGNORE INTO metric_keys (key) VALUES (?)", (key,))
                (kid,) = conn.execute("SELECT id FROM metric_keys WHERE key = ?", (key,)).fetchone()
                self._key_ids[key] = int(kid)
                self._fresh.append((self._key_ids, key))

    # -- read -----------------------------------------------------------------------------------------------
    def _read(self) -> sqlite3.Connection:
        try:
            return self._conn(create=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"no autolog store at {self.path}") from None

    def search_runs(self, experiment: str | None = None) -> list[Run]:
        if not self.path.exists():
            return []  # nothing logged here yet
        conn = self._read()
        sql = "SELECT id FROM runs" + (" WHERE experiment = ?" if experiment is not None else "")
        sql += " ORDER BY start_time DESC, pk DESC"
        ids = [r[0] for r in conn.execute(sql, () if experiment is None else (experiment,))]
        return [self.get_run(i) for i in ids]

    def get_run(self, run_id: str) -> Run:
        conn = self._read()
        row = conn.execute(
            "SELECT pk, id, experiment, name, status, parent_id, start_time, end_time FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise RunNotFound(run_id, self.uri)
        pk = row[0]
        run = Run(*row[1:])
        run.params = dict(conn.execute("SELECT key, value FROM params WHERE run = ?", (pk,)).fetchall())
        run.tags = dict(conn.execute("SELECT key, value FROM tags WHERE run = ?", (pk,)).fetchall())
        run.metrics = {k: (math.nan if v is None else v) for k, v in conn.execute(_LAST_VALUES, (pk,))}
        return run

    def _pk(self, run_id: str) -> int:
        row = self._read().execute("SELECT pk FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id, self.uri)
        return int(row[0])

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        rows = self._read().execute(_HISTORY, (self._pk(run_id), key))
        return [(s, math.nan if v is None else v, t) for s, v, t in rows]

    def list_artifacts(self, run_id: str) -> list[str]:
        rows = self._read().execute("SELECT path FROM artifacts WHERE run = ? ORDER BY path", (self._pk(run_id),))
        return [r[0] for r in rows]

    def download_artifact(self, run_id: str, path: str) -> Path:
        pk = self._pk(run_id)
        target = self.artifact_root / run_id / path
        rows = self._read().execute(_SELECT_FILES, (pk, path, path + "/", path + "0")).fetchall()
        if target.exists():
            # a folder of several artifacts may hold files and inline ones (``params/`` with one value over the
            # inline limit): write out those not there yet, each whole
            for name, data in rows if target.is_dir() else ():
                if not (self.artifact_root / run_id / name).exists():
                    _write_out(self.artifact_root / run_id / name, name, [(name, data)])
            return target
        if not rows:
            raise FileNotFoundError(f"run {run_id} has no artifact {path!r} (looked in {target} and in {self.path})")
        _write_out(target, path, rows)
        return target


# The rows of one artifact: the file ``path`` itself, or every file under ``path/`` (a range of the primary key:
# "0" is the character after "/").
_FILES_OF = "run = ? AND (path = ? OR (path >= ? AND path < ?))"
_SELECT_FILES = f"SELECT path, data FROM artifact_files WHERE {_FILES_OF} ORDER BY path"
_DELETE_FILES = f"DELETE FROM artifact_files WHERE {_FILES_OF}"


def _inline(art: Artifact) -> dict[str, bytes] | None:
    """The artifact's files when they are bytes in memory and small enough for the database, else None."""
    files = art.files
    if files is None or sum(len(data) for data in files.values()) > INLINE_MAX:
        return None
    return files


def _write_out(target: Path, path: str, rows: list[tuple[str, bytes]]) -> None:
    """Write an inline artifact's files to ``target`` (a file or a folder), whole or not at all: built under a
    temporary name beside it and renamed, so a reader never sees half of it and two readers at once both succeed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        for name, data in rows:
            rel = name[len(path) + 1 :]
            dest = tmp / rel if rel else tmp
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():  # not a reader that got there first
                raise
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
