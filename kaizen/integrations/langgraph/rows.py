"""The saver's rows and the small protocol every backend of them offers (memory, SQLite,
PostgreSQL). Backends store and return bytes; the saver does all (de)serialization."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .encoding import BlobMeta, Chain, EncodedBlob

BlobKey = tuple[str, str, str]  # (checkpoint_ns, channel, version) within a thread


@dataclass(frozen=True)
class CheckpointRecord:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    run_id: str | None
    type: str
    checkpoint: bytes  # the checkpoint without its channel values
    metadata_type: str
    metadata: bytes
    versions: bytes  # JSON {channel: version as text}: what the blobs are keyed by
    checksum: bytes


@dataclass(frozen=True)
class WriteRecord:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    idx: int
    channel: str
    type: str
    value: bytes
    task_path: str
    checksum: bytes


@dataclass(frozen=True)
class NewBlob:
    thread_id: str
    checkpoint_ns: str
    channel: str
    version: str
    blob: EncodedBlob


@dataclass(frozen=True)
class ListQuery:
    thread_id: str | None
    checkpoint_ns: str | None
    checkpoint_id: str | None
    before_id: str | None
    limit: int | None  # applied by the backend only when no metadata filter is given


class MissingBaseError(Exception):
    """A delta's base version is gone (pruned meanwhile): the saver stores the value whole."""


class SaverTables(Protocol):
    def setup(self) -> None: ...

    def close(self) -> None: ...

    def put_checkpoint(self, record: CheckpointRecord, blobs: Sequence[NewBlob]) -> None:
        """Write the checkpoint and its new channel versions atomically; each version once.
        ``MissingBaseError`` (nothing written) if a delta's base version does not exist."""

    def get_checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRecord | None:
        """That checkpoint, or the newest of the thread's namespace when ``checkpoint_id`` is None."""

    def list_checkpoints(self, query: ListQuery) -> list[CheckpointRecord]:
        """Newest first (descending checkpoint id)."""

    def blob_chains(self, thread_id: str, checkpoint_ns: str, versions: dict[str, str]) -> dict[str, Chain]:
        """Per channel: what rebuilding that version needs; channels with no stored version are
        left out."""

    def blob_meta(self, thread_id: str, checkpoint_ns: str, channel: str, version: str) -> BlobMeta | None:
        """What a later version needs to extend this one (no data read)."""

    def put_writes(self, records: Sequence[WriteRecord]) -> None:
        """Insert; a write with a negative idx (error, interrupt, resume...) replaces, others never do."""

    def get_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRecord]:
        """In ``writes_sort_key`` order: (task_path, task_id, idx)."""

    def get_write(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str,
                  idx: int) -> WriteRecord | None: ...

    def delete_thread(self, thread_id: str) -> None: ...

    def delete_checkpoints(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Delete these (thread, namespace, checkpoint id) rows and their writes."""

    def checkpoints_of_runs(self, run_ids: Sequence[str]) -> list[tuple[str, str, str]]: ...

    def thread_checkpoints(self, thread_id: str) -> list[tuple[str, str, bytes]]:
        """(namespace, checkpoint id, versions JSON) of every checkpoint of the thread."""

    def thread_blobs(self, thread_id: str) -> list[tuple[str, str, str, str | None]]:
        """(namespace, channel, version, base version) of every stored version of the thread."""

    def delete_blobs(self, thread_id: str, keys: Sequence[BlobKey]) -> None: ...

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None: ...

    def stored_bytes(self, thread_id: str) -> int:
        """Bytes of the thread's checkpoints, channel versions and writes (payloads, not indexes)."""
