"""States to rows and back: the O(delta) encoding shared by every backend.

A save turns only the entries appended since the parent checkpoint into record
rows, chained by SHA-256 (each hash covers the previous hash and the entry's
canonical JSON), plus one small checkpoint row whose checksum covers its own
fields and the chain heads. Loading recomputes both, so a damaged or foreign
row is detected before anything is handed back.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from datetime import datetime, timezone
from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import (
    CheckpointCorruptError, InvalidStateTypeError, StateDivergedError, StateError, StateFormatError,
)
from ..ids import KNOWN_IDS, check_id, utc_now
from ..records import check_approval_record
from ..frozen import AppendOnlyView, FrozenDict, freeze
from ..jsonsafe import checked_json_copy
from ..types import (
    CONTAINER_FIELDS, FIELD_CHECKS, SCHEMA_VERSION, STATUSES, AgentState, CapturedState, check_field,
)
from .base import GENESIS_HASH, STREAMS, CheckpointRow, LineageRow, RecordRow, SavePlan, StreamHead

ROW_FIELDS = ("checkpoint_id", "agent_id", "parent_checkpoint_id", "step_number", "timestamp", "status")
BODY_FIELDS = (
    "model", "updated_at", "memory_contents", "pending_actions", "budget_spent_usd", "tool_usage_counts",
    "tool_results_cache", "token_usage", "workflow_run_id", "workflow_state", "metadata",
    "active_specialists", "specialist_invocations", "control_protocol_state", "registered_hooks",
    "hook_event_history",
)
# The row's fields are checked in this order: agent_id, checkpoint_id, parent_checkpoint_id,
# step_number, status, then timestamp (the first bad one is the one named).
_ROW_ID_CHECKS = tuple((name, FIELD_CHECKS[name]) for name in ("agent_id", "checkpoint_id", "parent_checkpoint_id"))
_check_optional_id = FIELD_CHECKS["parent_checkpoint_id"]
_check_count = FIELD_CHECKS["step_number"]
_check_status = FIELD_CHECKS["status"]
# A capture's body scalars (its containers were checked as they were captured).
_check_str = FIELD_CHECKS["model"]
_check_updated_at = FIELD_CHECKS["updated_at"]
_check_money = FIELD_CHECKS["budget_spent_usd"]
_check_optional_str = FIELD_CHECKS["workflow_run_id"]
assert set(BODY_FIELDS) - set(CONTAINER_FIELDS) == {"model", "updated_at", "budget_spent_usd", "workflow_run_id"}
_NO_HEADS = {stream: StreamHead(0) for stream in STREAMS}
_ROW_OVERHEAD = 200  # ids, numbers and checksum of a checkpoint row, roughly


_dumps = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS
_sha256 = hashlib.sha256


def canonical(value: Any) -> bytes:
    """The one JSON form we hash and store: sorted keys, no spaces."""
    return _dumps(value, option=_SORT_KEYS)


def chain_step(previous_hex: str, data: bytes) -> str:
    """The hash chain's next value: SHA-256 of the previous one (as bytes) and the entry's data."""
    return _sha256(bytes.fromhex(previous_hex) + data).hexdigest()


def row_checksum(
    checkpoint_id: str, agent_id: str, lineage_id: str, parent: str | None, step_number: int,
    timestamp: str, status: str, heads: dict[str, StreamHead], body: bytes,
) -> str:
    covered = [
        checkpoint_id, agent_id, lineage_id, parent, step_number, timestamp, status,
        {stream: [head.count, head.head_hash, head.crc] for stream, head in heads.items()},  # sorted by canonical
        hashlib.sha256(body).hexdigest(),
    ]
    return hashlib.sha256(canonical(covered)).hexdigest()


def _check_entry(stream: str, entry: Any, index: int) -> Any:
    where = f"{stream}[{index}]"
    if stream == "approval_history":
        return check_approval_record(entry, where)
    if not isinstance(entry, dict):
        raise InvalidStateTypeError(f"{where} must be an object, got {type(entry).__name__}")
    return freeze(checked_json_copy(entry, where))


def _checked_fields(state: AgentState) -> tuple[int, str, str, dict[str, Any]]:
    """The row's step number, timestamp and status and the body's fields, after checking the row's
    ids: every field validated, or (a ``CapturedState``, whose JSON fields were checked as they
    were captured) the scalars only."""
    if type(state) is CapturedState:
        return _checked_capture(state)
    for name, check in _ROW_ID_CHECKS:
        check(getattr(state, name), name)
    step_number = _check_count(state.step_number, "step_number")
    status = _check_status(state.status, "status")
    timestamp = _stored_timestamp(state.timestamp)
    return step_number, timestamp, status, {name: check_field(name, getattr(state, name)) for name in BODY_FIELDS}


def _checked_capture(state: CapturedState) -> tuple[int, str, str, dict[str, Any]]:
    # Each check is its function's, in the same order; a value of the usual exact type that the
    # function would return unchanged (an id already found valid, a count, a listed status ...)
    # is taken without the call, anything else goes through it (and fails there, named).
    known = KNOWN_IDS
    agent_id = state.agent_id
    if type(agent_id) is not str or agent_id not in known:
        check_id(agent_id, "agent_id")
    check_id(state.checkpoint_id, "checkpoint_id")
    parent = state.parent_checkpoint_id
    if parent is not None and (type(parent) is not str or parent not in known):
        _check_optional_id(parent, "parent_checkpoint_id")
    step_number = state.step_number
    if type(step_number) is not int or step_number < 0:
        step_number = _check_count(step_number, "step_number")
    status = state.status
    if type(status) is not str or status not in STATUSES:
        status = _check_status(status, "status")
    moment = state.timestamp
    stamp = state.stamp
    timestamp = stamp[1] if stamp is not None and stamp[0] is moment else _stored_timestamp(moment)
    # the body's scalars, checked in BODY_FIELDS' order
    model = state.model
    if type(model) is not str:
        model = _check_str(model, "model")
    updated_at = state.updated_at
    if updated_at is moment and moment.microsecond and moment.tzinfo is timezone.utc:
        updated_text = timestamp  # the capture's one instant, already formatted
    else:
        updated_text = _check_updated_at(updated_at, "updated_at")
    budget = state.budget_spent_usd
    if type(budget) is not float or not 0.0 <= budget < math.inf:
        budget = _check_money(budget, "budget_spent_usd")
    run_id = state.workflow_run_id
    if run_id is not None and type(run_id) is not str:
        run_id = _check_optional_str(run_id, "workflow_run_id")
    return step_number, timestamp, status, {  # BODY_FIELDS (a test holds this to them)
        # CONTAINER_FIELDS, as captured
        "memory_contents": state.memory_contents,
        "pending_actions": state.pending_actions,
        "tool_results_cache": state.tool_results_cache,
        "metadata": state.metadata,
        "tool_usage_counts": state.tool_usage_counts,
        "token_usage": state.token_usage,
        "workflow_state": state.workflow_state,
        "active_specialists": state.active_specialists,
        "specialist_invocations": state.specialist_invocations,
        "control_protocol_state": state.control_protocol_state,
        "registered_hooks": state.registered_hooks,
        "hook_event_history": state.hook_event_history,
        "model": model,
        "updated_at": updated_text,
        "budget_spent_usd": budget,
        "workflow_run_id": run_id,
    }


def _stored_timestamp(value: object) -> str:
    """A checkpoint's timestamp as stored: UTC ISO text with microseconds (compares as text)."""
    if isinstance(value, datetime) and value.tzinfo is timezone.utc:
        return value.isoformat(timespec="microseconds")  # the usual case: formatted once
    return _utc(check_field("timestamp", value))


