"""Deleting and pruning: remove checkpoints and writes, then the channel versions nothing needs.

A version is needed while a remaining checkpoint reads it or a needed version extends it
(a delta is rebuilt from the versions before it), so collection follows base pointers.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from .rows import BlobKey, SaverTables

STRATEGIES = ("keep_latest", "delete")


def delete_runs(tables: SaverTables, run_ids: Sequence[str]) -> None:
    keys = tables.checkpoints_of_runs(list(run_ids)) if run_ids else []
    if not keys:
        return
    tables.delete_checkpoints(keys)
    for thread_id in {key[0] for key in keys}:
        collect_unused_versions(tables, thread_id)


def prune_threads(tables: SaverTables, thread_ids: Sequence[str], strategy: str) -> None:
    """``keep_latest``: only each namespace's newest checkpoint stays; ``delete``: nothing does."""
    if strategy not in STRATEGIES:
        raise ValueError(f"prune strategy must be 'keep_latest' or 'delete', got {strategy!r}")
    for thread_id in map(str, thread_ids):
        if strategy == "delete":
            tables.delete_thread(thread_id)
            continue
        rows = tables.thread_checkpoints(thread_id)
        newest: dict[str, str] = {}
        for ns, checkpoint_id, _ in rows:
            newest[ns] = max(newest.get(ns, checkpoint_id), checkpoint_id)
        old = [(thread_id, ns, cid) for ns, cid, _ in rows if newest[ns] != cid]
        if old:
            tables.delete_checkpoints(old)
            collect_unused_versions(tables, thread_id)


def collect_unused_versions(tables: SaverTables, thread_id: str) -> None:
    """Delete the versions no remaining checkpoint reads, keeping every version a kept one extends."""
    wanted: set[BlobKey] = set()
    for ns, _, versions in tables.thread_checkpoints(thread_id):
        wanted.update((ns, channel, version) for channel, version in orjson.loads(versions).items())
    bases = {(ns, channel, version): base for ns, channel, version, base in tables.thread_blobs(thread_id)}
    keep: set[BlobKey] = set()
    for key in wanted:
        while key in bases and key not in keep:
            keep.add(key)
            base = bases[key]
            if base is None:
                break
            key = (key[0], key[1], base)
    tables.delete_blobs(thread_id, [key for key in bases if key not in keep])
