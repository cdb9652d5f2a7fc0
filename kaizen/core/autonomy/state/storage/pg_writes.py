"""How the PostgreSQL store writes a save, and the group-commit writer that puts the saves of many
agents in this process into one transaction (one WAL flush) on one connection (``group_commit.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ..errors import CheckpointConflictError, StorageError
from .base import STREAM_NUMBERS, SavePlan
from .pg_schema import LOCK, first
from .sql_common import (
    CHECKPOINT_COLUMNS, LINEAGE_COLUMNS, SqlShapes, head_conflict, lineage_values, record_values, row_values,
)

SQL = SqlShapes.for_placeholder("%s")
INSERT_LINEAGE = f"INSERT INTO lineages ({LINEAGE_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s) RETURNING lid"
COPY_RECORDS = "COPY records (lid, stream, seq, data, hash) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ("integer", "smallint", "integer", "bytea", "bytea")
COPY_THRESHOLD = 64  # records above which COPY beats a pipelined executemany
# The common save in ONE statement (one round trip, atomic in autocommit): move the head if it is
# still the parent, add the new records and the checkpoint row. No row back: someone else moved it.
APPEND = """
WITH moved AS (
    UPDATE lineages SET head_checkpoint_id = %(id)s
    WHERE lineage_id = %(lineage)s AND head_checkpoint_id IS NOT DISTINCT FROM %(expected)s
    RETURNING lid
), recs AS (
    INSERT INTO records (lid, stream, seq, data, hash)
    {records}
)
INSERT INTO checkpoints ({columns})
SELECT %(c0)s, %(c1)s, %(c2)s, %(c3)s, %(c4)s, %(c5)s, %(c6)s, %(c7)s, %(c8)s, %(c9)s, %(c10)s FROM moved
RETURNING 1
"""
APPEND_SQL = APPEND.replace("{columns}", CHECKPOINT_COLUMNS).replace("{records}", """SELECT moved.lid, r.stream, r.seq, r.data, r.hash FROM moved,
        unnest(%(streams)s::smallint[], %(seqs)s::integer[], %(datas)s::bytea[], %(hashes)s::bytea[])
        AS r(stream, seq, data, hash)""")
# The usual save adds one record (an approval, a message): its values go as plain parameters, which
# psycopg adapts several times faster than arrays.
APPEND_ONE_SQL = APPEND.replace("{columns}", CHECKPOINT_COLUMNS).replace(
    "{records}", "SELECT moved.lid, %(stream)s::smallint, %(seq)s::integer, %(data)s::bytea, %(hash)s::bytea FROM moved")
# Many such saves in ONE statement (one round trip, one transaction in autocommit, one WAL flush):
# every head that is still its save's parent moves, and only those saves add records and a row.
# Two saves on one lineage: one moves it, the other gets no row back (its conflict).
APPEND_MANY = """
WITH saves AS (
    SELECT * FROM unnest(%(ord)s::integer[], %(expected)s::text[], %(c0)s::text[], %(c1)s::text[], %(c2)s::text[],
        %(c3)s::text[], %(c4)s::bigint[], %(c5)s::text[], %(c6)s::text[], %(c7)s::bytea[], %(c8)s::bytea[],
        %(c9)s::text[], %(c10)s::bigint[]) AS s(ord, expected, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)
), moved AS (
    UPDATE lineages l SET head_checkpoint_id = s.c0 FROM saves s
    WHERE l.lineage_id = s.c2 AND l.head_checkpoint_id IS NOT DISTINCT FROM s.expected
    RETURNING l.lid, s.ord
), recs AS (
    INSERT INTO records (lid, stream, seq, data, hash)
    SELECT moved.lid, r.stream, r.seq, r.data, r.hash FROM moved JOIN
        unnest(%(r_ord)s::integer[], %(streams)s::smallint[], %(seqs)s::integer[], %(datas)s::bytea[],
            %(hashes)s::bytea[]) AS r(ord, stream, seq, data, hash) ON r.ord = moved.ord
), rows AS (
    INSERT INTO checkpoints ({columns})
    SELECT s.c0, s.c1, s.c2, s.c3, s.c4, s.c5, s.c6, s.c7, s.c8, s.c9, s.c10 FROM saves s
    JOIN moved ON moved.ord = s.ord ORDER BY s.ord
)
SELECT ord FROM moved
"""
APPEND_MANY_SQL = APPEND_MANY.replace("{columns}", CHECKPOINT_COLUMNS)
SELECT_LATEST_ID = "SELECT checkpoint_id FROM checkpoints WHERE agent_id = %s ORDER BY seq DESC LIMIT 1"
START_HINT = (
    "start the server (e.g. `pg_ctlcluster <version> main start` or "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres`), or point the store URL "
    "(and KAIZEN_PG_DSN for the tests) at a running one"
)
_DUPLICATES = {"checkpoints_id_unique": "checkpoint", "lineages_id_unique": "lineage", "records_unique": "record"}

LockKey = Callable[..., int]
IDLE_CHECK_SECONDS = 5.0  # a connection idle longer is pinged before a batch uses it


def reason(exc: BaseException) -> str:
    """A psycopg message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def storage_error(exc: psycopg.Error, what: str, where: str) -> StorageError:
    """The ``StorageError`` for a psycopg error met while doing ``what``."""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        kind = _DUPLICATES.get(exc.diag.constraint_name or "", "row")
        key = re.search(r"\)=\((.*)\) already exists", exc.diag.message_detail or "")
        name = f"{kind} {key.group(1)!r}" if key else kind
        return StorageError(f"{what}: {name} already exists in {where}")
    if isinstance(exc, psycopg.OperationalError):
        return StorageError(f"{where}: {what} failed: {reason(exc)} -- {START_HINT}")
    return StorageError(f"{where}: {what} failed: {reason(exc)}")


