"""The storage protocol: what every backend stores and the few operations it offers.

A backend is a dumb, durable row store. It does not know about ``AgentState``;
``rows.py`` turns states into rows and back, and ``SyncStateManager`` resolves
lineages and applies policy. What a backend must guarantee:

* ``write`` is atomic (all rows of a plan or none) and checks that the plan's
  parent is still its lineage's head, raising ``CheckpointConflictError`` if not;
* rows, once written, never change (only the lineage head pointer moves);
* reads return exactly the bytes that were written.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import CheckpointNotFoundError, InvalidStateValueError, LeaseHeldError, ReadOnlyStoreError

# Where a store lives when nobody says (the CLI's ``--store`` default, ``open_store(None)``).
DEFAULT_STORE_URL = "sqlite:///.kaizen/state.db"

# Append-only streams of an agent's state; each entry is stored once.
STREAMS = ("approval_history", "conversation_history", "completed_actions")
# How stores that keep streams in one table or file number them (persisted: never reorder).
STREAM_NUMBERS = {stream: number for number, stream in enumerate(STREAMS)}
GENESIS_HASH = "0" * 64

# The first bytes of a sealed (encrypted) body or record. Canonical JSON never starts with a NUL
# byte, so anyone holding a row can tell "encrypted" from "damaged" without the key.
SEALED_MARKER = b"\x00kz1"


def is_sealed(data: bytes) -> bool:
    """True for a body or record stored encrypted (see ``encrypted.py``)."""
    return data.startswith(SEALED_MARKER)


def stream_number(stream: str) -> int:
    """The stored number of ``stream``; refuses a name that is not one of ``STREAMS``."""
    try:
        return STREAM_NUMBERS[stream]
    except KeyError:
        raise InvalidStateValueError(f"stream {stream!r} is not one of {', '.join(STREAMS)}") from None


def check_lease_free(agent_id: str, held: LeaseRow | None, worker_id: str, now: float) -> None:
    """Raise ``LeaseHeldError`` if another worker holds an unexpired lease on the agent."""
    if held is not None and held.worker_id != worker_id and held.expires_at > now:
        raise LeaseHeldError(agent_id, held.worker_id, held.expires_at)


def refuse_write(url: str, what: str) -> ReadOnlyStoreError:
    """The error for a write attempted on a store opened read-only."""
    return ReadOnlyStoreError(f"cannot {what}: the store {url} was opened read-only; "
                              "open it without read_only=True to change it")


def joined_stream(records: list[RecordRow]) -> tuple[int, bytes]:
    """``read_stream``'s answer from ``read_records``' records."""
    return len(records), b",".join([record.data for record in records])


def stream_chunks(store: CheckpointStore, lineage_id: str, stream: str, start: int, stop: int,
                  chunk: int, packed: bool = True) -> Generator[tuple[int, bytes], None, None]:
    """``store.read_stream`` of ``[start, stop)`` in pieces of about ``chunk`` records, in order, as a
    load reads a long history (each piece parsed and dropped before the next). A store may offer its
    own ``read_stream_chunks`` with the same answers (SQLite does, to read with less memory and whole
    blocks from their packs unless ``packed`` is false); any other store, a plug-in one included, is
    read a ``read_stream`` at a time."""
    own = getattr(store, "read_stream_chunks", None)
    if own is not None:
        yield from (own(lineage_id, stream, start, stop, chunk) if packed
                    else own(lineage_id, stream, start, stop, chunk, packed=False))
        return
    for first in range(start, stop, chunk):
        yield store.read_stream(lineage_id, stream, first, min(first + chunk, stop))


class StreamFromRecords:
    """``read_stream`` for stores whose records are already in hand (memory, files, encryption):
    the records' data joined by commas."""

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        raise NotImplementedError

    def read_stream(self, lineage_id: str, stream: str, start: int, stop: int) -> tuple[int, bytes]:
        return joined_stream(self.read_records(lineage_id, stream, start, stop))


# The rows below are made on every save. They stay frozen dataclasses (assignment raises;
# ``fields``/``replace`` work), but their ``__init__`` fills the instance dict in one call instead
# of the generated one's ``object.__setattr__`` per field, which cost more than the rest of a row.


@dataclass(frozen=True, init=False)
class StreamHead:
    """How many entries of a stream a checkpoint covers, the hash chain's value there, and the
    running CRC-32 of those entries joined by commas (one C call verifies a whole load; the
    SHA-256 chain is what ``verify_audit`` and imports check)."""

    count: int
    head_hash: str = GENESIS_HASH
    crc: int = 0

    def __init__(self, count: int, head_hash: str = GENESIS_HASH, crc: int = 0) -> None:
        self.__dict__.update(count=count, head_hash=head_hash, crc=crc)


def heads_to_json(heads: dict[str, StreamHead]) -> dict[str, list[Any]]:
    """The one JSON form of a checkpoint's stream heads, shared by every backend and the export."""
    return {stream: [head.count, head.head_hash, head.crc] for stream, head in heads.items()}


def heads_from_json(doc: dict[str, Any]) -> dict[str, StreamHead]:
    return {str(stream): StreamHead(int(count), str(digest), int(crc)) for stream, (count, digest, crc) in doc.items()}


