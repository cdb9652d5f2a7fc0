"""The saver's rows in SQL: the same statements for SQLite and PostgreSQL.

The tables live in the store's SQLite file or PostgreSQL schema, next to the
store's own tables, under names of their own (``langgraph_*``). Statements are
written once with ``?`` placeholders; the PostgreSQL side swaps them for ``%s``.
Only the table definitions and connecting differ (``sqlite_tables.py``,
``postgres_tables.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .encoding import DELTA, WHOLE, BlobMeta, Chain, StoredBlob
from .rows import BlobKey, CheckpointRecord, ListQuery, MissingBaseError, NewBlob, WriteRecord

CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, "
    "metadata_type, metadata, versions, checksum"
)
BLOB_COLUMNS = "version, kind, type, base_version, item_count, region_len, digest, root_version, depth, data"
WRITE_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value, task_path, checksum"

INSERT_CHECKPOINT = (
    f"INSERT INTO langgraph_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type, "
    "checkpoint = excluded.checkpoint, metadata_type = excluded.metadata_type, metadata = excluded.metadata, "
    "versions = excluded.versions, checksum = excluded.checksum"
)
INSERT_BLOB = (
    f"INSERT INTO langgraph_blobs (thread_id, checkpoint_ns, channel, {BLOB_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
)
SELECT_BLOB_EXISTS = (
    "SELECT 1 FROM langgraph_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
)
SELECT_CHECKPOINT = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM langgraph_checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)
SELECT_LATEST = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM langgraph_checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1"
)
SELECT_LIST = f"SELECT {CHECKPOINT_COLUMNS} FROM langgraph_checkpoints"
LIST_CONDITIONS = {
    "thread_id": "thread_id = ?",
    "checkpoint_ns": "checkpoint_ns = ?",
    "checkpoint_id": "checkpoint_id = ?",
    "before_id": "checkpoint_id < ?",
}
LIST_ORDER = " ORDER BY checkpoint_id DESC"
# One channel version by primary key; a checkpoint's channels are these joined by UNION ALL.
SELECT_BLOB = (
    f"SELECT channel, {BLOB_COLUMNS} FROM langgraph_blobs "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
)
# The rest of a delta's chain: one range scan over the versions sharing its root.
SELECT_CHAIN = (
    "SELECT version, base_version, kind, data FROM langgraph_blobs WHERE thread_id = ? AND checkpoint_ns = ? "
    "AND channel = ? AND root_version = ? AND depth < ? ORDER BY depth"
)
CHAIN_WHERE = "thread_id = ? AND checkpoint_ns = ? AND channel = ? AND root_version = ? AND depth < ?"
SELECT_BLOB_META = (
    "SELECT kind, item_count, region_len, digest, root_version, depth FROM langgraph_blobs "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
)
INSERT_WRITE = f"INSERT INTO langgraph_writes ({WRITE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
INSERT_WRITE_KEEP = f"{INSERT_WRITE} ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING"
INSERT_WRITE_REPLACE = (
    f"{INSERT_WRITE} ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET "
    "channel = excluded.channel, type = excluded.type, value = excluded.value, task_path = excluded.task_path, "
    "checksum = excluded.checksum"
)
SELECT_WRITES = (
    f"SELECT {WRITE_COLUMNS} FROM langgraph_writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
    "ORDER BY task_path, task_id, idx"
)
SELECT_WRITE = (
    f"SELECT {WRITE_COLUMNS} FROM langgraph_writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
    "AND task_id = ? AND idx = ?"
)
DELETE_THREAD = (
    "DELETE FROM langgraph_checkpoints WHERE thread_id = ?",
    "DELETE FROM langgraph_blobs WHERE thread_id = ?",
    "DELETE FROM langgraph_writes WHERE thread_id = ?",
)
DELETE_CHECKPOINT = (
    "DELETE FROM langgraph_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
    "DELETE FROM langgraph_writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
)
SELECT_RUN_CHECKPOINTS = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id FROM langgraph_checkpoints WHERE run_id = ?"
)
SELECT_THREAD_CHECKPOINTS = (
    "SELECT checkpoint_ns, checkpoint_id, versions FROM langgraph_checkpoints WHERE thread_id = ?"
)
SELECT_THREAD_BLOBS = "SELECT checkpoint_ns, channel, version, base_version FROM langgraph_blobs WHERE thread_id = ?"
DELETE_BLOB = "DELETE FROM langgraph_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
COPY_THREAD = (
    f"INSERT INTO langgraph_checkpoints ({CHECKPOINT_COLUMNS}) SELECT ?, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, run_id, type, checkpoint, metadata_type, metadata, versions, checksum "
    "FROM langgraph_checkpoints WHERE thread_id = ? ON CONFLICT DO NOTHING",
    f"INSERT INTO langgraph_blobs (thread_id, checkpoint_ns, channel, {BLOB_COLUMNS}) SELECT ?, checkpoint_ns, "
    f"channel, {BLOB_COLUMNS} FROM langgraph_blobs WHERE thread_id = ? ON CONFLICT DO NOTHING",
    f"INSERT INTO langgraph_writes ({WRITE_COLUMNS}) SELECT ?, checkpoint_ns, checkpoint_id, task_id, idx, channel, "
    "type, value, task_path, checksum FROM langgraph_writes WHERE thread_id = ? ON CONFLICT DO NOTHING",
)
SELECT_STORED_BYTES = (
    "SELECT (SELECT coalesce(sum(length(checkpoint) + length(metadata) + length(versions)), 0) "
    "FROM langgraph_checkpoints WHERE thread_id = ?) + (SELECT coalesce(sum(length(data)), 0) "
    "FROM langgraph_blobs WHERE thread_id = ?) + (SELECT coalesce(sum(length(value)), 0) "
    "FROM langgraph_writes WHERE thread_id = ?)"
)


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _checkpoint(row: Sequence[Any]) -> CheckpointRecord:
    thread, ns, cid, parent, run, type_, checkpoint, md_type, md, versions, checksum = row
    return CheckpointRecord(thread, ns, cid, parent, run, type_, _bytes(checkpoint), md_type, _bytes(md),
                            _bytes(versions), _bytes(checksum))


def _blob(row: Sequence[Any]) -> StoredBlob:
    version, kind, type_, base, count, region_len, digest, root, depth, data = row
    return StoredBlob(version, kind, type_, base, int(count), int(region_len), _bytes(digest), root, int(depth),
                      _bytes(data))


def _write(row: Sequence[Any]) -> WriteRecord:
    thread, ns, cid, task_id, idx, channel, type_, value, task_path, checksum = row
    return WriteRecord(thread, ns, cid, task_id, int(idx), channel, type_, _bytes(value), task_path, _bytes(checksum))


def _chain(target: StoredBlob, rows: list[Any]) -> Chain:
    """Target's chain from the versions sharing its root, in depth order. Without forks they are
    exactly its chain (checked pointer by pointer); otherwise walk the base pointers."""
    linear = len(rows) == target.depth and rows[0][2] == WHOLE and target.base_version == rows[-1][0]
    if linear:
        linear = all(rows[i][1] == rows[i - 1][0] for i in range(1, len(rows)))
    if linear:
        return Chain(target, WHOLE, rows[0][0], _bytes(rows[0][3]), [*(_bytes(r[3]) for r in rows[1:]), target.data])
    by_version = {
        version: StoredBlob(version, kind, "", base, 0, 0, b"", "", 0, _bytes(data)) for version, base, kind, data in rows
    }
    return Chain.walk(target, by_version)


class SqlTables:
    """Runs the statements above over one connection, serialized by a lock (LangGraph calls a
    saver from its executor threads and, through the async methods, from worker threads)."""

    placeholder = "?"
    # (how many versions, how many distinct depths, their data joined in depth order) of CHAIN_WHERE
    select_chain_joined = ""

    # run in one transaction by setup(): CREATE ... IF NOT EXISTS, safe to repeat
    create_statements: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sql_cache: dict[str, str] = {}
        self._conn: Any = None

    # --- what a dialect provides -----------------------------------------------------------
    def _open(self) -> Any:
        """A new DB-API connection in autocommit mode (transactions are explicit)."""
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """The connection, inside one transaction (holding the lock)."""
        raise NotImplementedError
        yield

    # --- connection ------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None or getattr(self._conn, "closed", False):
            self._conn = self._open()
        return self._conn

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement outside an explicit transaction; all rows."""
        with self._lock:
            rows: list[Any] = self._connection().execute(sql, params).fetchall()
            return rows

    def setup(self) -> None:
        with self._transaction() as tx:
            for statement in self.create_statements:
                tx.execute(statement)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _sql(self, sql: str) -> str:
        if self.placeholder == "?":
            return sql
        cached = self._sql_cache.get(sql)
        if cached is None:
            cached = self._sql_cache[sql] = sql.replace("?", self.placeholder)
        return cached

    # --- the protocol ----------------------------------------------------------------------
    def put_checkpoint(self, record: CheckpointRecord, blobs: Sequence[NewBlob]) -> None:
        with self._transaction() as tx:
            for new in blobs:
                base = new.blob.base_version
                if base is not None and not tx.execute(
                    self._sql(SELECT_BLOB_EXISTS), (new.thread_id, new.checkpoint_ns, new.channel, base)
                ).fetchone():
                    raise MissingBaseError(new.channel)
            if blobs:
                tx.cursor().executemany(self._sql(INSERT_BLOB), [(
                    new.thread_id, new.checkpoint_ns, new.channel, new.version, new.blob.kind, new.blob.type,
                    new.blob.base_version, new.blob.meta.item_count, new.blob.meta.region_len, new.blob.meta.digest,
                    new.blob.meta.root_version, new.blob.meta.depth, new.blob.data,
                ) for new in blobs])
            tx.execute(self._sql(INSERT_CHECKPOINT), (
                record.thread_id, record.checkpoint_ns, record.checkpoint_id, record.parent_checkpoint_id,
                record.run_id, record.type, record.checkpoint, record.metadata_type, record.metadata,
                record.versions, record.checksum,
            ))

    def get_checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRecord | None:
        if checkpoint_id is None:
            rows = self._run(self._sql(SELECT_LATEST), (thread_id, checkpoint_ns))
        else:
            rows = self._run(self._sql(SELECT_CHECKPOINT), (thread_id, checkpoint_ns, checkpoint_id))
        return _checkpoint(rows[0]) if rows else None

    def list_checkpoints(self, query: ListQuery) -> list[CheckpointRecord]:
        conditions, params = [], []
        for name, condition in LIST_CONDITIONS.items():
            value = getattr(query, name)
            if value is not None:
                conditions.append(condition)
                params.append(value)
        sql = SELECT_LIST + (" WHERE " + " AND ".join(conditions) if conditions else "") + LIST_ORDER
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [_checkpoint(row) for row in self._run(self._sql(sql), params)]

    def blob_chains(self, thread_id: str, checkpoint_ns: str, versions: dict[str, str]) -> dict[str, Chain]:
        if not versions:
            return {}
        key = f"blobs:{len(versions)}"
        sql = self._sql_cache.get(key)
        if sql is None:
            sql = self._sql_cache[key] = self._sql(" UNION ALL ".join([SELECT_BLOB] * len(versions)))
        params = [part for pair in versions.items() for part in (thread_id, checkpoint_ns, *pair)]
        chains: dict[str, Chain] = {}
        for row in self._run(sql, params):
            target = _blob(row[1:])
            if target.kind != DELTA:
                chains[row[0]] = Chain(target, target.kind, target.version, target.data, [])
                continue
            where = (thread_id, checkpoint_ns, row[0], target.root_version, target.depth)
            count, depths, joined = self._run(self._sql(self.select_chain_joined), where)[0]
            if count == depths == target.depth:  # one version per depth: exactly target's ancestors
                chains[row[0]] = Chain(target, WHOLE, target.root_version, _bytes(joined), [target.data])
            else:  # other forks share the root: follow the base pointers
                chains[row[0]] = _chain(target, self._run(self._sql(SELECT_CHAIN), where))
        return chains

    def blob_meta(self, thread_id: str, checkpoint_ns: str, channel: str, version: str) -> BlobMeta | None:
        rows = self._run(self._sql(SELECT_BLOB_META), (thread_id, checkpoint_ns, channel, version))
        if not rows:
            return None
        kind, count, region_len, digest, root, depth = rows[0]
        return BlobMeta(kind, int(count), int(region_len), _bytes(digest), root, int(depth))

    def put_writes(self, records: Sequence[WriteRecord]) -> None:
        with self._transaction() as tx:
            for r in records:
                sql = INSERT_WRITE_REPLACE if r.idx < 0 else INSERT_WRITE_KEEP
                tx.execute(self._sql(sql), (
                    r.thread_id, r.checkpoint_ns, r.checkpoint_id, r.task_id, r.idx, r.channel, r.type, r.value,
                    r.task_path, r.checksum,
                ))

    def get_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRecord]:
        return [_write(row) for row in self._run(self._sql(SELECT_WRITES), (thread_id, checkpoint_ns, checkpoint_id))]

    def get_write(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str,
                  idx: int) -> WriteRecord | None:
        rows = self._run(self._sql(SELECT_WRITE), (thread_id, checkpoint_ns, checkpoint_id, task_id, idx))
        return _write(rows[0]) if rows else None

    def delete_thread(self, thread_id: str) -> None:
        with self._transaction() as tx:
            for sql in DELETE_THREAD:
                tx.execute(self._sql(sql), (thread_id,))

    def delete_checkpoints(self, keys: Iterable[tuple[str, str, str]]) -> None:
        with self._transaction() as tx:
            for key in keys:
                for sql in DELETE_CHECKPOINT:
                    tx.execute(self._sql(sql), key)

    def checkpoints_of_runs(self, run_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        for run_id in run_ids:
            found.extend(tuple(row) for row in self._run(self._sql(SELECT_RUN_CHECKPOINTS), (run_id,)))
        return found

    def thread_checkpoints(self, thread_id: str) -> list[tuple[str, str, bytes]]:
        return [(ns, cid, _bytes(v)) for ns, cid, v in self._run(self._sql(SELECT_THREAD_CHECKPOINTS), (thread_id,))]

    def thread_blobs(self, thread_id: str) -> list[tuple[str, str, str, str | None]]:
        return [tuple(row) for row in self._run(self._sql(SELECT_THREAD_BLOBS), (thread_id,))]

    def delete_blobs(self, thread_id: str, keys: Sequence[BlobKey]) -> None:
        with self._transaction() as tx:
            for ns, channel, version in keys:
                tx.execute(self._sql(DELETE_BLOB), (thread_id, ns, channel, version))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._transaction() as tx:
            for sql in COPY_THREAD:
                tx.execute(self._sql(sql), (target_thread_id, source_thread_id))

    def stored_bytes(self, thread_id: str) -> int:
        return int(self._run(self._sql(SELECT_STORED_BYTES), (thread_id,) * 3)[0][0])
