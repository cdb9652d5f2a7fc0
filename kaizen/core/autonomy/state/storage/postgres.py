"""PostgreSQL store: for many processes and machines sharing one history.

Tables live in their own schema (default ``kaizen``; ``postgresql://...?schema=x``),
which is the whole ``search_path`` of every pooled connection. ``setup`` applies
numbered migrations under an advisory lock, so any number of processes may call it
at once. Each save is atomic: the lineage head moves only if it is still the plan's
parent, and an agent's first checkpoint is checked under a per-agent advisory lock,
so two writers can never both win. Saves from this process go through its group
commit on the database (``group_commit.py``, ``pg_writes.py``): saves that arrive
together share one transaction.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from ..errors import LeaseHeldError, StorageError, StoreNotFoundError
from .base import (
    STREAM_NUMBERS, CheckpointRow, LeaseRow, LineageRow, RecordRow, SavePlan, checkpoint_not_found, lineage_not_found,
    refuse_write,
)
from .group_commit import CommitterHandle, GroupCommittedWrites
from .pg_schema import LOCK, SCHEMA_VERSION, check_schema, first, migrate
from .pg_writes import (
    IDLE_CHECK_SECONDS, INSERT_LINEAGE, START_HINT, PostgresBatchWriter, insert_records, reason, storage_error,
)
from .sql_common import (
    CHECKPOINT_COLUMNS, SqlShapes, delete_agent_rows, lineage_from, lineage_values, records_from, row_from, row_values,
)
from .state_backend import StateBackendMixin

__all__ = ["SCHEMA_VERSION", "PostgresStorage", "redact_dsn"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SQL = SqlShapes.for_placeholder("%s")
SELECT_LIST = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE agent_id = %(agent)s "
    "AND (%(before)s::text IS NULL OR timestamp < %(before)s::text) ORDER BY seq DESC LIMIT %(limit)s"
)
# Take the lease if it is free, ours, or expired; otherwise change nothing and return no row.
ACQUIRE_LEASE = (
    "INSERT INTO leases AS l (agent_id, worker_id, expires_at) "
    "VALUES (%(agent)s, %(worker)s, extract(epoch from clock_timestamp()) + %(ttl)s) "
    "ON CONFLICT (agent_id) DO UPDATE SET worker_id = excluded.worker_id, expires_at = excluded.expires_at "
    "WHERE l.worker_id = excluded.worker_id OR l.expires_at < extract(epoch from clock_timestamp()) "
    "RETURNING expires_at"
)
SELECT_STREAM = (
    "SELECT count(*), string_agg(r.data, ','::bytea ORDER BY r.seq) FROM records r JOIN lineages l ON l.lid = r.lid "
    "WHERE l.lineage_id = %s AND r.stream = %s AND r.seq >= %s AND r.seq < %s"
)
DELETE_CHECKPOINTS = "DELETE FROM checkpoints WHERE agent_id = %s AND checkpoint_id = ANY(%s)"


def redact_dsn(dsn: str) -> str:
    """The DSN without its password (URL or ``key=value`` form)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            netloc = f"{userinfo.split(':', 1)[0]}@{host}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
        return parts._replace(netloc=netloc, query=query).geturl()
    try:
        return make_conninfo("", **{k: v for k, v in conninfo_to_dict(dsn).items() if k != "password"})
    except psycopg.Error:
        return re.sub(r"password\s*=\s*('(\\.|[^'])*'|\S+)", "password=***", dsn)


