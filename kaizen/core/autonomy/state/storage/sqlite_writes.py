"""How the SQLite store writes: its transaction, one save's statements, and the group-commit writer
that puts many saves from this process into one transaction (``group_commit.py``)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: writers of several processes poll instead
    fcntl = None  # type: ignore[assignment]

from ..errors import CheckpointConflictError, NotAKaizenStoreError, StorageError
import orjson

from .base import STREAM_NUMBERS, CheckpointRow, SavePlan
from .sql_common import (
    CHECKPOINT_COLUMNS, KAIZEN_TABLES, LINEAGE_COLUMNS, SqlShapes, encode_heads, head_conflict, lineage_values, move_head,
    record_values, row_values,
)
from .sqlite_packs import completed_blocks, write_packs

SQL = SqlShapes.for_placeholder("?")
INSERT_LINEAGE = f"INSERT INTO lineages ({LINEAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
MOVE_HEAD = (
    "UPDATE lineages SET head_checkpoint_id = ? WHERE lineage_id = ? AND head_checkpoint_id IS ? RETURNING lid"
)


# The common save (a lone save that extends its lineage) in ONE statement, atomic in autocommit:
# an INSERT into a view whose INSTEAD OF trigger moves the head if it is still the parent (else
# aborts, writing nothing), adds the records and the checkpoint row. The views and triggers are
# TEMP: they live in the writer's connection only, so the file's schema is unchanged. A save of at
# most one record (an agent's usual step) passes it as columns and its lineage by ``lid`` (the
# integer key: no index lookups; the lineage id is compared too, so a reused ``lid`` cannot match).
# More records travel as their data and hashes concatenated into two blobs plus a JSON list of
# [stream, seq, offset, length] (SQLite has no arrays; ``substr`` cuts blobs by bytes, so the
# stored bytes are exact); that view needs SQLite's JSON functions.
HEAD_MOVED = "kaizen: the lineage head moved"
_INSERT_ROW = (
    f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (NEW.checkpoint_id, NEW.agent_id, NEW.lineage_id, "
    "NEW.parent_checkpoint_id, NEW.step_number, NEW.timestamp, NEW.status, NEW.heads, NEW.body, NEW.checksum, "
    "NEW.size_bytes); "
)


def _append_view(name: str, columns: str, lineage_is: str, insert_records: str) -> tuple[tuple[str, str], str]:
    """(the statements making TEMP view ``name`` and its INSTEAD OF trigger, the INSERT saving through
    it). The trigger moves the head of the lineage where ``lineage_is`` if it is still the parent (else
    aborts, writing nothing), inserts the records (``insert_records``: a SELECT), then the row."""
    count = columns.count(",") + 1
    create = (
        f"CREATE TEMP VIEW IF NOT EXISTS {name} ({columns}) AS SELECT " + ", ".join(["NULL"] * count) + " WHERE 0",
        f"CREATE TEMP TRIGGER IF NOT EXISTS {name}_save INSTEAD OF INSERT ON {name} BEGIN "
        f"UPDATE lineages SET head_checkpoint_id = NEW.checkpoint_id WHERE {lineage_is} "
        "AND head_checkpoint_id IS NEW.expected_head; "
        f"SELECT RAISE(ABORT, '{HEAD_MOVED}') WHERE changes() = 0; "
        f"INSERT INTO records (lid, stream, seq, data, hash) {insert_records}; " + _INSERT_ROW + "END",
    )
    return create, f"INSERT INTO {name} ({columns}) VALUES ({','.join('?' * count)})"


CREATE_APPEND_ONE, APPEND_ONE = _append_view(
    "kaizen_append_one", f"{CHECKPOINT_COLUMNS}, lid, expected_head, stream, seq, data, hash",
    "lid = NEW.lid AND lineage_id = NEW.lineage_id",
    "SELECT NEW.lid, NEW.stream, NEW.seq, NEW.data, NEW.hash WHERE NEW.stream IS NOT NULL",
)
CREATE_APPEND, APPEND = _append_view(
    "kaizen_append", f"{CHECKPOINT_COLUMNS}, expected_head, recs, datas, hashes", "lineage_id = NEW.lineage_id",
    "SELECT l.lid, json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'), "
    "substr(NEW.datas, json_extract(r.value, '$[2]'), json_extract(r.value, '$[3]')), "
    "substr(NEW.hashes, 32 * r.key + 1, 32) FROM lineages l, json_each(NEW.recs) r "
    "WHERE l.lineage_id = NEW.lineage_id",
)
_KNOWN_LIDS = 4096  # lineage id -> lid kept by a writer (cleared when full: a miss costs one lookup)


# The one-statement saves bind their blobs as ``bytearray``: the sqlite3 module binds a ``bytes``
# only after looking for an adapter (a registry lookup and two failed attribute lookups per value,
# more than copying it), while a ``bytearray`` is bound at once. SQLite stores the same BLOB.
def append_one_values(plan: SavePlan, lid: int) -> tuple[Any, ...]:
    """``APPEND_ONE``'s parameters for a save of at most one record that extends lineage ``lid``."""
    row = plan.row
    if plan.records:
        record = plan.records[0]
        stream: int | None = STREAM_NUMBERS[record.stream]
        seq: int | None = record.seq
        data: bytearray | None = bytearray(record.data)
        digest: bytearray | None = bytearray.fromhex(record.hash)
    else:
        stream = seq = data = digest = None
    return (
        row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id, row.step_number,
        row.timestamp, row.status, bytearray(encode_heads(row.heads)), bytearray(row.body), row.checksum,
        row.size_bytes, lid, plan.expected_head, stream, seq, data, digest,
    )


