"""The SQLite store's tables, their version (``PRAGMA user_version``), and the upgrade of a store made by an
earlier autolog.

Metric values are the bulk of a store and of its write cost, so their table carries no index and no text:

* ``metric_values``: one row per value, ``(seq, key_id, step, value, timestamp)``; ``seq`` is the rowid, so
  values are in logged order and a run's values written in one batch are one range of ``seq``.
* ``metric_spans``: ``(run, first, last)``, one row per run per batch: the ``seq`` range the batch gave the run.
  A run's values are read as ranges of the table (no per-row index to keep up on every insert).
* ``metric_last``: ``(run, key_id, seq)``, where each run's last value of each key is: ``Run.metrics`` (and so
  ``autolog runs``) reads a few rows per run instead of all its values. Kept up per batch (a row per key).
* ``metric_keys``: ``(id, key)``, metric names interned once per store.
* ``artifact_files``: ``(run, path, data)``, the files of small artifacts whose content was bytes in memory (a
  scikit-learn model: a pickle and its metadata), kept here instead of as files: a model per fit costs no folder and
  no file. ``artifacts`` lists every artifact, wherever its files are; reading one writes its files out once.
* ``metrics``: a view with the plain shape ``(run, key, step, value, timestamp)`` for SQL by hand.

Rows of ``metric_values`` are never deleted or rewritten: a span stays exact because nothing else takes its
``seq`` range. A version-1 store (the first layout: a ``metrics`` table of text keys indexed by run;
``user_version`` 0) is upgraded in place, in one transaction, the first time this autolog opens it; so is a
version-2 store (no ``artifact_files``: its table is added).
"""

from __future__ import annotations

import sqlite3

VERSION = 3

TABLES = (
    """CREATE TABLE IF NOT EXISTS runs (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        experiment TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        parent_id TEXT,
        start_time REAL NOT NULL,
        end_time REAL
    )""",
    "CREATE TABLE IF NOT EXISTS params (run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run, key))",
    "CREATE TABLE IF NOT EXISTS tags (run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run, key))",
    "CREATE TABLE IF NOT EXISTS metric_keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)",
    """CREATE TABLE IF NOT EXISTS metric_values (
        seq INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, step INTEGER NOT NULL, value REAL, timestamp REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS metric_spans (
        run INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (run, first)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS metric_last (
        run INTEGER NOT NULL, key_id INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (run, key_id)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS artifacts (run INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (run, path))",
    """CREATE TABLE IF NOT EXISTS artifact_files (
        run INTEGER NOT NULL, path TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run, path)
    )""",  # a rowid table: SQLite advises against WITHOUT ROWID for rows as large as a model
    "CREATE TABLE IF NOT EXISTS spool_marks (journal TEXT PRIMARY KEY, confirmed INTEGER NOT NULL)",
)

VIEW = """CREATE VIEW IF NOT EXISTS metrics (run, key, step, value, timestamp) AS
    SELECT s.run, k.key, m.step, m.value, m.timestamp
    FROM metric_spans s
    JOIN metric_values m ON m.seq BETWEEN s.first AND s.last
    JOIN metric_keys k ON k.id = m.key_id"""


class StoreVersionError(RuntimeError):
    """The store was written by a newer autolog, with tables this one does not know."""


def ensure(conn: sqlite3.Connection, path: object) -> None:
    """Create the tables of a new store, or upgrade an old one; a no-op for a store at this version.

    Runs in its own ``BEGIN IMMEDIATE`` transaction, so two processes opening one old store upgrade it once.
    """
    if _version(conn) == VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)
        if version > VERSION:
            raise StoreVersionError(
                f"autolog: the store {path} has schema version {version}, newer than this autolog's {VERSION}; "
                "upgrade autolog to read or write it"
            )
        if version < VERSION:
            old_metrics = _is_table(conn, "metrics")
            for statement in TABLES:
                conn.execute(statement)
            if old_metrics:
                _upgrade_v1_metrics(conn)
            conn.execute(VIEW)
            conn.execute(f"PRAGMA user_version = {VERSION:d}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _is_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def _upgrade_v1_metrics(conn: sqlite3.Connection) -> None:
    """Version 1 kept ``metrics (run, key TEXT, step, value, timestamp)`` indexed by run: copy each run's values
    (in their logged order) into ``metric_values`` as one span, drop the old table and its index, and note each
    run's last value of each key."""
    conn.execute("INSERT OR IGNORE INTO metric_keys (key) SELECT DISTINCT key FROM metrics")
    runs = [r[0] for r in conn.execute("SELECT DISTINCT run FROM metrics ORDER BY run")]
    for run in runs:
        cur = conn.execute(
            "INSERT INTO metric_values (key_id, step, value, timestamp) "
            "SELECT k.id, m.step, m.value, m.timestamp FROM metrics m JOIN metric_keys k ON k.key = m.key "
            "WHERE m.run = ? ORDER BY m.rowid",
            (run,),
        )
        last = conn.execute("SELECT max(seq) FROM metric_values").fetchone()[0]
        conn.execute("INSERT INTO metric_spans VALUES (?, ?, ?)", (run, last - cur.rowcount + 1, last))
    conn.execute("DROP TABLE metrics")
    conn.execute(
        "INSERT INTO metric_last SELECT s.run, m.key_id, max(m.seq) "
        "FROM metric_spans s CROSS JOIN metric_values m ON m.seq BETWEEN s.first AND s.last GROUP BY s.run, m.key_id"
    )
