"""The saver's rows in process memory (for ``memory://`` stores): dictionaries under one lock."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

from .encoding import BlobMeta, Chain, StoredBlob
from .rows import BlobKey, CheckpointRecord, ListQuery, MissingBaseError, NewBlob, WriteRecord

_ThreadKey = tuple[str, str, str]  # (thread, namespace, id)


class MemoryTables:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._checkpoints: dict[_ThreadKey, CheckpointRecord] = {}
        self._blobs: dict[tuple[str, str, str, str], StoredBlob] = {}
        self._writes: dict[_ThreadKey, dict[tuple[str, int], WriteRecord]] = {}

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def put_checkpoint(self, record: CheckpointRecord, blobs: Sequence[NewBlob]) -> None:
        with self._lock:
            for new in blobs:
                base = new.blob.base_version
                if base is not None and (new.thread_id, new.checkpoint_ns, new.channel, base) not in self._blobs:
                    raise MissingBaseError(new.channel)
            for new in blobs:
                key = (new.thread_id, new.checkpoint_ns, new.channel, new.version)
                if key not in self._blobs:
                    self._blobs[key] = StoredBlob.of(new.version, new.blob)
            self._checkpoints[(record.thread_id, record.checkpoint_ns, record.checkpoint_id)] = record

    def get_checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRecord | None:
        with self._lock:
            if checkpoint_id is not None:
                return self._checkpoints.get((thread_id, checkpoint_ns, checkpoint_id))
            found = [r for (t, ns, _), r in self._checkpoints.items() if t == thread_id and ns == checkpoint_ns]
            return max(found, key=lambda r: r.checkpoint_id) if found else None

    def list_checkpoints(self, query: ListQuery) -> list[CheckpointRecord]:
        with self._lock:
            rows = [
                r for r in self._checkpoints.values()
                if (query.thread_id is None or r.thread_id == query.thread_id)
                and (query.checkpoint_ns is None or r.checkpoint_ns == query.checkpoint_ns)
                and (query.checkpoint_id is None or r.checkpoint_id == query.checkpoint_id)
                and (query.before_id is None or r.checkpoint_id < query.before_id)
            ]
        rows.sort(key=lambda r: r.checkpoint_id, reverse=True)
        return rows if query.limit is None else rows[: query.limit]

    def blob_chains(self, thread_id: str, checkpoint_ns: str, versions: dict[str, str]) -> dict[str, Chain]:
        chains = {}
        with self._lock:
            for channel, version in versions.items():
                target = self._blobs.get((thread_id, checkpoint_ns, channel, version))
                if target is not None:
                    chains[channel] = Chain.walk(target, _ChannelView(self._blobs, thread_id, checkpoint_ns, channel))
        return chains

    def blob_meta(self, thread_id: str, checkpoint_ns: str, channel: str, version: str) -> BlobMeta | None:
        blob = self._blobs.get((thread_id, checkpoint_ns, channel, version))
        return None if blob is None else blob.meta

    def put_writes(self, records: Sequence[WriteRecord]) -> None:
        with self._lock:
            for r in records:
                stored = self._writes.setdefault((r.thread_id, r.checkpoint_ns, r.checkpoint_id), {})
                if r.idx < 0 or (r.task_id, r.idx) not in stored:
                    stored[(r.task_id, r.idx)] = r

    def get_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRecord]:
        with self._lock:
            stored = list(self._writes.get((thread_id, checkpoint_ns, checkpoint_id), {}).values())
        return sorted(stored, key=lambda r: (r.task_path, r.task_id, r.idx))

    def get_write(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str,
                  idx: int) -> WriteRecord | None:
        with self._lock:
            return self._writes.get((thread_id, checkpoint_ns, checkpoint_id), {}).get((task_id, idx))

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            tables: tuple[dict[Any, Any], ...] = (self._checkpoints, self._blobs, self._writes)
            for table in tables:
                for key in [k for k in table if k[0] == thread_id]:
                    del table[key]

    def delete_checkpoints(self, keys: Iterable[tuple[str, str, str]]) -> None:
        with self._lock:
            for key in keys:
                self._checkpoints.pop(key, None)
                self._writes.pop(key, None)

    def checkpoints_of_runs(self, run_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        wanted = set(run_ids)
        with self._lock:
            return [k for k, r in self._checkpoints.items() if r.run_id in wanted]

    def thread_checkpoints(self, thread_id: str) -> list[tuple[str, str, bytes]]:
        with self._lock:
            return [(r.checkpoint_ns, r.checkpoint_id, r.versions) for r in self._checkpoints.values()
                    if r.thread_id == thread_id]

    def thread_blobs(self, thread_id: str) -> list[tuple[str, str, str, str | None]]:
        with self._lock:
            return [(ns, ch, v, b.base_version) for (t, ns, ch, v), b in self._blobs.items() if t == thread_id]

    def delete_blobs(self, thread_id: str, keys: Sequence[BlobKey]) -> None:
        with self._lock:
            for ns, channel, version in keys:
                self._blobs.pop((thread_id, ns, channel, version), None)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._lock:
            for (t, ns, cid), r in list(self._checkpoints.items()):
                if t == source_thread_id:
                    self._checkpoints[(target_thread_id, ns, cid)] = replace(r, thread_id=target_thread_id)
            for (t, ns, ch, v), b in list(self._blobs.items()):
                if t == source_thread_id:
                    self._blobs[(target_thread_id, ns, ch, v)] = b
            for (t, ns, cid), writes in list(self._writes.items()):
                if t == source_thread_id:
                    self._writes[(target_thread_id, ns, cid)] = {
                        k: replace(w, thread_id=target_thread_id) for k, w in writes.items()
                    }

    def stored_bytes(self, thread_id: str) -> int:
        with self._lock:
            return (
                sum(len(r.checkpoint) + len(r.metadata) + len(r.versions)
                    for r in self._checkpoints.values() if r.thread_id == thread_id)
                + sum(len(b.data) for (t, *_), b in self._blobs.items() if t == thread_id)
                + sum(len(w.value) for (t, *_), ws in self._writes.items() if t == thread_id for w in ws.values())
            )


class _ChannelView(dict[str, StoredBlob]):
    """One channel's versions of the blob table, looked up by version (for ``Chain.walk``)."""

    def __init__(self, blobs: dict[tuple[str, str, str, str], StoredBlob], *channel_key: str) -> None:
        super().__init__()
        self._blobs, self._key = blobs, channel_key

    def get(self, version: str, default: StoredBlob | None = None) -> StoredBlob | None:  # type: ignore[override]
        key = cast("tuple[str, str, str, str]", (*self._key, version))
        return self._blobs.get(key, default)