def append_values(plan: SavePlan) -> tuple[Any, ...]:
    """``APPEND``'s parameters for a save that extends its lineage."""
    row = plan.row
    records = plan.records
    if not records:
        recs: bytes | None = None
        datas = hashes = b""
    elif len(records) == 1:
        record = records[0]
        datas = record.data
        recs = b"[[%d,%d,1,%d]]" % (STREAM_NUMBERS[record.stream], record.seq, len(datas))
        hashes = bytes.fromhex(record.hash)
    else:
        spans = []
        offset = 1
        for record in records:
            size = len(record.data)
            spans.append((STREAM_NUMBERS[record.stream], record.seq, offset, size))
            offset += size
        recs = orjson.dumps(spans)
        datas = b"".join([record.data for record in records])
        hashes = bytes.fromhex("".join([record.hash for record in records]))
    return (
        row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id, row.step_number,
        row.timestamp, row.status, bytearray(encode_heads(row.heads)), bytearray(row.body), row.checksum,
        row.size_bytes, plan.expected_head, recs, bytearray(datas), bytearray(hashes),
    )


def open_connection(path: Path, busy_timeout_ms: int, synchronous: str) -> sqlite3.Connection:
    """A connection for writing: WAL, the store's ``synchronous``, waits ``busy_timeout_ms`` for the lock."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _refuse_foreign(conn, path)  # before anything about the file is changed (WAL is kept in its header)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open SQLite store {path}: {exc}{_unwritable_hint(path)}") from exc
    return conn


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Another program's database (no kaizen schema version, tables of its own) is never written into."""
    if conn.execute("PRAGMA user_version").fetchone()[0] != 0:
        return
    others = sorted({row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                    - {*KAIZEN_TABLES, "leases", "record_packs"})
    if others:
        conn.close()
        raise NotAKaizenStoreError(
            f"{path} is not a kaizen store: it holds another program's tables ({', '.join(others[:8])}"
            f"{', ...' if len(others) > 8 else ''}); it was left untouched. Give kaizen a file of its own")


def _unwritable_hint(path: Path) -> str:
    """Why a store that is written cannot be opened, when the reason is where it lies."""
    folder = path.parent if path.parent.exists() else None
    try:
        if folder is not None and os.statvfs(folder).f_flag & os.ST_RDONLY:
            where = "is on a read-only file system"
        elif folder is not None and not os.access(folder, os.W_OK):
            where = "is in a folder this user may not write"
        elif path.exists() and not os.access(path, os.W_OK):
            where = "is a file this user may not write"
        else:
            return ""
    except OSError:
        return ""
    return (f" (the store {where}; saving needs the file and its folder writable, for the -wal and -shm "
            "files beside it. Commands that only read, such as `kaizen checkpoints` and `kaizen audit`, "
            "open it read-only and work there; to continue the agent, copy the store somewhere writable)")


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite store {self.path}: cannot start a write: {exc}") from exc
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error as commit_error:
                if self.conn.in_transaction:  # (SQLite already rolled back after some errors, e.g. a full disk)
                    self.conn.execute("ROLLBACK")
                raise StorageError(f"SQLite store {self.path}: commit failed: {commit_error}"
                                   f"{_unwritable_hint(self.path)}") from commit_error
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"SQLite store {self.path}: {exc}") from exc


