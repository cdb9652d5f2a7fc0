"""Filesystem store: plain files under one directory (``file:///dir``), same semantics as SQLite.

Layout (directories 0700, files 0600; every name made from an id is a checked id)::

    <base>/_format.json                           {"format": "kaizen-fs", "version": 1}
    <base>/_locks/<agent_id>.lock                 the agent's flock target (kept after delete_agent)
    <base>/_index/c/<checkpoint_id>               "<agent_id> <order>": where a checkpoint lives
    <base>/_index/l/<lineage_id>                  "<agent_id>": which agent owns a lineage
    <base>/_leases/<agent_id>.json                {"worker_id", "expires_at"}: who runs the agent
    <base>/<agent_id>/checkpoints/<order>.json    one CheckpointRow (body base64); order = save order
    <base>/<agent_id>/lineages/<lineage_id>.json  the LineageRow + head_order, committed records length,
                                                  per stream a [seq, offset] mark every INDEX_EVERY records
    <base>/<agent_id>/records/<lineage_id>.rec    append-only [stream u8][seq u64][len u32][hash 32B][data]

With ``compress=True`` documents are written gzip-compressed and each record's data zlib-compressed
when that makes it smaller (the record header's stream byte then has its top bit set). Both forms are
self-describing, so any store object reads both, whatever its own ``compress`` setting.

A checkpoint document that cannot be read (zero-length or garbled: what a disk that lied about fsync
leaves after a power loss) is skipped when listing, with a ``DamagedEntryWarning`` naming it; the
checkpoints beside it stay listable and loadable, and ``list_damaged`` names every such entry.
``read_only=True`` creates nothing (no directory, no lock file) and refuses every write.

Every document goes to a temp file in its directory, is fsynced, renamed over, and the directory
fsynced. A save holds the agent's exclusive flock, truncates the records file to the committed length
(dropping what a crashed save appended), appends and fsyncs, writes the checkpoint document at order
1 + the highest ``head_order`` of the agent's lineages, and last rewrites the lineage document: the
commit point. A checkpoint document counts only if its lineage document exists and its order is at
most that lineage's ``head_order``, so one left by a crash is never listed and is overwritten by the
next save. Reads hold a shared flock. Index entries are hints, checked against the documents on use
(a stale one costs a scan of that agent's checkpoints).

``import_rows`` and ``replace_agent`` build the agent's next directory aside (hard links to what it
keeps), then rename the current one to ``.replaced-<agent_id>`` and the new one into place. If a crash
falls between the two renames, readers use ``.replaced-<agent_id>`` and the next writer moves it back.
"""

from __future__ import annotations

import bisect
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from ..errors import (
    CheckpointConflictError, CheckpointCorruptError, InvalidStateValueError, StorageError,
)
from ..ids import check_id
from .base import (
    checkpoint_not_found,
    lineage_not_found,
    CheckpointRow, LeaseRow, LineageRow, RecordRow, SavePlan, StreamFromRecords, check_lease_free, stream_number,
)
from .fs_format import (
    Doc, encode_doc, fsync_dir, lineage_row, new_lineage_doc, pack_records, read_json, row_doc, row_from_doc,
    unpack_records, write_file, write_synced,
)
from .fs_layout import FilesystemLayout
from .state_backend import StateBackendMixin


