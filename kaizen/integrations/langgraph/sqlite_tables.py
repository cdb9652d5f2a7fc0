"""The saver's tables in the store's SQLite file, on a connection of their own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .sql_tables import CHAIN_WHERE, SqlTables

CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS langgraph_checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id TEXT,
    type TEXT NOT NULL,
    checkpoint BLOB NOT NULL,
    metadata_type TEXT NOT NULL,
    metadata BLOB NOT NULL,
    versions BLOB NOT NULL,
    checksum BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS langgraph_checkpoints_by_run ON langgraph_checkpoints(run_id);
CREATE TABLE IF NOT EXISTS langgraph_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    base_version TEXT,
    item_count INTEGER NOT NULL,
    region_len INTEGER NOT NULL,
    digest BLOB NOT NULL,
    root_version TEXT NOT NULL,
    depth INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);
CREATE INDEX IF NOT EXISTS langgraph_blobs_by_root ON langgraph_blobs(thread_id, checkpoint_ns, channel, root_version, depth);
CREATE TABLE IF NOT EXISTS langgraph_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    value BLOB NOT NULL,
    task_path TEXT NOT NULL,
    checksum BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
"""


class SQLiteTables(SqlTables):
    # group_concat keeps the subquery's order and every byte of a BLOB (NULs included)
    select_chain_joined = (
        "SELECT count(*), count(DISTINCT depth), CAST(group_concat(data, '') AS BLOB) FROM "
        f"(SELECT depth, data FROM langgraph_blobs WHERE {CHAIN_WHERE} ORDER BY depth)"
    )

    create_statements = tuple(statement for statement in CREATE_TABLES.split(";") if statement.strip())

    def __init__(self, path: Path, *, synchronous: str = "FULL", busy_timeout_ms: int = 60_000) -> None:
        super().__init__()
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