def write_plan(conn: sqlite3.Connection, plan: SavePlan) -> None:
    """One save's statements inside the caller's transaction. A ``CheckpointConflictError`` is
    raised before anything is written (the group-commit writer relies on that)."""
    row = plan.row
    if plan.new_lineage is not None:
        if not plan.is_fork:
            latest = conn.execute(SQL.select_latest, (row.agent_id,)).fetchone()
            if latest is not None:
                raise CheckpointConflictError(row.agent_id, None, latest[0])
        lid = int(conn.execute(INSERT_LINEAGE, lineage_values(plan.new_lineage)).lastrowid or 0)
    else:
        lid = move_head(conn, SQL, MOVE_HEAD, row, plan.expected_head)
    if plan.records:
        conn.executemany(SQL.insert_record, [record_values(lid, r) for r in plan.records])
    insert_checkpoint(conn, row)


def insert_checkpoint(conn: sqlite3.Connection, row: CheckpointRow) -> None:
    insert_unique(conn, SQL.insert_checkpoint, row_values(row), f"checkpoint {row.checkpoint_id!r}")


def insert_unique(conn: sqlite3.Connection, sql: str, values: tuple[Any, ...], what: str) -> None:
    try:
        conn.execute(sql, values)
    except sqlite3.IntegrityError:
        raise StorageError(f"{what} already exists in the store") from None


CHUNK = 500  # saves per head-moving statement: 500 x 3 values, far below SQLite's 32,766 variables


def extend_lineages(conn: sqlite3.Connection, plans: list[SavePlan], indexes: list[int],
                    outcomes: list[BaseException | None]) -> None:
    """Saves that extend their lineages, in three calls whatever their number (each call into SQLite
    lets other threads take the GIL, so fewer calls keep the batch short): one statement moves every
    head that is still its save's parent, then the records and rows of the saves that moved one are
    inserted (``executemany``: faster in SQLite than one many-row ``VALUES``). A save whose head had
    moved gets its conflict in ``outcomes`` and writes nothing."""
    values = ",".join(["(?,?,?)"] * len(indexes))
    params: list[Any] = []
    for index in indexes:
        plan = plans[index]
        params += (plan.row.checkpoint_id, plan.row.lineage_id, plan.expected_head)
    moved = conn.execute(
        f"UPDATE lineages SET head_checkpoint_id = v.column1 FROM (VALUES {values}) AS v "
        "WHERE lineages.lineage_id = v.column2 AND lineages.head_checkpoint_id IS v.column3 "
        "RETURNING head_checkpoint_id, lid", params).fetchall()
    lids = dict(moved)
    records: list[Any] = []
    rows: list[Any] = []
    for index in indexes:
        plan = plans[index]
        lid = lids.get(plan.row.checkpoint_id)
        if lid is None:
            outcomes[index] = head_conflict(conn, SQL, plan.row, plan.expected_head)
            continue
        records += [record_values(lid, record) for record in plan.records]
        rows.append(row_values(plan.row))
    if records:
        conn.executemany(SQL.insert_record, records)
    if rows:
        conn.executemany(SQL.insert_checkpoint, rows)


