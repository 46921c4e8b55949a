"""``sqlite:///path/to/runs.db`` — the embedded default store (``./autolog-runs/runs.db``).

WAL mode, one ``BEGIN IMMEDIATE`` transaction per batch, a generous busy timeout: several processes can write
the same file at once. Artifacts are files beside the database, under ``artifacts/<run id>/``.
NaN is stored as NULL (SQLite has no NaN) and read back as NaN.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

from autolog.backends.base import Backend, Limits, RunNotFound
from autolog.records import RUNNING, Batch, MetricRow, Run, RunRecords

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    experiment TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    parent_id TEXT,
    start_time REAL NOT NULL,
    end_time REAL
);
CREATE TABLE IF NOT EXISTS params (run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run, key));
CREATE TABLE IF NOT EXISTS tags (run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run, key));
CREATE TABLE IF NOT EXISTS metrics (run INTEGER NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL,
                                    value REAL, timestamp REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run);  -- (run, key) would halve insert speed
CREATE TABLE IF NOT EXISTS artifacts (run INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (run, path));
CREATE TABLE IF NOT EXISTS spool_marks (journal TEXT PRIMARY KEY, confirmed INTEGER NOT NULL);
"""


# Metrics go in as multi-row INSERTs of up to ROWS rows: one statement per row (executemany) costs SQLite a
# statement start (cursors opened, the table's end sought) per row, ~2.5x the cost of the row itself. ?1 is the
# run's pk; each row binds key, value, step, timestamp. Statement texts: ROWS and every power of two below it.
ROWS = 128


def _insert_sql(rows: int) -> str:
    cells = ",".join(f"(?1,?{i + 2},?{i + 3},?{i + 4},?{i + 5})" for i in range(0, 4 * rows, 4))
    return f"INSERT INTO metrics (run, key, value, step, timestamp) VALUES {cells}"


_INSERT = {rows: _insert_sql(rows) for rows in (ROWS, *(1 << b for b in range(ROWS.bit_length() - 1)))}


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
        self._pks: dict[str, int] = {}

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
            conn.executescript(SCHEMA)
            self._local.conn = conn
        return conn

    def after_fork(self) -> None:
        self._local = threading.local()  # never use the parent's connection in a child
        self._pid = os.getpid()
        self._pks = {}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- write ----------------------------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        for rec in batch:  # files first: a failed transaction is retried and rewrites them
            for art in rec.artifacts:
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
            _insert_metrics(conn, pk, rec.metrics)
        if rec.artifacts:
            conn.executemany("INSERT OR IGNORE INTO artifacts VALUES (?, ?)", [(pk, a.path) for a in rec.artifacts])
        if rec.end is not None:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ? WHERE pk = ?", (rec.end.status, rec.end.end_time, pk)
            )

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
        last = conn.execute(
            "SELECT key, value FROM metrics WHERE rowid IN (SELECT max(rowid) FROM metrics WHERE run = ? GROUP BY key)",
            (pk,),
        )
        run.metrics = {k: (math.nan if v is None else v) for k, v in last}
        return run

    def _pk(self, run_id: str) -> int:
        row = self._read().execute("SELECT pk FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id, self.uri)
        return int(row[0])

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        rows = self._read().execute(
            "SELECT step, value, timestamp FROM metrics WHERE run = ? AND key = ? ORDER BY rowid",
            (self._pk(run_id), key),
        )
        return [(s, math.nan if v is None else v, t) for s, v, t in rows]

    def list_artifacts(self, run_id: str) -> list[str]:
        rows = self._read().execute("SELECT path FROM artifacts WHERE run = ? ORDER BY path", (self._pk(run_id),))
        return [r[0] for r in rows]

    def download_artifact(self, run_id: str, path: str) -> Path:
        self._pk(run_id)
        target = self.artifact_root / run_id / path
        if not target.exists():
            raise FileNotFoundError(f"run {run_id} has no artifact {path!r} (looked in {target})")
        return target


def _insert_metrics(conn: sqlite3.Connection, pk: int, metrics: Sequence[MetricRow]) -> None:
    """Insert (key, value, step, timestamp) rows in logged order (SQLite turns NaN into NULL by itself)."""
    flat = list(chain.from_iterable(metrics))
    execute, end, i = conn.execute, len(flat), 0
    full = 4 * ROWS
    while end - i >= full:
        execute(_INSERT[ROWS], [pk, *flat[i : i + full]])
        i += full
    rows = ROWS >> 1
    while i < end:  # the rest in powers of two: a handful of fixed statement texts, all cached
        if end - i >= 4 * rows:
            execute(_INSERT[rows], [pk, *flat[i : i + 4 * rows]])
            i += 4 * rows
        rows >>= 1
