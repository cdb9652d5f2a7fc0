"""What the SQL stores (SQLite, PostgreSQL) share: the row codec and the statements both dialects
write the same way. Each backend keeps its own schema, transactions and dialect-only statements.

Statements are written once with ``{p}`` for a parameter; ``SqlShapes.for_placeholder("?")`` (SQLite)
or ``("%s")`` (psycopg) fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import orjson

from ..errors import CheckpointConflictError, CheckpointCorruptError
from .base import STREAM_NUMBERS, CheckpointRow, LineageRow, RecordRow, StreamHead, heads_from_json, heads_to_json

CHECKPOINT_COLUMNS = (
    "checkpoint_id, agent_id, lineage_id, parent_checkpoint_id, step_number, timestamp, status, "
    "heads, body, checksum, size_bytes"
)
LINEAGE_COLUMNS = (
    "lineage_id, agent_id, base_lineage_id, base_checkpoint_id, base_counts, head_checkpoint_id, created_at"
)
# The tables a kaizen SQL store holds; a database without them is not a kaizen store.
KAIZEN_TABLES = ("lineages", "records", "checkpoints")


# --- the row codec --------------------------------------------------------------------------
def as_bytes(value: Any) -> bytes:
    """Column bytes as written; a value someone rewrote as text still reaches the integrity checks."""
    return value.encode() if isinstance(value, str) else bytes(value)


def encode_heads(heads: dict[str, StreamHead]) -> bytes:
    return orjson.dumps(heads_to_json(heads))


def decode_heads(raw: bytes | str) -> dict[str, StreamHead]:
    return heads_from_json(orjson.loads(raw))


def row_values(row: CheckpointRow) -> tuple[Any, ...]:
    """The values of ``CHECKPOINT_COLUMNS`` for one row."""
    return (
        row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id, row.step_number,
        row.timestamp, row.status, encode_heads(row.heads), row.body, row.checksum, row.size_bytes,
    )


def row_from(values: tuple[Any, ...]) -> CheckpointRow:
    """A stored row; one whose per-stream heads cannot even be decoded is damaged (its checksum,
    which covers them, could not be checked), and says which checkpoint it is."""
    (checkpoint_id, agent_id, lineage_id, parent, step, timestamp, status, heads, body, checksum, size) = values
    try:
        decoded = decode_heads(heads)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise CheckpointCorruptError(str(checkpoint_id), f"its stream heads cannot be decoded ({exc})") from None
    return CheckpointRow(
        checkpoint_id, agent_id, lineage_id, parent, step, timestamp, status, decoded, as_bytes(body), checksum, size,
    )


def lineage_values(lineage: LineageRow) -> tuple[Any, ...]:
    """The values of ``LINEAGE_COLUMNS`` for one lineage."""
    return (
        lineage.lineage_id, lineage.agent_id, lineage.base_lineage_id, lineage.base_checkpoint_id,
        orjson.dumps(lineage.base_counts).decode(), lineage.head_checkpoint_id, lineage.created_at,
    )


def lineage_from(values: tuple[Any, ...]) -> LineageRow:
    lineage_id, agent_id, base_lineage, base_checkpoint, base_counts, head, created_at = values
    return LineageRow(lineage_id, agent_id, base_lineage, base_checkpoint, orjson.loads(base_counts), head, created_at)


def record_values(lid: int, record: RecordRow) -> tuple[Any, ...]:
    """The values of ``SqlShapes.insert_record`` for one record of the lineage stored as ``lid``."""
    return lid, STREAM_NUMBERS[record.stream], record.seq, record.data, bytes.fromhex(record.hash)


def records_from(lineage_id: str, stream: str, rows: list[tuple[Any, ...]]) -> list[RecordRow]:
    """``RecordRow``s from ``SqlShapes.select_records`` rows."""
    return [RecordRow(lineage_id, stream, seq, as_bytes(data), as_bytes(digest).hex()) for seq, data, digest in rows]


# --- statements both dialects write the same way --------------------------------------------
@dataclass(frozen=True)
class SqlShapes:
    insert_checkpoint: str = f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES ({{p}}" + ",{p}" * 10 + ")"
    insert_record: str = "INSERT INTO records (lid, stream, seq, data, hash) VALUES ({p},{p},{p},{p},{p})"
    select_head: str = "SELECT head_checkpoint_id FROM lineages WHERE lineage_id = {p}"
    select_checkpoint: str = f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE checkpoint_id = {{p}}"
    select_latest: str = f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE agent_id = {{p}} ORDER BY seq DESC LIMIT 1"
    select_lineage: str = f"SELECT {LINEAGE_COLUMNS} FROM lineages WHERE lineage_id = {{p}}"
    select_lineages: str = f"SELECT {LINEAGE_COLUMNS} FROM lineages WHERE agent_id = {{p}} ORDER BY lid"
    select_records: str = (
        "SELECT r.seq, r.data, r.hash FROM records r JOIN lineages l ON l.lid = r.lid "
        "WHERE l.lineage_id = {p} AND r.stream = {p} AND r.seq >= {p} AND r.seq < {p} ORDER BY r.seq"
    )
    select_agents: str = "SELECT DISTINCT agent_id FROM checkpoints ORDER BY agent_id"
    select_lease: str = "SELECT worker_id, expires_at FROM leases WHERE agent_id = {p}"
    delete_lease: str = "DELETE FROM leases WHERE agent_id = {p} AND worker_id = {p}"
    delete_agent_records: str = "DELETE FROM records WHERE lid IN (SELECT lid FROM lineages WHERE agent_id = {p})"
    delete_agent_lineages: str = "DELETE FROM lineages WHERE agent_id = {p}"
    delete_agent_checkpoints: str = "DELETE FROM checkpoints WHERE agent_id = {p}"

    @classmethod
    def for_placeholder(cls, placeholder: str) -> SqlShapes:
        return cls(**{f.name: getattr(cls, f.name).replace("{p}", placeholder) for f in fields(cls)})


class _Executes(Protocol):
    def execute(self, query: Any, params: Any = ...) -> Any: ...


def delete_agent_rows(conn: _Executes, shapes: SqlShapes, agent_id: str) -> int:
    """Delete an agent's records, lineages and checkpoints inside the caller's transaction;
    returns how many checkpoints went."""
    conn.execute(shapes.delete_agent_records, (agent_id,))
    conn.execute(shapes.delete_agent_lineages, (agent_id,))
    return int(conn.execute(shapes.delete_agent_checkpoints, (agent_id,)).rowcount)


def head_conflict(
    conn: _Executes, shapes: SqlShapes, row: CheckpointRow, expected: str | None
) -> CheckpointConflictError:
    """The conflict to raise when ``row``'s lineage head was not ``expected``, naming the head found."""
    head = conn.execute(shapes.select_head, (row.lineage_id,)).fetchone()
    return CheckpointConflictError(row.agent_id, expected, head[0] if head else None)


def move_head(conn: _Executes, shapes: SqlShapes, statement: str, row: CheckpointRow, expected: str | None) -> int:
    """Make ``row`` its lineage's head if the head is still ``expected`` (``statement`` is the dialect's
    conditional UPDATE ... RETURNING lid); returns the lineage's lid, or raises the conflict."""
    moved = conn.execute(statement, (row.checkpoint_id, row.lineage_id, expected)).fetchone()
    if moved is None:
        raise head_conflict(conn, shapes, row, expected)
    return int(moved[0])