def append_statement(plan: SavePlan) -> tuple[str, dict[str, Any]]:
    """The statement (``APPEND_ONE_SQL`` for one record, else ``APPEND_SQL``) and its parameters for
    a save that extends its lineage."""
    row = plan.row
    records = plan.records
    params: dict[str, Any] = {"id": row.checkpoint_id, "lineage": row.lineage_id, "expected": plan.expected_head}
    if len(records) == 1:
        [record] = records
        sql = APPEND_ONE_SQL
        params.update(stream=STREAM_NUMBERS[record.stream], seq=record.seq, data=record.data,
                      hash=bytes.fromhex(record.hash))
    else:
        sql = APPEND_SQL
        params.update(streams=[STREAM_NUMBERS[r.stream] for r in records], seqs=[r.seq for r in records],
                      datas=[r.data for r in records], hashes=[bytes.fromhex(r.hash) for r in records])
    params.update({f"c{i}": value for i, value in enumerate(row_values(row))})
    return sql, params


def append_many_params(plans: list[SavePlan]) -> dict[str, Any]:
    """``APPEND_MANY_SQL``'s parameters: the saves numbered by their place in ``plans``."""
    columns: list[list[Any]] = [[] for _ in range(11)]
    params: dict[str, Any] = {"ord": list(range(len(plans))), "expected": [plan.expected_head for plan in plans],
                              "r_ord": [], "streams": [], "seqs": [], "datas": [], "hashes": []}
    for number, plan in enumerate(plans):
        for column, value in zip(columns, row_values(plan.row), strict=True):
            column.append(value)
        for record in plan.records:
            params["r_ord"].append(number)
            params["streams"].append(STREAM_NUMBERS[record.stream])
            params["seqs"].append(record.seq)
            params["datas"].append(record.data)
            params["hashes"].append(bytes.fromhex(record.hash))
    params.update({f"c{i}": column for i, column in enumerate(columns)})
    return params


def write_new_lineage(conn: psycopg.Connection[Any], plan: SavePlan, lock_key: LockKey) -> None:
    """An agent's first checkpoint or a fork, inside the caller's transaction. The first checkpoint
    is checked under the agent's advisory lock; a conflict is raised before anything is written."""
    row = plan.row
    assert plan.new_lineage is not None
    if not plan.is_fork:
        conn.execute(LOCK, (lock_key("agent", row.agent_id),))
        latest = conn.execute(SELECT_LATEST_ID, (row.agent_id,)).fetchone()
        if latest is not None:
            raise CheckpointConflictError(row.agent_id, None, latest[0])
    lid = first(conn.execute(INSERT_LINEAGE, lineage_values(plan.new_lineage)).fetchone())[0]
    insert_records(conn, [(lid, r) for r in plan.records])
    conn.execute(SQL.insert_checkpoint, row_values(row))