class FilesystemStorage(FilesystemLayout, StreamFromRecords, StateBackendMixin):
    """Checkpoints as files under ``base_dir``; threads and processes may share the directory.

    ``compress=True`` stores documents and records compressed (see the module docstring).
    ``encrypt=True`` with ``encryption_key`` (the original's keywords) gives the same store
    encrypted at rest (an ``EncryptedStorage`` around it).
    """

    def __new__(cls, base_dir: str | os.PathLike[str] = ".kaizen/checkpoints", compress: bool = False,
                encrypt: bool = False, encryption_key: str | bytes | None = None, *, read_only: bool = False) -> Any:
        if encrypt:
            if not encryption_key:
                raise StorageError("encrypt=True needs encryption_key (make one with `kaizen keys generate`)")
            from .encrypted import EncryptedStorage

            return EncryptedStorage(cls(base_dir, compress, read_only=read_only), encryption_key)
        return super().__new__(cls)

    def __init__(self, base_dir: str | os.PathLike[str] = ".kaizen/checkpoints", compress: bool = False,
                 encrypt: bool = False, encryption_key: str | bytes | None = None, *, read_only: bool = False) -> None:
        self.base_dir = Path(base_dir)
        self.compress = bool(compress)
        self.read_only = read_only
        self.url = f"file://{self.base_dir}"
        self._root = Path(os.path.realpath(self.base_dir))
        self._ready = False

    def list_damaged(self, agent_id: str) -> list[str]:
        """One line per committed entry of the agent that cannot be read (empty: none found)."""
        damaged: list[str] = []
        with self._locked(agent_id, exclusive=False) as agent_dir:
            self._lineages(agent_dir, damaged)
            for _ in self._rows(agent_dir, damaged):
                pass
        return damaged
    def close(self) -> None:
        return None

    # --- helpers for callers holding the agent's flock -------------------------------------
    def _lineages(self, agent_dir: Path, damaged: list[str] | None = None) -> dict[str, Doc]:
        """The agent's readable lineage documents by lineage id (damaged ones are reported and left out)."""
        try:
            names = [n for n in os.listdir(agent_dir / "lineages") if not n.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return {}
        docs: dict[str, Doc] = {}
        for name in names:
            try:
                doc = read_json(agent_dir / "lineages" / name)
                if doc is not None:
                    docs[str(doc["lineage_id"])] = doc
            except (StorageError, KeyError) as exc:
                self._damaged(agent_dir / "lineages" / name, str(exc), damaged)
        return docs

    def _committed_row(self, agent_dir: Path, order: int, lineages: dict[str, Doc | None]) -> CheckpointRow | None:
        """The checkpoint at ``order`` if committed, None if absent or uncommitted; ``StorageError`` if its
        document (or its lineage's) cannot be read. ``lineages`` caches the lineage docs read."""
        doc = read_json(agent_dir / "checkpoints" / f"{order:012d}.json")
        if doc is None:
            return None
        try:
            lineage_id = check_id(doc["lineage_id"], "lineage_id")
        except (KeyError, ValueError) as exc:
            raise StorageError(f"checkpoint document {order} names no valid lineage ({exc})") from None
        if lineage_id not in lineages:
            lineages[lineage_id] = read_json(self._file(agent_dir, "lineages", lineage_id))
        lineage = lineages[lineage_id]
        return row_from_doc(doc) if lineage is not None and order <= lineage["head_order"] else None

    def _row_at(self, agent_dir: Path, order: int, lineages: dict[str, Doc | None],
                damaged: list[str] | None = None) -> CheckpointRow | None:
        """``_committed_row``, with a damaged document reported and skipped (None)."""
        try:
            return self._committed_row(agent_dir, order, lineages)
        except StorageError as exc:
            committed = max((d["head_order"] for d in self._lineages(agent_dir).values()), default=0)
            if order <= committed:  # above every head it is a crashed save's leftover: never listed
                self._damaged(agent_dir / "checkpoints" / f"{order:012d}.json", str(exc), damaged)
            return None

    def _rows(self, agent_dir: Path, damaged: list[str] | None = None) -> Iterator[tuple[int, CheckpointRow]]:
        """The agent's committed, readable checkpoints with their orders, newest first by save order."""
        try:
            names = os.listdir(agent_dir / "checkpoints")
        except (FileNotFoundError, NotADirectoryError):
            return
        lineages: dict[str, Doc | None] = {}
        for order in sorted((int(n[:-5]) for n in names if n[:-5].isdigit()), reverse=True):
            if (row := self._row_at(agent_dir, order, lineages, damaged)) is not None:
                yield order, row

    def _find(self, checkpoint_id: str, agent_id: str | None = None) -> tuple[int, CheckpointRow] | None:
        where = self._index("c", checkpoint_id)
        if where is None or agent_id not in (None, where[0]):
            return None
        agent_dir = self._dir(where[0])
        if (row := self._row_at(agent_dir, where[1], {})) is not None and row.checkpoint_id == checkpoint_id:
            return where[1], row
        return next((found for found in self._rows(agent_dir) if found[1].checkpoint_id == checkpoint_id), None)

    def _lineage_taken(self, lineage_id: str, besides: str | None = None) -> bool:
        where = self._index("l", check_id(lineage_id, "lineage_id"))
        if where is None or where[0] == besides:
            return False
        return self._file(self._dir(where[0]), "lineages", lineage_id).exists()

    def _append(self, agent_dir: Path, doc: Doc, records: list[RecordRow]) -> Doc:
        """Append ``records`` at the committed length (cutting off leftovers); the lineage doc to commit."""
        if not records:
            return doc
        start = doc["length"]
        doc, data = pack_records(doc, records, self.compress)
        path = self._file(agent_dir, "records", doc["lineage_id"])
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, start)  # whatever a crashed save appended past the commit goes
            os.lseek(fd, start, os.SEEK_SET)
            write_synced(fd, data)
        finally:
            os.close(fd)
        if start == 0:
            fsync_dir(path.parent)
        return dict(doc, length=start + len(data))

    # --- writes ----------------------------------------------------------------------------
    def write(self, plan: SavePlan) -> None:
        row, new = plan.row, plan.new_lineage
        check_id(row.checkpoint_id, "checkpoint_id")
        check_id(row.lineage_id, "lineage_id")
        with self._locked(row.agent_id) as agent_dir:
            lineages = self._lineages(agent_dir)
            if new is not None:
                if not plan.is_fork and (latest := next(self._rows(agent_dir), None)) is not None:
                    raise CheckpointConflictError(row.agent_id, None, latest[1].checkpoint_id)
                if (new.lineage_id, new.agent_id) != (row.lineage_id, row.agent_id):
                    raise StorageError(f"checkpoint {row.checkpoint_id!r}: its new lineage is not its row's")
                if self._lineage_taken(new.lineage_id):
                    raise StorageError(f"lineage {new.lineage_id!r} already exists in the store")
                doc = new_lineage_doc(new, 1 + max((d["ordinal"] for d in lineages.values()), default=0), 0)
            else:
                current = lineages.get(row.lineage_id)
                head = current["head_checkpoint_id"] if current else None
                if current is None or head != plan.expected_head:
                    raise CheckpointConflictError(row.agent_id, plan.expected_head, head)
                doc = dict(current, head_checkpoint_id=row.checkpoint_id)
            if self._find(row.checkpoint_id) is not None:
                raise StorageError(f"checkpoint {row.checkpoint_id!r} already exists in the store")
            order = 1 + max((d["head_order"] for d in lineages.values()), default=0)
            self._makedirs(agent_dir)
            for name in os.listdir(agent_dir / "records"):  # of lineages that never committed
                if name.endswith(".rec") and name[:-4] not in lineages:
                    (agent_dir / "records" / name).unlink()
            write_file(self._p("_index", "c", row.checkpoint_id), f"{row.agent_id} {order}".encode())
            if new is not None:
                write_file(self._p("_index", "l", new.lineage_id), row.agent_id.encode())
            doc = self._append(agent_dir, doc, plan.records)
            write_file(agent_dir / "checkpoints" / f"{order:012d}.json", encode_doc(row_doc(row, order), self.compress))
            write_file(self._file(agent_dir, "lineages", row.lineage_id),
                        encode_doc(dict(doc, head_order=order), self.compress))

    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        """Atomic per agent (see the module docstring); rows keep their list order as save order. Like
        SQLite, ids must be new to the store; records may extend a lineage the store already has."""
        self._transfer(lineages, records, rows, replacing=None)

    def replace_agent(self, agent_id: str, lineages: list[LineageRow], records: list[RecordRow],
                      rows: list[CheckpointRow]) -> None:
        """Swap the agent's whole directory for one holding only these rows, atomically."""
        if ({lin.agent_id for lin in lineages} | {row.agent_id for row in rows}) - {agent_id}:
            raise StorageError(f"replace_agent({agent_id!r}) was given rows of another agent")
        self._transfer(lineages, records, rows, replacing=check_id(agent_id, "agent_id"))

    def _transfer(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow],
                  replacing: str | None) -> None:
        owners = {lineage.lineage_id: lineage.agent_id for lineage in lineages}
        if len(owners) != len(lineages) or len({row.checkpoint_id for row in rows}) != len(rows):
            raise StorageError("the rows list a lineage or a checkpoint twice")
        for lineage_id in {r.lineage_id for r in records} - set(owners):  # an existing lineage
            where = None if replacing else self._index("l", lineage_id)
            if where is None:
                raise StorageError(f"records refer to lineage {lineage_id!r}, which is neither given nor stored")
            owners[lineage_id] = where[0]
        with ExitStack() as stack:
            agents = sorted(set(owners.values()) | {row.agent_id for row in rows} | ({replacing} if replacing else set()))
            dirs = {agent: stack.enter_context(self._locked(agent)) for agent in agents}
            taken = [f"lineage {lin.lineage_id!r}" for lin in lineages
                     if self._lineage_taken(lin.lineage_id, replacing)]
            taken += [f"checkpoint {row.checkpoint_id!r}" for row in rows
                      if (found := self._find(check_id(row.checkpoint_id, "checkpoint_id")))
                      and found[1].agent_id != replacing]
            if taken:
                raise StorageError(f"{taken[0]} already exists in {self.url}")
            for agent, agent_dir in dirs.items():
                self._install(agent, agent_dir, [lin for lin in lineages if lin.agent_id == agent],
                              [r for r in records if owners[r.lineage_id] == agent],
                              [row for row in rows if row.agent_id == agent], keep=agent != replacing)

    def _install(self, agent_id: str, agent_dir: Path, lineages: list[LineageRow], records: list[RecordRow],
                 rows: list[CheckpointRow], keep: bool) -> None:
        """Build the agent's next directory aside, hard-linking what it keeps, and swap it in."""
        tmp = self._root / f".import-{secrets.token_hex(6)}"  # a crash leaves it: remove by hand
        dropped = [] if keep else [("c", row.checkpoint_id) for _, row in self._rows(agent_dir)] + [
            ("l", lineage_id) for lineage_id in self._lineages(agent_dir)]
        try:
            self._makedirs(tmp)
            docs = self._lineages(agent_dir) if keep else {}
            for order, _ in self._rows(agent_dir) if keep else ():
                os.link(agent_dir / "checkpoints" / f"{order:012d}.json", tmp / "checkpoints" / f"{order:012d}.json")
            for lineage_id in docs:
                if (path := self._file(agent_dir, "records", lineage_id)).exists():
                    os.link(path, self._file(tmp, "records", lineage_id))
            top = max((doc["head_order"] for doc in docs.values()), default=0)
            for ordinal, lineage in enumerate(lineages, 1 + max((d["ordinal"] for d in docs.values()), default=0)):
                docs[lineage.lineage_id] = new_lineage_doc(lineage, ordinal, 0)
                write_file(self._p("_index", "l", lineage.lineage_id), agent_id.encode())
            for lineage_id, doc in docs.items():
                own = sorted((r for r in records if r.lineage_id == lineage_id), key=lambda r: (r.stream, r.seq))
                doc = self._append(tmp, doc, own)  # on a kept lineage: past its committed length
                doc = dict(doc, head_order=top + len(rows))  # every kept checkpoint is at most top
                write_file(self._file(tmp, "lineages", lineage_id), encode_doc(doc, self.compress))
            for order, row in enumerate(rows, top + 1):
                write_file(self._p("_index", "c", row.checkpoint_id), f"{agent_id} {order}".encode())
                write_file(tmp / "checkpoints" / f"{order:012d}.json", encode_doc(row_doc(row, order), self.compress))
            for sub in ("checkpoints", "records"):
                fsync_dir(tmp / sub)
            old = self._root / f".replaced-{agent_id}"
            if agent_dir.exists():
                os.rename(agent_dir, old)
            os.rename(tmp, agent_dir)  # the commit point
            fsync_dir(self._root)
            if old.exists():
                self._discard(old)
            kept = {("c", row.checkpoint_id) for row in rows} | {("l", lin.lineage_id) for lin in lineages}
            self._drop_index([entry for entry in dropped if entry not in kept], agent_id)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _drop_index(self, entries: list[tuple[str, str]], agent_id: str) -> None:
        for kind, id_ in entries:
            if (self._index(kind, id_) or ("",))[0] == agent_id:
                self._p("_index", kind, id_).unlink(missing_ok=True)

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        """Each deletion is atomic (not the batch: a crash midway leaves the earlier ones done)."""
        deleted = 0
        with self._locked(agent_id) as agent_dir:
            for checkpoint_id in checkpoint_ids:
                if (found := self._find(checkpoint_id, agent_id)) is not None:
                    (agent_dir / "checkpoints" / f"{found[0]:012d}.json").unlink()
                    self._p("_index", "c", checkpoint_id).unlink(missing_ok=True)
                    deleted += 1
            if deleted:
                fsync_dir(agent_dir / "checkpoints")
        return deleted

    def delete_agent(self, agent_id: str) -> int:
        with self._locked(agent_id) as agent_dir:
            if not agent_dir.is_dir():
                return 0
            rows, lineages = [row for _, row in self._rows(agent_dir)], self._lineages(agent_dir)
            self._discard(agent_dir)
            self._drop_index([("c", row.checkpoint_id) for row in rows] + [("l", lin) for lin in lineages], agent_id)
            return len(rows)

    def acquire_lease(self, agent_id: str, worker_id: str, ttl: float) -> LeaseRow:
        with self._locked(agent_id):
            path, now = self._p("_leases", f"{agent_id}.json", agent_id=agent_id), time.time()
            held = read_json(path)
            check_lease_free(agent_id, None if held is None else LeaseRow(agent_id, held["worker_id"],
                                                                          held["expires_at"]), worker_id, now)
            write_file(path, orjson.dumps({"agent_id": agent_id, "worker_id": worker_id, "expires_at": now + ttl}))
            return LeaseRow(agent_id, worker_id, now + ttl)

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        with self._locked(agent_id):
            path = self._p("_leases", f"{agent_id}.json", agent_id=agent_id)
            if (read_json(path) or {}).get("worker_id") != worker_id:
                return False
            path.unlink()
            fsync_dir(path.parent)
            return True

    # --- reads -----------------------------------------------------------------------------
    def read_checkpoint(self, checkpoint_id: str) -> CheckpointRow:
        if (where := self._index("c", checkpoint_id)) is not None:
            with self._locked(where[0], exclusive=False) as agent_dir:
                try:
                    row = self._committed_row(agent_dir, where[1], {})
                except StorageError as exc:  # the index says it is here: damaged, not missing
                    raise CheckpointCorruptError(checkpoint_id, f"its document cannot be read: {exc}") from None
                if row is not None and row.checkpoint_id == checkpoint_id:
                    return row
                if (found := self._find(checkpoint_id, where[0])) is not None:
                    return found[1]
        raise checkpoint_not_found(checkpoint_id, self.url)

    def read_lineage(self, lineage_id: str) -> LineageRow:
        if (where := self._index("l", lineage_id)) is not None:
            with self._locked(where[0], exclusive=False) as agent_dir:
                if (doc := read_json(self._file(agent_dir, "lineages", lineage_id))) is not None:
                    return lineage_row(doc)
        raise lineage_not_found(lineage_id, self.url)

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        """Reads only the bytes between the [seq, offset] marks around ``[start, stop)`` (one mark per
        ``INDEX_EVERY`` records of the stream), never past the committed length."""
        stream_number(stream)  # an unknown stream is refused even when nothing would be read
        where = self._index("l", lineage_id)
        if where is None or start >= stop:
            return []
        with self._locked(where[0], exclusive=False) as agent_dir:
            doc = read_json(self._file(agent_dir, "lineages", lineage_id))
            if doc is None or not (marks := doc["marks"].get(stream)):
                return []
            seqs = [mark[0] for mark in marks]
            begin = marks[max(bisect.bisect_right(seqs, start) - 1, 0)][1]
            after = bisect.bisect_left(seqs, stop)
            end = marks[after][1] if after < len(marks) else doc["length"]
            with open(self._file(agent_dir, "records", lineage_id), "rb") as file:
                file.seek(begin)
                chunk = file.read(end - begin)
        return unpack_records(chunk, lineage_id, stream, start, stop)

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        with self._locked(agent_id, exclusive=False) as agent_dir:
            return next((row for _, row in self._rows(agent_dir)), None)

    def list_rows(self, agent_id: str, limit: int | None = None, before: str | None = None) -> list[CheckpointRow]:
        found: list[CheckpointRow] = []
        with self._locked(agent_id, exclusive=False) as agent_dir:
            for _, row in self._rows(agent_dir):
                if limit is not None and len(found) >= limit:
                    break
                if before is None or row.timestamp < before:
                    found.append(row)
        return found

    def list_lineages(self, agent_id: str) -> list[LineageRow]:
        with self._locked(agent_id, exclusive=False) as agent_dir:
            return [lineage_row(d) for d in sorted(self._lineages(agent_dir).values(), key=lambda d: d["ordinal"])]

    def list_agents(self) -> list[str]:
        if not self._ready:
            self.setup()
        agents = []
        for name in sorted({name.removeprefix(".replaced-") for name in os.listdir(self._root)}):
            try:
                check_id(name, "agent_id")
            except InvalidStateValueError:  # _locks, _index, _format.json, .trash-*
                continue
            if self.latest_checkpoint(name) is not None:
                agents.append(name)
        return agents