def plan_save(state: AgentState, parent: CheckpointRow | None, lineage_id: str) -> SavePlan:
    """The rows a save of ``state`` writes on top of ``parent`` (None: the agent's first).

    Only entries past the parent's counts are encoded and hashed, so the cost is
    O(what changed). Every field is validated first (a ``CapturedState``'s JSON fields and
    frozen entries were validated when captured); nothing is written for an invalid state.
    """
    trusted = type(state) is CapturedState
    try:  # (_checked_fields, and below canonical, chain_step and _new_entries, without their calls)
        if type(state) is CapturedState:
            step_number, timestamp, status, body = _checked_capture(state)
        else:
            step_number, timestamp, status, body = _checked_fields(state)
    except StateError as exc:
        raise type(exc)(f"cannot save checkpoint {state.checkpoint_id!r}: {exc}") from None
    body["schema_version"] = SCHEMA_VERSION
    body_bytes = _dumps(body, option=_SORT_KEYS)
    size = len(body_bytes) + _ROW_OVERHEAD
    heads: dict[str, StreamHead] = {}
    records: list[RecordRow] = []
    parent_heads = parent.heads if parent is not None else _NO_HEADS
    for stream in STREAMS:
        entries: Sequence[Any] = getattr(state, stream)
        base = parent_heads[stream]
        length = len(entries)
        if length == base.count:
            heads[stream] = base
            continue
        if length < base.count:
            raise StateDivergedError(
                f"agent {state.agent_id!r}: {stream} has {length} entries but its parent checkpoint "
                f"{parent.checkpoint_id if parent else None!r} already has {base.count}; history is append-only"
            )
        head, crc = base.head_hash, base.crc
        # entries[base.count:]; a captured state's live-history view hands its slice over directly
        new = entries.since(base.count) if type(entries) is AppendOnlyView else entries[base.count:]
        for seq, entry in enumerate(new, base.count):
            if not (trusted and type(entry) is FrozenDict):  # frozen entries were checked as they were made
                try:
                    entry = _check_entry(stream, entry, seq)
                except StateError as exc:
                    raise type(exc)(f"cannot save checkpoint {state.checkpoint_id!r}: {exc}") from None
            try:
                data = _dumps(entry, option=_SORT_KEYS)
            except TypeError as exc:  # a hand-made frozen entry holding something that is not JSON
                raise InvalidStateTypeError(
                    f"cannot save checkpoint {state.checkpoint_id!r}: {stream}[{seq}] is not JSON ({exc})") from None
            head = _sha256(bytes.fromhex(head) + data).hexdigest()
            crc = zlib.crc32(data, zlib.crc32(b",", crc) if seq else crc)
            records.append(RecordRow(lineage_id, stream, seq, data, head))
            size += len(data) + 64
        heads[stream] = StreamHead(length, head, crc)
    checkpoint_id = state.checkpoint_id
    parent_id = parent.checkpoint_id if parent is not None else None
    checksum = row_checksum(
        checkpoint_id, state.agent_id, lineage_id, parent_id, step_number, timestamp, status, heads, body_bytes,
    )
    row = CheckpointRow(
        checkpoint_id, state.agent_id, lineage_id, parent_id, step_number, timestamp, status, heads, body_bytes,
        checksum, size,
    )
    new_lineage = None
    if parent is None:
        new_lineage = LineageRow(lineage_id, state.agent_id, None, None, {}, checkpoint_id, utc_now())
    return SavePlan(row, records, new_lineage, parent_id)