def insert_records(conn: psycopg.Connection[Any], records: list[tuple[int, Any]]) -> None:
    values = [record_values(lid, r) for lid, r in records]
    if len(values) >= COPY_THRESHOLD:
        with conn.cursor() as cur, cur.copy(COPY_RECORDS) as copy:
            copy.set_types(list(COPY_TYPES))
            for value in values:
                copy.write_row(value)
    elif values:
        with conn.cursor() as cur:
            cur.executemany(SQL.insert_record, values)


class PostgresBatchWriter:
    """Saves that extend their lineages, however many, in one statement on one connection of its own:
    one round trip, one transaction, one WAL flush for the whole batch. (An agent's first checkpoint
    and a fork are rare and go in a transaction each.)

    A save whose parent is no longer its lineage's head fails alone (the statement moves no head for
    it and writes nothing of it); the rest of the batch commits. Any other error fails the statement
    as a whole, and each save is then replayed in its own transaction, so only the save that fails
    again fails.
    """

    def __init__(self, dsn: str, kwargs: dict[str, Any], where: str, lock_key: LockKey) -> None:
        self.dsn = dsn
        self.kwargs = kwargs
        self.where = where
        self.lock_key = lock_key
        self._conn: psycopg.Connection[Any] | None = None
        # The saves' statements go through one cursor kept with the connection: its adaptation context
        # (the dumpers found for each parameter's type) is made once, not again for every save.
        self._cursor: psycopg.Cursor[Any] | None = None
        self._last_used = 0.0

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        now = time.monotonic()
        if conn is not None and not conn.broken and now - self._last_used > IDLE_CHECK_SECONDS:
            try:  # as the pool does: a connection broken by a server restart is replaced, not used
                conn.execute("SELECT 1")
            except psycopg.Error:
                conn.close()
        self._last_used = now
        if conn is None or conn.closed or conn.broken:
            self._cursor = None
            try:
                conn = self._conn = psycopg.connect(self.dsn, **self.kwargs)
            except psycopg.Error as exc:
                raise StorageError(f"cannot connect to {self.where}: {reason(exc)} -- {START_HINT}") from None
        return conn

    def _saves_cursor(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        cursor = self._cursor
        if cursor is None or cursor.connection is not conn or cursor.closed:
            cursor = self._cursor = conn.cursor()
        return cursor

    def write_batch(self, plans: list[SavePlan]) -> list[BaseException | None]:
        conn = self._connection()
        extending = [i for i, plan in enumerate(plans) if plan.new_lineage is None]
        if len(extending) < 2:
            return [self._alone(conn, plan) for plan in plans]
        outcomes: list[BaseException | None] = [None] * len(plans)
        for i, plan in enumerate(plans):  # first checkpoints and forks: rare, one transaction each
            if plan.new_lineage is not None:
                outcomes[i] = self._alone(conn, plan)
        together = [plans[i] for i in extending]
        try:
            moved = {number for (number,) in
                     self._saves_cursor(conn).execute(APPEND_MANY_SQL, append_many_params(together)).fetchall()}
        except psycopg.Error:  # nothing was written: find the failing save(s) one by one
            conn = self._connection()
            for i in extending:
                outcomes[i] = self._alone(conn, plans[i])
            return outcomes
        for number, i in enumerate(extending):
            if number not in moved:
                outcomes[i] = self._conflict(conn, plans[i])
        return outcomes

    def _conflict(self, conn: psycopg.Connection[Any], plan: SavePlan) -> BaseException:
        try:
            return head_conflict(conn, SQL, plan.row, plan.expected_head)
        except psycopg.Error as exc:
            return storage_error(exc, f"save of checkpoint {plan.row.checkpoint_id!r}", self.where)

    def _alone(self, conn: psycopg.Connection[Any], plan: SavePlan) -> BaseException | None:
        what = f"save of checkpoint {plan.row.checkpoint_id!r}"
        try:
            if plan.new_lineage is not None:
                with conn.transaction():
                    write_new_lineage(conn, plan, self.lock_key)
            elif self._saves_cursor(conn).execute(*append_statement(plan)).fetchone() is None:
                return head_conflict(conn, SQL, plan.row, plan.expected_head)
        except CheckpointConflictError as conflict:
            return conflict
        except psycopg.Error as exc:
            error = storage_error(exc, what, self.where)
            error.__cause__ = exc
            return error
        return None

    def close(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            conn.close()