@dataclass(frozen=True, init=False)
class CheckpointRow:
    """One checkpoint as stored: small, whatever the length of the history."""

    checkpoint_id: str
    agent_id: str
    lineage_id: str
    parent_checkpoint_id: str | None
    step_number: int
    timestamp: str
    status: str
    heads: dict[str, StreamHead]
    body: bytes  # canonical JSON of the state's non-stream fields
    checksum: str
    size_bytes: int  # bytes this checkpoint added: body + its new records

    def __init__(self, checkpoint_id: str, agent_id: str, lineage_id: str, parent_checkpoint_id: str | None,
                 step_number: int, timestamp: str, status: str, heads: dict[str, StreamHead], body: bytes,
                 checksum: str, size_bytes: int) -> None:
        self.__dict__.update(
            checkpoint_id=checkpoint_id, agent_id=agent_id, lineage_id=lineage_id,
            parent_checkpoint_id=parent_checkpoint_id, step_number=step_number, timestamp=timestamp,
            status=status, heads=heads, body=body, checksum=checksum, size_bytes=size_bytes,
        )


@dataclass(frozen=True, init=False)
class RecordRow:
    """One entry of an append-only stream, as canonical JSON bytes plus its chain hash."""

    lineage_id: str
    stream: str
    seq: int
    data: bytes
    hash: str

    def __init__(self, lineage_id: str, stream: str, seq: int, data: bytes, hash: str) -> None:  # noqa: A002
        self.__dict__.update(lineage_id=lineage_id, stream=stream, seq=seq, data=data, hash=hash)


@dataclass(frozen=True)
class LineageRow:
    """A line of checkpoints of one agent. A fork's lineage starts from a base lineage's
    checkpoint and shares that lineage's records below ``base_counts``."""

    lineage_id: str
    agent_id: str
    base_lineage_id: str | None
    base_checkpoint_id: str | None
    base_counts: dict[str, int]
    head_checkpoint_id: str | None
    created_at: str


@dataclass(frozen=True)
class LeaseRow:
    """Which worker may run an agent, until when (seconds since the epoch, the store's clock)."""

    agent_id: str
    worker_id: str
    expires_at: float


@dataclass(frozen=True, init=False)
class SavePlan:
    """Everything one save writes, computed before the backend's transaction.

    ``new_lineage`` is set for the first checkpoint of an agent (``expected_head``
    None: the agent must have no checkpoint yet) and for forks; otherwise the
    checkpoint extends ``row.lineage_id`` whose head must still be ``expected_head``.
    """

    row: CheckpointRow
    records: list[RecordRow] = field(default_factory=list)
    new_lineage: LineageRow | None = None
    expected_head: str | None = None
    is_fork: bool = False

    def __init__(self, row: CheckpointRow, records: list[RecordRow] | None = None,
                 new_lineage: LineageRow | None = None, expected_head: str | None = None,
                 is_fork: bool = False) -> None:
        self.__dict__.update(row=row, records=[] if records is None else records, new_lineage=new_lineage,
                             expected_head=expected_head, is_fork=is_fork)


@runtime_checkable
class CheckpointStore(Protocol):
    """The protocol every backend implements (memory, filesystem, SQLite, PostgreSQL).

    Our stores also carry ``read_only`` (True: every write raises ``ReadOnlyStoreError``) and the
    original's async ``StorageBackend`` methods (``state_backend.py``); neither is required here.
    """

    url: str

    def setup(self) -> None:
        """Create or migrate the schema; safe to call twice and from two processes."""

    def close(self) -> None: ...

    def write(self, plan: SavePlan) -> None:
        """Write the plan atomically; ``CheckpointConflictError`` if the parent is no longer the head."""

    def read_checkpoint(self, checkpoint_id: str) -> CheckpointRow:
        """The row, or ``CheckpointNotFoundError``."""

    def read_lineage(self, lineage_id: str) -> LineageRow: ...

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        """Records with ``start <= seq < stop`` of one lineage's own stream, in order."""

    def read_stream(self, lineage_id: str, stream: str, start: int, stop: int) -> tuple[int, bytes]:
        """The same records' data only, as (how many, the data joined by commas): the load path."""

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        """The agent's most recently saved checkpoint, or None."""

    def list_rows(
        self, agent_id: str, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointRow]:
        """Newest first; ``before`` (ISO timestamp) keeps those saved strictly earlier."""

    def list_lineages(self, agent_id: str) -> list[LineageRow]: ...

    def list_agents(self) -> list[str]: ...

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        """Delete these rows (records stay: later checkpoints need them); returns how many."""

    def delete_agent(self, agent_id: str) -> int:
        """Delete the agent's lineages, records and checkpoints; returns checkpoints deleted."""

    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        """Write an exported history verbatim and atomically (the agent must not exist yet)."""

    def replace_agent(self, agent_id: str, lineages: list[LineageRow], records: list[RecordRow],
                      rows: list[CheckpointRow]) -> None:
        """Swap the agent's whole history for these rows in one transaction (key rotation)."""

    def acquire_lease(self, agent_id: str, worker_id: str, ttl: float) -> LeaseRow:
        """Take or renew the agent's lease for ``ttl`` seconds; ``LeaseHeldError`` if another
        worker holds an unexpired one. Atomic across processes."""

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        """Give the lease up if ``worker_id`` holds it; returns whether it did."""


def checkpoint_not_found(checkpoint_id: str, where: str) -> CheckpointNotFoundError:
    """The one wording for a missing checkpoint (it begins as the original's did, for code that matches it)."""
    return CheckpointNotFoundError(f"Checkpoint not found: {checkpoint_id!r} is not in {where}")


def lineage_not_found(lineage_id: str, where: str) -> CheckpointNotFoundError:
    return CheckpointNotFoundError(f"lineage {lineage_id!r} not found in {where}")
