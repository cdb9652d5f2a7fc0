"""SQLite store: the embedded default. One file, WAL, safe for threads and processes.

Writes take the database's write lock up front (``BEGIN IMMEDIATE``, or a lone save's
single statement in autocommit, which takes it as the statement starts) so two
writers queue on the busy timeout instead of failing with "database is locked"
when one upgrades a read lock. Durability is ``synchronous=FULL`` unless the URL
says otherwise (``sqlite:///path?synchronous=NORMAL``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CheckpointConflictError, NotAKaizenStoreError, StorageError
from ..errors import StoreNotFoundError
from .base import (
    checkpoint_not_found,
    lineage_not_found,
    STREAM_NUMBERS, CheckpointRow, LeaseRow, LineageRow, RecordRow, SavePlan, check_lease_free, refuse_write,
)
from .group_commit import CommitterHandle, GroupCommittedWrites
from .sql_common import (
    CHECKPOINT_COLUMNS, KAIZEN_TABLES, as_bytes, delete_agent_rows, lineage_from, lineage_values, record_values,
    records_from, row_from,
)
from .sqlite_packs import CREATE_PACKS, DELETE_AGENT_PACKS, HAS_PACKS, PACK, fill_packs, read_blocks
from .sqlite_shared import ProcessSharedWriter
from .sqlite_writes import (
    INSERT_LINEAGE, SQL, Transaction, insert_checkpoint, insert_unique, open_connection,
)
from .state_backend import StateBackendMixin

SCHEMA_VERSION = 3  # 3: record packs (sqlite_packs.py)

CREATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS lineages (
    lid INTEGER PRIMARY KEY,
    lineage_id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    base_lineage_id TEXT,
    base_checkpoint_id TEXT,
    base_counts TEXT NOT NULL,
    head_checkpoint_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lineages_by_agent ON lineages(agent_id);
CREATE TABLE IF NOT EXISTS records (
    lid INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (lid, stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    checkpoint_id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    lineage_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    step_number INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    status TEXT NOT NULL,
    heads BLOB NOT NULL,
    body BLOB NOT NULL,
    checksum TEXT NOT NULL,
    size_bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_by_agent ON checkpoints(agent_id, seq);
"""
CREATE_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    agent_id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    expires_at REAL NOT NULL
)
"""
UPSERT_LEASE = (
    "INSERT INTO leases (agent_id, worker_id, expires_at) VALUES (?,?,?) "
    "ON CONFLICT(agent_id) DO UPDATE SET worker_id = excluded.worker_id, expires_at = excluded.expires_at"
)
SELECT_LID = "SELECT lid FROM lineages WHERE lineage_id = ?"
SELECT_LIST = f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE agent_id = ? AND timestamp < ? ORDER BY seq DESC"
# One row for a whole history. The aggregate sees the records in primary-key order, so by seq:
# ``records`` is its primary key (WITHOUT ROWID) and has no other index, so every plan walks that
# key (tests/storage/test_stream_chunks.py checks the plan). Cheaper than an ordered subquery (a
# co-routine copying each row); the caller checks count and CRC anyway, so a wrong order could only
# ever be refused, never loaded.
SELECT_STREAM = (
    "SELECT count(*), CAST(group_concat(r.data, ',') AS BLOB) FROM lineages l JOIN records r ON r.lid = l.lid "
    "WHERE l.lineage_id = ? AND r.stream = ? AND r.seq >= ? AND r.seq < ?"
)
SELECT_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
STREAMING_CACHE_PAGES = 16  # the page cache while a long history streams through (read_stream_chunks)
DELETE_CHECKPOINT = "DELETE FROM checkpoints WHERE agent_id = ? AND checkpoint_id = ?"
_FAR_FUTURE = "9999"


class SQLiteStorage(GroupCommittedWrites, StateBackendMixin):
    """Checkpoints in one SQLite file (default ``.kaizen/state.db``).

    ``read_only=True`` opens the file as a ``mode=ro`` URI (plus ``immutable=1`` when its directory
    is not writable, so no ``-wal``/``-shm`` file is needed): nothing is created, migrated or
    switched to WAL, and every write raises ``ReadOnlyStoreError``.
    """

    def __init__(self, path: str | os.PathLike[str] = ".kaizen/state.db", *, synchronous: str = "FULL",
                 busy_timeout_ms: int = 60_000, read_only: bool = False) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StorageError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        self.read_only = read_only
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._ready = False
        self._packed: bool | None = None  # whether the file has record packs (a store of schema 2 has none)
        path, sync = self.path, self.synchronous  # the committer must not keep this store alive
        self._group = CommitterHandle(
            ("sqlite", os.path.realpath(path), sync),
            lambda: ProcessSharedWriter(path, busy_timeout_ms, sync), f"SQLite store {path}")

    # --- connections ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = self._open_read_only() if self.read_only else self._open_for_writing()
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _open_for_writing(self) -> sqlite3.Connection:
        return open_connection(self.path, self.busy_timeout_ms, self.synchronous)

    def _open_read_only(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreNotFoundError(f"{self.path} is a directory, not a SQLite store: name a file in it "
                                     f"(sqlite:///{self.path}/state.db)")
        if not self.path.is_file():
            raise StoreNotFoundError(f"no kaizen store at {self.path}: the file does not exist (opened read-only, "
                                     "so it is not created; check the path or --store)")
        location = Path(os.path.abspath(self.path))
        uri = f"{location.as_uri()}?mode=ro"
        if not os.access(location.parent, os.W_OK):  # no -wal/-shm can be made beside it
            uri += "&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite store {self.path} read-only: {exc}") from exc
        return conn

    def _write(self, what: str) -> Transaction:
        if self.read_only:
            raise refuse_write(self.url, what)
        if not self._ready:
            self.setup()
        return Transaction(self._connect(), self.path)

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if not self._ready:
            self.setup()
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite store {self.path}: {exc}") from exc

    def setup(self) -> None:
        conn = self._connect()
        if self.read_only:
            self._check_schema(conn)
            self._ready = True
            return
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            self._ready = True  # the common case: no write transaction just to open a store
            return
        with Transaction(conn, self.path):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has store schema {version}, newer than this kaizen-state's {SCHEMA_VERSION}"
                )
            if version < 1:
                for statement in CREATE_SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < 2:
                conn.execute(CREATE_LEASES)
            if version < 3:  # packs of the blocks already stored are made by ``fill_packs`` (kaizen vacuum)
                conn.execute(CREATE_PACKS)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._ready = True

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Read-only opening: the file must already hold a kaizen schema this release can read."""
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute(SELECT_TABLES)}
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_CORRUPT":
                raise StorageError(f"the store {self.path} is damaged: SQLite finds the file malformed ({exc}); "
                                   "restore it from a backup") from exc
            raise NotAKaizenStoreError(f"{self.path} is not a kaizen store ({exc}); it was left untouched") from None
        if version < 1 or not set(KAIZEN_TABLES) <= tables:
            raise NotAKaizenStoreError(
                f"{self.path} is not a kaizen store: it holds no kaizen schema (tables: "
                f"{', '.join(sorted(tables)) or 'none'}); it was left untouched. Check --store")
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path} has store schema {version}, newer than this kaizen-state's "
                               f"{SCHEMA_VERSION}: upgrade kaizen-state")

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._ready = False
        self._packed = None
        self._group.release()

    # --- writes --------------------------------------------------------------------------
    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        with self._write(f"import {len(rows)} checkpoints") as conn:
            _insert_history(conn, lineages, records, rows)

    def replace_agent(self, agent_id: str, lineages: list[LineageRow], records: list[RecordRow],
                      rows: list[CheckpointRow]) -> None:
        with self._write(f"rewrite agent {agent_id!r}") as conn:
            conn.execute(DELETE_AGENT_PACKS, (agent_id,))
            delete_agent_rows(conn, SQL, agent_id)
            _insert_history(conn, lineages, records, rows)

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        with self._write(f"delete checkpoints of agent {agent_id!r}") as conn:
            return sum(conn.execute(DELETE_CHECKPOINT, (agent_id, c)).rowcount for c in checkpoint_ids)

    def delete_agent(self, agent_id: str) -> int:
        with self._write(f"delete agent {agent_id!r}") as conn:
            conn.execute(DELETE_AGENT_PACKS, (agent_id,))
            return delete_agent_rows(conn, SQL, agent_id)

    def fill_packs(self) -> int:
        """Give every complete block of every stored history the pack its rows make, where it has
        none (a store written before packs, a pack write cut short) or a damaged one; returns how
        many were written."""
        with self._write("pack stored histories") as conn:
            return fill_packs(conn, [row[0] for row in conn.execute("SELECT lid FROM lineages")])

    def acquire_lease(self, agent_id: str, worker_id: str, ttl: float) -> LeaseRow:
        with self._write(f"take the lease on agent {agent_id!r}") as conn:
            now = time.time()
            held = conn.execute(SQL.select_lease, (agent_id,)).fetchone()
            check_lease_free(agent_id, None if held is None else LeaseRow(agent_id, *held), worker_id, now)
            conn.execute(UPSERT_LEASE, (agent_id, worker_id, now + ttl))
            return LeaseRow(agent_id, worker_id, now + ttl)

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        with self._write(f"release the lease on agent {agent_id!r}") as conn:
            return conn.execute(SQL.delete_lease, (agent_id, worker_id)).rowcount == 1

    # --- reads ---------------------------------------------------------------------------
    def read_checkpoint(self, checkpoint_id: str) -> CheckpointRow:
        rows = self._read(SQL.select_checkpoint, (checkpoint_id,))
        if not rows:
            raise checkpoint_not_found(checkpoint_id, self.url)
        return row_from(rows[0])

    def read_lineage(self, lineage_id: str) -> LineageRow:
        rows = self._read(SQL.select_lineage, (lineage_id,))
        if not rows:
            raise lineage_not_found(lineage_id, self.url)
        return lineage_from(rows[0])

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        return records_from(lineage_id, stream, self._read(SQL.select_records,
                                                           (lineage_id, STREAM_NUMBERS[stream], start, stop)))

    def read_stream(self, lineage_id: str, stream: str, start: int, stop: int) -> tuple[int, bytes]:
        count, joined = self._read(SELECT_STREAM, (lineage_id, STREAM_NUMBERS[stream], start, stop))[0]
        return count, as_bytes(joined) if joined is not None else b""

    def read_stream_chunks(self, lineage_id: str, stream: str, start: int, stop: int, chunk: int,
                           packed: bool = True) -> Iterator[tuple[int, bytes]]:
        """``read_stream`` of ``[start, stop)`` in pieces (see ``base.stream_chunks``): each whole block
        of ``PACK`` entries from its pack when it has one and ``packed`` (``sqlite_packs.py``), the
        rest ``chunk`` records at a time.

        A long history is read once and its pages are not needed again, so meanwhile the
        connection's page cache holds only a few pages: the ones streamed through are recycled
        instead of each taking fresh memory (about 1 MB, and its page faults, per 5,000 records).
        The cache's size is restored afterwards; it refills as later queries need it."""
        if stop - start <= chunk:
            if stop > start:
                yield self.read_stream(lineage_id, stream, start, stop)
            return
        if not self._ready:
            self.setup()
        conn = self._connect()
        try:
            found = conn.execute(SELECT_LID, (lineage_id,)).fetchone()
            if found is None:  # no such lineage: no entries (the caller's count check says what is missing)
                yield 0, b""
                return
            packed = packed and stop - start >= PACK and self._has_packs(conn)
            kept = int(conn.execute("PRAGMA cache_size").fetchone()[0])
            conn.execute(f"PRAGMA cache_size = {STREAMING_CACHE_PAGES}")
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite store {self.path}: {exc}") from exc
        try:
            pieces = read_blocks(conn, int(found[0]), STREAM_NUMBERS[stream], start, stop, chunk, packed)
            while True:
                try:
                    count, joined = next(pieces)
                except StopIteration:
                    break
                except sqlite3.Error as exc:
                    raise StorageError(f"SQLite store {self.path}: {exc}") from exc
                yield count, as_bytes(joined) if joined is not None else b""
        finally:
            try:
                conn.execute(f"PRAGMA cache_size = {kept}")
            except sqlite3.Error:  # a closed connection: nothing left to restore
                pass

    def _has_packs(self, conn: sqlite3.Connection) -> bool:
        if self._packed is None:
            self._packed = conn.execute(HAS_PACKS).fetchone() is not None
        return self._packed

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        rows = self._read(SQL.select_latest, (agent_id,))
        return row_from(rows[0]) if rows else None

    def list_rows(self, agent_id: str, limit: int | None = None, before: str | None = None) -> list[CheckpointRow]:
        sql = SELECT_LIST + ("" if limit is None else f" LIMIT {int(limit)}")
        return [row_from(r) for r in self._read(sql, (agent_id, before or _FAR_FUTURE))]

    def list_lineages(self, agent_id: str) -> list[LineageRow]:
        return [lineage_from(r) for r in self._read(SQL.select_lineages, (agent_id,))]

    def list_agents(self) -> list[str]:
        return [r[0] for r in self._read(SQL.select_agents, ())]


def _insert_history(conn: sqlite3.Connection, lineages: list[LineageRow], records: list[RecordRow],
                    rows: list[CheckpointRow]) -> None:
    for lineage in lineages:
        insert_unique(conn, INSERT_LINEAGE, lineage_values(lineage), f"lineage {lineage.lineage_id!r}")
    lids = {lin.lineage_id: conn.execute(SELECT_LID, (lin.lineage_id,)).fetchone()[0] for lin in lineages}
    for record in records:
        if record.lineage_id not in lids:
            lids[record.lineage_id] = conn.execute(SELECT_LID, (record.lineage_id,)).fetchone()[0]
    conn.executemany(SQL.insert_record, [record_values(lids[r.lineage_id], r) for r in records])
    fill_packs(conn, sorted(set(lids.values())))
    for row in rows:
        insert_checkpoint(conn, row)