def _utc(timestamp: str) -> str:
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def plan_fork(source: CheckpointRow, new_checkpoint_id: str, new_lineage_id: str, agent_id: str) -> SavePlan:
    """A new lineage starting at ``source``: a copy of its row that shares its records."""
    heads = dict(source.heads)
    timestamp = utc_now()
    checksum = row_checksum(
        new_checkpoint_id, agent_id, new_lineage_id, source.checkpoint_id, source.step_number,
        timestamp, source.status, heads, source.body,
    )
    row = CheckpointRow(
        new_checkpoint_id, agent_id, new_lineage_id, source.checkpoint_id, source.step_number, timestamp,
        source.status, heads, source.body, checksum, len(source.body) + _ROW_OVERHEAD,
    )
    lineage = LineageRow(
        new_lineage_id, agent_id, source.lineage_id, source.checkpoint_id,
        {stream: head.count for stream, head in heads.items()}, new_checkpoint_id, timestamp,
    )
    return SavePlan(row=row, new_lineage=lineage, expected_head=None, is_fork=True)


def verify_row(row: CheckpointRow) -> None:
    """Raise ``CheckpointCorruptError`` unless the row's checksum matches its contents."""
    expected = row_checksum(
        row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id, row.step_number,
        row.timestamp, row.status, row.heads, row.body,
    )
    if expected != row.checksum:
        raise CheckpointCorruptError(row.checkpoint_id, "checksum mismatch (the stored row was changed or damaged)")