class PostgresStorage(GroupCommittedWrites, StateBackendMixin):
    """Checkpoints in a PostgreSQL schema, through a small connection pool.

    ``read_only=True``: every session runs with ``default_transaction_read_only``, ``setup`` checks
    the schema instead of creating or migrating it, and every write raises ``ReadOnlyStoreError``.
    """

    def __init__(self, dsn: str, *, schema: str = "kaizen", min_size: int = 1, max_size: int = 4,
                 connect_timeout: float = 10.0, read_only: bool = False) -> None:
        self.url = redact_dsn(dsn)
        self.read_only = read_only
        if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
            raise StorageError(
                f"PostgreSQL schema name {schema!r} is not valid for {self.url}: use 1-63 lower-case letters, "
                "digits and _, starting with a letter or _"
            )
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise StorageError(f"invalid PostgreSQL DSN {self.url}: {exc}") from None
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        options = f"{params.get('options', '')} -c search_path={schema}".strip()
        if read_only:
            options += " -c default_transaction_read_only=on"
        self._dbname = str(params.get("dbname") or params.get("user") or "")
        self.dsn = dsn
        self._kwargs: dict[str, Any] = {
            "autocommit": True, "options": options, "connect_timeout": max(1, round(connect_timeout)),
        }
        self._where = f"PostgreSQL store {self.url} (schema {schema})"
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._last_used: dict[int, float] = {}
        self._ready = False
        kwargs, where = self._kwargs, self._where  # the committer must not keep this store alive
        self._group = CommitterHandle(
            ("postgres", dsn, schema),
            lambda: PostgresBatchWriter(dsn, dict(kwargs), where, functools.partial(advisory_key, schema)), where)

    # --- connections ---------------------------------------------------------------------
    def _open_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is not None:
                return self._pool
            try:  # one direct attempt first: it fails fast and says why
                psycopg.connect(self.dsn, **self._kwargs).close()
            except psycopg.Error as exc:
                if f'database "{self._dbname}" does not exist' in str(exc):
                    raise StoreNotFoundError(
                        f"no kaizen store at {self.url}: the database {self._dbname!r} does not exist; create it "
                        f"with `createdb {self._dbname}` (or point the store URL at an existing database)"
                    ) from None
                raise StorageError(f"cannot connect to {self._where}: {reason(exc)} -- {START_HINT}") from None
            # check_connection: a connection broken by a server restart is replaced, not handed out
            self._pool = ConnectionPool(
                self.dsn, kwargs=self._kwargs, min_size=self.min_size, max_size=self.max_size, open=False,
                check=self._check_if_idle, name=f"kaizen-{self.schema}",
            )
            self._pool.open()
            return self._pool

    @contextmanager
    def _connect(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        pool = self._pool if self._pool is not None else self._open_pool()
        try:
            with pool.connection(timeout=self.connect_timeout * 3) as conn:
                yield conn
                self._last_used[id(conn)] = time.monotonic()
        except psycopg.Error as exc:
            raise storage_error(exc, what, self._where) from (None if isinstance(exc, psycopg.errors.UniqueViolation)
                                                              else exc)

    def _check_if_idle(self, conn: psycopg.Connection[Any]) -> None:
        """Ping a pooled connection only if it sat idle a while: a server restart is still caught
        before use, without a round trip on every save."""
        if time.monotonic() - self._last_used.get(id(conn), 0.0) > IDLE_CHECK_SECONDS:
            ConnectionPool.check_connection(conn)

    @contextmanager
    def _write(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        if self.read_only:
            raise refuse_write(self.url, what)
        if not self._ready:
            self.setup()
        with self._connect(what) as conn, conn.transaction():
            yield conn

    def _read(self, what: str, query: str, params: Any) -> list[tuple[Any, ...]]:
        if not self._ready:
            self.setup()
        with self._connect(what) as conn:
            return conn.execute(query, params).fetchall()

    def _lock_key(self, *parts: str) -> int:
        return advisory_key(self.schema, *parts)

    def setup(self) -> None:
        if self.read_only:
            with self._connect("schema check") as conn:
                check_schema(conn, self.schema, self._where)
        else:
            with self._connect("schema setup") as conn:
                migrate(conn, self.schema, self._lock_key("setup"), self._where)
        self._ready = True

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        self._ready = False
        self._group.release()

    # --- writes --------------------------------------------------------------------------
    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        with self._write(f"import of {len(rows)} checkpoints") as conn:
            self._insert_history(conn, lineages, records, rows)

    def replace_agent(self, agent_id: str, lineages: list[LineageRow], records: list[RecordRow],
                      rows: list[CheckpointRow]) -> None:
        with self._write(f"rewrite of agent {agent_id!r}") as conn:
            conn.execute(LOCK, (self._lock_key("agent", agent_id),))
            delete_agent_rows(conn, SQL, agent_id)
            self._insert_history(conn, lineages, records, rows)

    def _insert_history(self, conn: psycopg.Connection[Any], lineages: list[LineageRow], records: list[RecordRow],
                        rows: list[CheckpointRow]) -> None:
        agents = sorted({lin.agent_id for lin in lineages} | {row.agent_id for row in rows})
        for agent_id in agents:  # sorted: two imports never wait on each other in a cycle
            conn.execute(LOCK, (self._lock_key("agent", agent_id),))
        lids = {lin.lineage_id: first(conn.execute(INSERT_LINEAGE, lineage_values(lin)).fetchone())[0]
                for lin in lineages}
        insert_records(conn, [(lids[r.lineage_id], r) for r in records])
        with conn.cursor() as cur:
            cur.executemany(SQL.insert_checkpoint, [row_values(row) for row in rows])

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        with self._write(f"delete of checkpoints of agent {agent_id!r}") as conn:
            return conn.execute(DELETE_CHECKPOINTS, (agent_id, list(checkpoint_ids))).rowcount

    def delete_agent(self, agent_id: str) -> int:
        with self._write(f"delete of agent {agent_id!r}") as conn:
            return delete_agent_rows(conn, SQL, agent_id)

    def acquire_lease(self, agent_id: str, worker_id: str, ttl: float) -> LeaseRow:
        for _ in range(3):  # the holder may release between our two statements: try again
            with self._write(f"lease on agent {agent_id!r}") as conn:
                taken = conn.execute(ACQUIRE_LEASE, {"agent": agent_id, "worker": worker_id, "ttl": ttl}).fetchone()
                if taken is not None:
                    return LeaseRow(agent_id, worker_id, taken[0])
                held = conn.execute(SQL.select_lease, (agent_id,)).fetchone()
            if held is not None:
                raise LeaseHeldError(agent_id, held[0], held[1])
        raise StorageError(f"{self._where}: the lease on agent {agent_id!r} keeps changing hands")

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        with self._write(f"lease release of agent {agent_id!r}") as conn:
            return conn.execute(SQL.delete_lease, (agent_id, worker_id)).rowcount == 1

    # --- reads ---------------------------------------------------------------------------
    def read_checkpoint(self, checkpoint_id: str) -> CheckpointRow:
        rows = self._read(f"read of checkpoint {checkpoint_id!r}", SQL.select_checkpoint, (checkpoint_id,))
        if not rows:
            raise checkpoint_not_found(checkpoint_id, self._where)
        return row_from(rows[0])

    def read_lineage(self, lineage_id: str) -> LineageRow:
        rows = self._read(f"read of lineage {lineage_id!r}", SQL.select_lineage, (lineage_id,))
        if not rows:
            raise lineage_not_found(lineage_id, self._where)
        return lineage_from(rows[0])

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        what = f"read of {stream} records of lineage {lineage_id!r}"
        return records_from(lineage_id, stream,
                            self._read(what, SQL.select_records, (lineage_id, STREAM_NUMBERS[stream], start, stop)))

    def read_stream(self, lineage_id: str, stream: str, start: int, stop: int) -> tuple[int, bytes]:
        if not self._ready:
            self.setup()
        with self._connect(f"read of {stream} records of lineage {lineage_id!r}") as conn:
            with conn.cursor(binary=True) as cur:  # bytea as raw bytes, not hex text twice the size
                count, joined = first(cur.execute(SELECT_STREAM, (lineage_id, STREAM_NUMBERS[stream], start, stop)).fetchone())
        return count, bytes(joined) if joined is not None else b""

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        rows = self._read(f"read of agent {agent_id!r}'s latest checkpoint", SQL.select_latest, (agent_id,))
        return row_from(rows[0]) if rows else None

    def list_rows(self, agent_id: str, limit: int | None = None, before: str | None = None) -> list[CheckpointRow]:
        params = {"agent": agent_id, "before": before, "limit": None if limit is None else int(limit)}
        rows = self._read(f"list of agent {agent_id!r}'s checkpoints", SELECT_LIST, params)
        return [row_from(r) for r in rows]

    def list_lineages(self, agent_id: str) -> list[LineageRow]:
        rows = self._read(f"list of agent {agent_id!r}'s lineages", SQL.select_lineages, (agent_id,))
        return [lineage_from(r) for r in rows]

    def list_agents(self) -> list[str]:
        return [r[0] for r in self._read("list of agents", SQL.select_agents, ())]


def advisory_key(schema: str, *parts: str) -> int:
    """A stable signed 64-bit advisory lock key of a schema (the same in every process)."""
    digest = hashlib.blake2b("\0".join((schema, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
