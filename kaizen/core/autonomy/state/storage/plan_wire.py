"""Save plans and their outcomes as bytes, for handing saves to another process's writer.

JSON (orjson) with byte strings in base64, so what arrives is exactly what was planned; never
pickle. Decoding checks every field's type and raises ``WireError`` (a ``StorageError``) for
anything else, so a damaged or foreign message is refused whole, never half-read.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

import orjson

from ..errors import CheckpointConflictError, StorageError
from .base import STREAMS, CheckpointRow, LineageRow, RecordRow, SavePlan, StreamHead, heads_from_json, heads_to_json

FRAME = struct.Struct(">I")
MAX_FRAME = 1 << 30  # a message's size limit: a plan holds one save's new records


class WireError(StorageError):
    """A message between writer processes that is not what this release sends."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise WireError(f"{what} must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{what} is not valid base64") from None


def _text(value: object, what: str, *, optional: bool = False) -> Any:
    if isinstance(value, str) or (optional and value is None):
        return value
    raise WireError(f"{what} must be text{' or null' if optional else ''}, got {type(value).__name__}")


def _int(value: object, what: str) -> int:
    if type(value) is int:
        return value
    raise WireError(f"{what} must be an integer, got {type(value).__name__}")


def _items(value: object, size: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != size:
        raise WireError(f"{what} must be a list of {size} items")
    return value


def plan_to_wire(plan: SavePlan) -> dict[str, Any]:
    row = plan.row
    lineage = plan.new_lineage
    return {
        "row": [row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id, row.step_number,
                row.timestamp, row.status, heads_to_json(row.heads), _b64(row.body), row.checksum, row.size_bytes],
        "records": [[r.lineage_id, r.stream, r.seq, _b64(r.data), r.hash] for r in plan.records],
        "lineage": None if lineage is None else [
            lineage.lineage_id, lineage.agent_id, lineage.base_lineage_id, lineage.base_checkpoint_id,
            lineage.base_counts, lineage.head_checkpoint_id, lineage.created_at],
        "expected_head": plan.expected_head,
        "fork": plan.is_fork,
    }


def _heads(value: object) -> dict[str, StreamHead]:
    if not isinstance(value, dict) or set(value) != set(STREAMS):
        raise WireError(f"row heads must name the streams {', '.join(STREAMS)}")
    for stream, head in value.items():
        count, digest, crc = _items(head, 3, f"head of {stream}")
        _int(count, f"{stream} count"), _text(digest, f"{stream} hash"), _int(crc, f"{stream} crc")
    return heads_from_json(value)


def _row(value: object) -> CheckpointRow:
    (checkpoint_id, agent_id, lineage_id, parent, step_number, timestamp, status, heads, body, checksum,
     size_bytes) = _items(value, 11, "row")
    return CheckpointRow(
        _text(checkpoint_id, "checkpoint_id"), _text(agent_id, "agent_id"), _text(lineage_id, "lineage_id"),
        _text(parent, "parent_checkpoint_id", optional=True), _int(step_number, "step_number"),
        _text(timestamp, "timestamp"), _text(status, "status"), _heads(heads), _unb64(body, "body"),
        _text(checksum, "checksum"), _int(size_bytes, "size_bytes"))


def _record(value: object) -> RecordRow:
    lineage_id, stream, seq, data, digest = _items(value, 5, "record")
    if stream not in STREAMS:
        raise WireError(f"record stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    return RecordRow(_text(lineage_id, "record lineage_id"), stream, _int(seq, "record seq"),
                     _unb64(data, "record data"), _text(digest, "record hash"))


def _lineage(value: object) -> LineageRow | None:
    if value is None:
        return None
    lineage_id, agent_id, base_lineage, base_checkpoint, counts, head, created_at = _items(value, 7, "lineage")
    if not isinstance(counts, dict) or not all(isinstance(k, str) and type(n) is int for k, n in counts.items()):
        raise WireError("lineage base_counts must map stream names to integers")
    return LineageRow(
        _text(lineage_id, "lineage_id"), _text(agent_id, "lineage agent_id"),
        _text(base_lineage, "base_lineage_id", optional=True), _text(base_checkpoint, "base_checkpoint_id", optional=True),
        dict(counts), _text(head, "head_checkpoint_id", optional=True), _text(created_at, "created_at"))


def plan_from_wire(value: object) -> SavePlan:
    if not isinstance(value, dict) or set(value) != {"row", "records", "lineage", "expected_head", "fork"}:
        raise WireError("a plan must hold exactly row, records, lineage, expected_head and fork")
    records = value["records"]
    if not isinstance(records, list):
        raise WireError("records must be a list")
    if type(value["fork"]) is not bool:
        raise WireError("fork must be true or false")
    return SavePlan(_row(value["row"]), [_record(r) for r in records], _lineage(value["lineage"]),
                    _text(value["expected_head"], "expected_head", optional=True), value["fork"])


def outcome_to_wire(outcome: BaseException | None) -> dict[str, Any] | None:
    """A save's outcome: None (committed), a conflict (kept as one, so the caller can tell), or any
    other error as its message."""
    if outcome is None:
        return None
    if isinstance(outcome, CheckpointConflictError):
        return {"conflict": [outcome.agent_id, outcome.expected_parent, outcome.actual_head]}
    return {"error": f"{type(outcome).__name__}: {outcome}"}


def outcome_from_wire(value: object, where: str) -> BaseException | None:
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"conflict"}:
        agent_id, expected, actual = _items(value["conflict"], 3, "conflict")
        return CheckpointConflictError(_text(agent_id, "conflict agent_id"),
                                       _text(expected, "conflict parent", optional=True),
                                       _text(actual, "conflict head", optional=True))
    if isinstance(value, dict) and set(value) == {"error"}:
        return StorageError(f"{where}: {_text(value['error'], 'error')}")
    raise WireError("an outcome must be null, a conflict or an error")


def encode(message: Any) -> bytes:
    """One framed message: its length, then its JSON."""
    body = orjson.dumps(message)
    if len(body) > MAX_FRAME:
        raise WireError(f"a message of {len(body)} bytes is over the {MAX_FRAME}-byte limit")
    return FRAME.pack(len(body)) + body


def decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"unreadable message ({exc})") from None