def verify_chain(row: CheckpointRow, stream: str, records: Sequence[RecordRow]) -> None:
    """Raise unless ``records`` are exactly the entries the row's chain head covers."""
    head = row.heads[stream]
    if len(records) != head.count:
        raise CheckpointCorruptError(
            row.checkpoint_id, f"{stream} has {len(records)} stored entries, the checkpoint covers {head.count}"
        )
    digest = bytes.fromhex(GENESIS_HASH)
    sha256 = hashlib.sha256
    for index, record in enumerate(records):
        if record.seq != index:
            raise CheckpointCorruptError(row.checkpoint_id, f"{stream} entry {index} is missing")
        digest = sha256(digest + record.data).digest()
    if digest.hex() != head.head_hash:
        raise CheckpointCorruptError(row.checkpoint_id, f"{stream} entries do not match the checkpoint's hash chain")


def verify_stream(row: CheckpointRow, stream: str, count: int, joined: bytes, *, known: int = 0,
                  known_crc: int = 0) -> None:
    """Raise unless ``joined`` is exactly the entries the row covers past the first ``known``
    ones (whose CRC-32 is ``known_crc``): count and the CRC-32 of all of them joined by commas."""
    crc = zlib.crc32(joined, zlib.crc32(b",", known_crc) if known and count else known_crc)
    check_stream(row, stream, known + count, crc)


def check_stream(row: CheckpointRow, stream: str, count: int, crc: int) -> None:
    """Raise unless ``count`` entries whose data joined by commas has CRC-32 ``crc`` are exactly
    what the row covers of ``stream``."""
    head = row.heads[stream]
    if count != head.count:
        raise CheckpointCorruptError(
            row.checkpoint_id, f"{stream} has {count} stored entries, the checkpoint covers {head.count}"
        )
    if crc != head.crc:
        raise CheckpointCorruptError(row.checkpoint_id, f"{stream} entries do not match the checkpoint's hash chain")


def state_from_rows(row: CheckpointRow, streams: dict[str, tuple[int, bytes]]) -> AgentState:
    """Rebuild the ``AgentState`` of a verified row from its streams' (count, joined data)."""
    verify_row(row)
    for stream in STREAMS:
        verify_stream(row, stream, *streams[stream])
    try:
        entries = {stream: orjson.loads(b"[" + joined + b"]") if count else [] for stream, (count, joined) in
                   streams.items()}
    except orjson.JSONDecodeError as exc:
        raise CheckpointCorruptError(row.checkpoint_id, f"unreadable contents ({exc})") from None
    return state_from_parts(row, entries)


def state_from_parts(row: CheckpointRow, entries: dict[str, list[Any]]) -> AgentState:
    """The ``AgentState`` of a row whose checksum was verified, with its already verified entries."""
    try:
        body = orjson.loads(row.body)
        version = body.pop("schema_version", None)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise StateFormatError(f"checkpoint {row.checkpoint_id!r} was written by a newer kaizen-state "
                                   f"(schema {version}; this one reads up to {SCHEMA_VERSION}): upgrade kaizen-state")
        values: dict[str, Any] = {name: getattr(row, name) for name in ROW_FIELDS}
        values.update(body)
        values.update(entries)
        return AgentState(**values)
    except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
        raise CheckpointCorruptError(row.checkpoint_id, f"unreadable contents ({exc})") from None