def _created(conn: sqlite3.Connection, statements: tuple[str, ...]) -> bool:
    """Whether ``statements`` (a TEMP view and its trigger) could be made on ``conn``."""
    try:
        for statement in statements:
            conn.execute(statement)
    except sqlite3.Error:
        return False
    return True


class SqliteBatchWriter:
    """Writes a batch of saves in one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (one WAL sync) on its own
    connection.

    A save whose parent is no longer its lineage's head fails alone: its conflict is detected before
    it writes anything, and the rest of the batch commits. A lone save that extends its lineage (the
    common case) is one statement (``APPEND_ONE``; ``APPEND`` for more than one record); a batch takes
    five calls (begin, heads, records, rows, commit) whatever its size. Any other error rolls the whole
    batch back and replays each save in its own transaction, so only the save that fails again fails.
    """

    def __init__(self, path: Path, busy_timeout_ms: int, synchronous: str) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None  # the one-statement saves' (conn.execute makes one a call)
        self._one_statement = False  # whether the connection holds APPEND's view and trigger
        self._one_record = False  # ... and APPEND_ONE's
        self._lids: dict[str, int] = {}
        self._queue_fd: int | None = None

    def _writers_queue(self) -> int | None:
        """Queue behind the writers of other processes (``flock`` on ``<file>-kzlock``);
        returns the descriptor to unlock (None: no queue here).

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries, so a process that finds
        the file locked often sleeps long after it was freed; here it tries again within 1 ms of the
        previous batch's commit. Only the group-commit writers take this lock; SQLite's lock
        still guards the file against everyone (correctness does not depend on this one).
        """
        fd = self._queue_fd
        if fcntl is None or fd == -1:
            return None
        if fd is None:
            try:
                fd = self._queue_fd = os.open(f"{self.path}-kzlock", os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                self._queue_fd = -1  # e.g. a directory we may not create files in: poll as before
                return None
        # Tried at once, then at pauses growing to 1 ms; never longer than the busy timeout: a holder
        # that is stopped (Ctrl-Z) must not block the others for good. Past it, SQLite's lock decides.
        deadline = pause = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                now = time.monotonic()
                if not deadline:
                    deadline = now + self.busy_timeout_ms / 1000
                elif now > deadline:
                    return None
                pause = min(pause * 2 or 0.00005, 0.001)
                time.sleep(pause)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = open_connection(self.path, self.busy_timeout_ms, self.synchronous)
            self._one_record = _created(conn, CREATE_APPEND_ONE)
            # Not without JSON functions: a lone save of more records then takes the batch's calls.
            self._one_statement = _created(conn, CREATE_APPEND)
            self._lids = {}
            self._cursor = conn.cursor()
            self._conn = conn
        return self._conn

    def write_batch(self, plans: list[SavePlan]) -> list[BaseException | None]:
        conn = self._conn or self._connection()
        queued = self._writers_queue()
        try:
            return self._write_batch(conn, plans)
        finally:
            if queued is not None:
                fcntl.flock(queued, fcntl.LOCK_UN)

    def _write_batch(self, conn: sqlite3.Connection, plans: list[SavePlan]) -> list[BaseException | None]:
        outcomes = self._write_saves(conn, plans)
        blocks = completed_blocks(plans, outcomes)
        if blocks:
            write_packs(conn, blocks)
        return outcomes

    def _write_saves(self, conn: sqlite3.Connection, plans: list[SavePlan]) -> list[BaseException | None]:
        if len(plans) == 1:
            plan = plans[0]
            if plan.new_lineage is not None:
                return [self._alone(conn, plan)]
            if self._one_record and len(plan.records) <= 1:
                return [self._append_one(conn, plan)]
            if self._one_statement:
                return [self._append(conn, plan)]
        outcomes: list[BaseException | None] = [None] * len(plans)
        try:
            with Transaction(conn, self.path):
                extending: list[int] = []
                for index, plan in enumerate(plans):
                    if plan.new_lineage is None:
                        extending.append(index)
                        continue
                    try:
                        write_plan(conn, plan)
                    except CheckpointConflictError as conflict:
                        outcomes[index] = conflict
                for start in range(0, len(extending), CHUNK):
                    extend_lineages(conn, plans, extending[start:start + CHUNK], outcomes)
            return outcomes
        except Exception:  # noqa: BLE001 - rolled back: find the failing save(s) one by one
            if len(plans) == 1:
                return [self._alone(conn, plans[0])]
            return [self._alone(conn, plan) for plan in plans]

    def _append(self, conn: sqlite3.Connection, plan: SavePlan) -> BaseException | None:
        """A lone save extending its lineage: one statement, its own transaction (autocommit takes
        the write lock when the statement starts, waiting on the busy timeout like ``BEGIN IMMEDIATE``)."""
        return self._one_statement_save(conn, plan, APPEND, append_values(plan))

    def _append_one(self, conn: sqlite3.Connection, plan: SavePlan) -> BaseException | None:
        """``_append`` for a save of at most one record, its lineage found by ``lid``."""
        lineage_id = plan.row.lineage_id
        lid = self._lids.get(lineage_id)
        if lid is None:
            try:
                found = conn.execute("SELECT lid FROM lineages WHERE lineage_id = ?", (lineage_id,)).fetchone()
            except sqlite3.Error:
                found = None
            if found is None:  # no such lineage (or an unreadable store): the statements one by one say why
                return self._alone(conn, plan)
            if len(self._lids) >= _KNOWN_LIDS:
                self._lids.clear()
            lid = self._lids[lineage_id] = int(found[0])
        try:  # (_one_statement_save, one call less on every agent step)
            (self._cursor or conn.cursor()).execute(APPEND_ONE, append_one_values(plan, lid))
        except sqlite3.Error as exc:
            return self._not_saved(conn, plan, exc)
        return None

    def _one_statement_save(self, conn: sqlite3.Connection, plan: SavePlan, sql: str,
                            values: tuple[Any, ...]) -> BaseException | None:
        try:
            (self._cursor or conn.cursor()).execute(sql, values)
        except sqlite3.Error as exc:
            return self._not_saved(conn, plan, exc)
        return None

    def _not_saved(self, conn: sqlite3.Connection, plan: SavePlan, exc: sqlite3.Error) -> BaseException | None:
        """The outcome of a one-statement save whose statement failed (and so wrote nothing)."""
        if isinstance(exc, sqlite3.IntegrityError) and str(exc) == HEAD_MOVED:
            self._lids.pop(plan.row.lineage_id, None)
            try:
                return head_conflict(conn, SQL, plan.row, plan.expected_head)
            except sqlite3.Error as read_error:
                return StorageError(f"SQLite store {self.path}: {read_error}")
        return self._alone(conn, plan)  # the statements one by one, for the precise error

    def stored_checksum(self, checkpoint_id: str) -> str | None:
        """The checksum of the stored row ``checkpoint_id`` (None: there is none), read now."""
        try:
            found = self._connection().execute(
                "SELECT checksum FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite store {self.path}: {exc}") from exc
        return None if found is None else str(found[0])

    def _alone(self, conn: sqlite3.Connection, plan: SavePlan) -> BaseException | None:
        try:
            with Transaction(conn, self.path):
                write_plan(conn, plan)
        except Exception as exc:  # noqa: BLE001 - handed to the save's own caller
            return exc
        return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._cursor = None
        if conn is not None:
            conn.close()
        fd, self._queue_fd = self._queue_fd, None
        if fd is not None and fd >= 0:
            os.close(fd)
