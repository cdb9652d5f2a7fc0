"""``KaizenSaver``: a LangGraph checkpointer on a kaizen store.

Every channel version is stored once; a version that extends the previous one
(``add_messages``, ``operator.add`` lists) stores only what was appended
(``encoding.py``). Human answers to ``interrupt()`` are recorded in the thread's
hash-chained approval history (``audit.py``). Async methods run the sync ones in
a worker thread: one implementation, two faces.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import orjson

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    from .errors import LangGraphNotInstalledError

    raise LangGraphNotInstalledError(str(exc)) from exc

from kaizen.core.bridge import in_thread
from kaizen.core.autonomy.state.storage import CheckpointStore, open_store

from .audit import DecisionLog
from .encoding import BlobMeta, checked_dumps, checked_loads, digest, empty_blob, encode, rebuild, safe_serde
from .errors import SavedDataCorruptError
from .housekeeping import delete_runs, prune_threads
from .rows import CheckpointRecord, ListQuery, MissingBaseError, NewBlob, SaverTables, WriteRecord
from .tables import tables_for

_CACHE_SIZE = 512


class _Lru(OrderedDict[Any, Any]):
    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)


def _configurable(config: RunnableConfig) -> dict[str, Any]:
    return config.get("configurable", {})


class KaizenSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a kaizen store (``sqlite:///...``, ``postgresql://...?schema=...``,
    ``memory://``, or a store object). ``audit=False`` stops recording ``interrupt()`` answers."""

    def __init__(self, store: CheckpointStore | str | None = None, *, serde: Any = None, audit: bool = True) -> None:
        super().__init__(serde=safe_serde(serde))
        self.store: CheckpointStore = open_store(store if store is not None else "memory://")
        self.tables: SaverTables = tables_for(self.store)
        self.decisions = DecisionLog(self.store) if audit else None
        self._ready = False
        self._versions_cache: _Lru = _Lru()  # (thread, ns, checkpoint id) -> {channel: version}
        self._meta_cache: _Lru = _Lru()  # (thread, ns, channel, version) -> BlobMeta

    # --- opening and closing ------------------------------------------------------------
    @classmethod
    @contextmanager
    def from_conn_string(cls, url: str, **kwargs: Any) -> Iterator[KaizenSaver]:
        """``with KaizenSaver.from_conn_string("sqlite:///state.db") as saver:`` (set up, then closed)."""
        saver = cls(url, **kwargs)
        try:
            saver.setup()
            yield saver
        finally:
            saver.close()

    def setup(self) -> None:
        """Create the store's schema and the saver's tables; safe to call again."""
        self.store.setup()
        self.tables.setup()
        self._ready = True

    def close(self) -> None:
        self.tables.close()
        self.store.close()

    def __enter__(self) -> KaizenSaver:
        self.setup()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> KaizenSaver:
        await in_thread(self.setup)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await in_thread(self.close)

    def _tables(self) -> SaverTables:
        if not self._ready:
            self.setup()
        return self.tables

    # --- writing --------------------------------------------------------------------------
    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        conf = _configurable(config)
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        parent_id = conf.get("checkpoint_id")
        stored: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = stored.pop("channel_values", {})
        versions = {channel: str(version) for channel, version in checkpoint["channel_versions"].items()}
        type_, body = checked_dumps(self.serde, stored)
        md_type, md = checked_dumps(self.serde, get_serializable_checkpoint_metadata(config, metadata))
        versions_json = orjson.dumps(versions)
        record = CheckpointRecord(
            thread_id, ns, checkpoint["id"], parent_id, _run_id(metadata, config), type_, body, md_type, md,
            versions_json, digest(type_.encode(), b"\0", body, b"\0", md_type.encode(), b"\0", md, b"\0", versions_json),
        )
        parent_versions = self._parent_versions(thread_id, ns, parent_id)
        tables = self._tables()
        try:
            blobs = self._encode_blobs(thread_id, ns, values, new_versions, parent_versions)
            tables.put_checkpoint(record, blobs)
        except MissingBaseError:  # a base was pruned meanwhile: store these versions whole
            self._meta_cache.clear()
            blobs = self._encode_blobs(thread_id, ns, values, new_versions, {})
            tables.put_checkpoint(record, blobs)
        for new in blobs:
            self._meta_cache.remember((thread_id, ns, new.channel, new.version), new.blob.meta)
        self._versions_cache.remember((thread_id, ns, checkpoint["id"]), versions)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _encode_blobs(self, thread_id: str, ns: str, values: dict[str, Any], new_versions: ChannelVersions,
                      parent_versions: dict[str, str]) -> list[NewBlob]:
        blobs = []
        for channel, version in new_versions.items():
            version = str(version)
            if channel not in values:
                blobs.append(NewBlob(thread_id, ns, channel, version, empty_blob(version)))
                continue
            base_version = parent_versions.get(channel)
            base = None
            if base_version is not None and base_version != version:
                base = self._blob_meta(thread_id, ns, channel, base_version)
            blobs.append(NewBlob(thread_id, ns, channel, version,
                                 encode(self.serde, values[channel], version, base_version, base)))
        return blobs

    def _parent_versions(self, thread_id: str, ns: str, parent_id: str | None) -> dict[str, str]:
        if parent_id is None:
            return {}
        key = (thread_id, ns, parent_id)
        cached = self._versions_cache.get(key)
        if cached is None:
            row = self._tables().get_checkpoint(thread_id, ns, parent_id)
            cached = orjson.loads(row.versions) if row is not None else {}
            self._versions_cache.remember(key, cached)
        return cached

    def _blob_meta(self, thread_id: str, ns: str, channel: str, version: str) -> BlobMeta | None:
        key = (thread_id, ns, channel, version)
        meta = self._meta_cache.get(key)
        if meta is None:
            meta = self._tables().blob_meta(thread_id, ns, channel, version)
            if meta is None:
                return None
            self._meta_cache.remember(key, meta)
        return meta

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        conf = _configurable(config)
        thread_id, ns, checkpoint_id = str(conf["thread_id"]), conf.get("checkpoint_ns", ""), conf["checkpoint_id"]
        records = []
        for idx, (channel, value) in enumerate(writes):
            type_, data = checked_dumps(self.serde, value)
            records.append(WriteRecord(
                thread_id, ns, checkpoint_id, task_id, WRITES_IDX_MAP.get(channel, idx), channel, type_, data,
                task_path, digest(type_.encode(), b"\0", data),
            ))
        tables = self._tables()
        if self.decisions is not None:
            self.decisions.record_answers(self, thread_id, ns, checkpoint_id, task_id, task_path, writes)
        tables.put_writes(records)

    # --- reading --------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = _configurable(config)
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        row = self._tables().get_checkpoint(thread_id, ns, get_checkpoint_id(config))
        return None if row is None else self._tuple(row)

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        conf = _configurable(config) if config else {}
        query = ListQuery(
            thread_id=str(conf["thread_id"]) if conf.get("thread_id") is not None else None,
            checkpoint_ns=conf.get("checkpoint_ns"),
            checkpoint_id=conf.get("checkpoint_id"),
            before_id=get_checkpoint_id(before) if before else None,
            limit=None if filter else limit,
        )
        remaining = limit
        for row in self._tables().list_checkpoints(query):
            if remaining is not None and remaining <= 0:
                return
            if filter:
                metadata = self._metadata(row)
                if not all(metadata.get(key) == value for key, value in filter.items()):
                    continue
            if remaining is not None:
                remaining -= 1
            yield self._tuple(row)

    def _values(self, thread_id: str, checkpoint_ns: str, versions: dict[str, str]) -> dict[str, Any]:
        """Channel values at these versions, each rebuilt and checked against its digest."""
        values = {}
        for channel, chain in self._tables().blob_chains(thread_id, checkpoint_ns, versions).items():
            try:
                found = rebuild(chain)
            except ValueError as exc:
                raise SavedDataCorruptError(f"channel {channel!r}", thread_id, checkpoint_ns, str(exc)) from None
            if found is not None:
                values[channel] = checked_loads(self.serde, *found)
        return values

    def _tuple(self, row: CheckpointRecord) -> CheckpointTuple:
        where = f"checkpoint {row.checkpoint_id!r}"
        expected = digest(row.type.encode(), b"\0", row.checkpoint, b"\0", row.metadata_type.encode(), b"\0",
                          row.metadata, b"\0", row.versions)
        if expected != row.checksum:
            raise SavedDataCorruptError(where, row.thread_id, row.checkpoint_ns, "its checksum does not match")
        checkpoint = checked_loads(self.serde, row.type, row.checkpoint)
        checkpoint["channel_values"] = self._values(row.thread_id, row.checkpoint_ns, orjson.loads(row.versions))
        writes = []
        for w in self.tables.get_writes(row.thread_id, row.checkpoint_ns, row.checkpoint_id):
            if digest(w.type.encode(), b"\0", w.value) != w.checksum:
                raise SavedDataCorruptError(f"a pending write of task {w.task_id!r} to {w.channel!r} at {where}",
                                            row.thread_id, row.checkpoint_ns, "its checksum does not match")
            writes.append((w.task_id, w.channel, checked_loads(self.serde, w.type, w.value)))
        config = {"configurable": {"thread_id": row.thread_id, "checkpoint_ns": row.checkpoint_ns,
                                   "checkpoint_id": row.checkpoint_id}}
        parent = None
        if row.parent_checkpoint_id:
            parent = {"configurable": {"thread_id": row.thread_id, "checkpoint_ns": row.checkpoint_ns,
                                       "checkpoint_id": row.parent_checkpoint_id}}
        return CheckpointTuple(cast(RunnableConfig, config), checkpoint, self._metadata(row),
                               cast("RunnableConfig | None", parent), writes)

    def _metadata(self, row: CheckpointRecord) -> CheckpointMetadata:
        return cast(CheckpointMetadata, checked_loads(self.serde, row.metadata_type, row.metadata))

    def stored_bytes(self, thread_id: str) -> int:
        """What the thread takes in the store: its checkpoints, channel versions and writes."""
        return self._tables().stored_bytes(str(thread_id))

    # --- deleting and copying -------------------------------------------------------------
    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints and writes. Its approval history (the audit trail)
        stays; ``kaizen checkpoints delete --agent THREAD`` removes that too."""
        self._tables().delete_thread(str(thread_id))
        self._forget()

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        delete_runs(self._tables(), run_ids)
        self._forget()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._tables().copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        prune_threads(self._tables(), thread_ids, strategy)
        self._forget()

    def _forget(self) -> None:
        self._versions_cache.clear()
        self._meta_cache.clear()

    # --- versions -------------------------------------------------------------------------
    def get_next_version(self, current: str | int | float | None, channel: None = None) -> str:
        """Zero-padded counter plus a random suffix: ordered, distinct across forks, and short (a
        version is stored with each channel version and in every checkpoint)."""
        if current is None:
            number = 0
        elif isinstance(current, (int, float)):
            number = int(current)
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:012}.{random.getrandbits(32):08x}"

    # --- async faces: the sync methods in a worker thread ---------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await in_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        iterator = self.list(config, filter=filter, before=before, limit=limit)
        done = object()
        while (item := await in_thread(next, iterator, done)) is not done:
            yield cast(CheckpointTuple, item)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await in_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await in_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await in_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await in_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await in_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await in_thread(self.prune, thread_ids, strategy=strategy)


class AsyncKaizenSaver(KaizenSaver):
    """The same saver, opened with ``async with AsyncKaizenSaver.from_conn_string(url) as saver:``."""

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, url: str, **kwargs: Any) -> AsyncIterator[AsyncKaizenSaver]:  # type: ignore[override]
        saver = cls(url, **kwargs)
        try:
            await in_thread(saver.setup)
            yield saver
        finally:
            await in_thread(saver.close)


def _run_id(metadata: CheckpointMetadata, config: RunnableConfig) -> str | None:
    run_id = metadata.get("run_id") or config.get("metadata", {}).get("run_id")
    return None if run_id is None else str(run_id)
