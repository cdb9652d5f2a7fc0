"""Reading a checkpoint's append-only histories from a store, verified, with the verified prefix kept.

Stored history entries never change: the first ``n`` entries of a lineage's stream
are the same for every checkpoint of that lineage that covers at least ``n``. A
reader that loads an agent again (a worker resuming, a dashboard polling) fetches
only the entries past what it has, checks them against the checkpoint's running
CRC-32 continued from the known prefix, and parses only them. Cached entries are
immutable (``FrozenDict``), so handing them to several states is safe.

A checkpoint's stream is gathered along its lineage's forks: a fork's lineage holds
only its own entries and shares those below its ``base_counts`` with its base.
``SyncStateManager`` composes one ``HistoryReader`` and keeps the policy itself.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import CheckpointCorruptError
from .frozen import AppendOnlyView, FrozenDict, freeze
from .storage.base import (
    STREAMS, CheckpointRow, CheckpointStore, LineageRow, RecordRow, StreamHead, stream_chunks,
)
from .storage.rows import canonical, check_stream, state_from_parts, verify_chain, verify_row
from .types import AgentState, CapturedState

Segment = tuple[str, int, int]  # (lineage id, first seq, stop seq)
log = logging.getLogger("kaizen.state")


@dataclass(frozen=True, init=False)
class KnownEntries:
    """The verified first ``count`` entries of a lineage's stream and their running CRC-32."""

    count: int
    crc: int
    entries: list[Any]

    def __init__(self, count: int, crc: int, entries: list[Any]) -> None:  # one per save: see StreamHead
        self.__dict__.update(count=count, crc=crc, entries=entries)


def freezer_of(stream: str) -> Callable[[Any], Any]:
    """How ``stream``'s parsed entries are made immutable: approval records are flat (checked on
    the way in), so one dict copy freezes them; other entries are frozen all the way down."""
    return FrozenDict if stream == "approval_history" else freeze


# Entries read and parsed at a time on a load (a few tens of KB): each piece's buffers (the joined
# bytes, orjson's working memory of about ten times its input) are reused by the next one instead
# of taking fresh pages; from 128 to 512 a cold load of 5,000 records measured the same, 1,024 slower.
CHUNK = 256
_BULK = 2_000  # entries from which a load pauses the cyclic garbage collector


def parse_entries(stream: str, joined: bytes) -> list[Any]:
    """Frozen entries from their stored data joined by commas: one parse, then one C-level pass
    (``map``) makes the frozen copies, each parsed dict freed as soon as the list is."""
    return list(map(freezer_of(stream), orjson.loads(b"".join((b"[", joined, b"]")))))


def _written_entries(stream: str, data: list[bytes] | None, state: AgentState | None, start: int,
                     stop: int) -> list[Any]:
    """The entries ``start:stop`` of ``stream`` just saved: a captured state's own when every one
    is frozen (immutable, validated when frozen), else parsed from the bytes written."""
    if not data:
        return []
    if type(state) is CapturedState:
        entries = getattr(state, stream)
        if type(entries) is AppendOnlyView and stop == len(entries):
            taken = entries.since(start)  # what an agent's capture holds: the slice, without the view's indexing
        else:
            taken = list(entries[start:stop])
        if len(taken) == len(data):
            for entry in taken:
                if type(entry) is not FrozenDict:
                    break
            else:
                return taken
    return parse_entries(stream, b",".join(data))


@contextmanager
def collector_paused(pause: bool) -> Iterator[None]:
    """A long history makes thousands of containers at once; each few hundred would start a
    garbage collection that finds nothing (they are all reachable), so the collector waits.

    They are also long-lived (the reader keeps them), so on the way out they go straight to the
    oldest generation (``gc.freeze`` then ``gc.unfreeze``: two list splices, and the counts start
    over) instead of being walked by a young collection as soon as the collector is back (about
    8% of a cold load of 5,000 records) and by a middle one later. Whatever else was young moves
    up with them: still collected, by the next full collection. Not done when the program keeps
    objects frozen itself (``gc.get_freeze_count()``): ``unfreeze`` would release those too."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        gc.enable()


class HistoryCache:
    """A small LRU of (lineage, stream) -> the verified prefix a reader already holds."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._known: OrderedDict[tuple[str, str], KnownEntries] = OrderedDict()

    def get(self, lineage_id: str, stream: str) -> KnownEntries | None:
        key = (lineage_id, stream)
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
        return known

    def put(self, lineage_id: str, stream: str, known: KnownEntries) -> None:
        key = (lineage_id, stream)
        held = self._known
        current = held.get(key)
        if current is not None and current.count > known.count:
            return  # an older checkpoint was loaded: keep the longer prefix
        held[key] = known
        if current is not None:
            held.move_to_end(key)  # (a new key is already the newest)
        while len(held) > self.size:
            held.popitem(last=False)

    def forget(self, lineage_ids: set[str]) -> None:
        for key in [k for k in self._known if k[0] in lineage_ids]:
            del self._known[key]


class HistoryReader:
    """Loads verified states from ``store`` and remembers the verified history prefixes.

    ``verify="chain"`` recomputes every entry's SHA-256 chain on each load (and so
    never reuses a cached prefix); ``"crc"`` checks counts and the running CRC-32.
    """

    def __init__(self, store: CheckpointStore, verify: str = "crc", cache_size: int = 64) -> None:
        self.store = store
        self.verify = verify
        self._cache = HistoryCache(cache_size)
        self._lineages: dict[str, LineageRow] = {}

    def read_state(self, row: CheckpointRow) -> AgentState:
        """The ``AgentState`` of ``row``, after checking its checksum and every stream."""
        verify_row(row)
        if self.verify == "chain":
            for stream in STREAMS:
                verify_chain(row, stream, self.segment_records(row, stream))
        return state_from_parts(row, {stream: self.entries(row, stream) for stream in STREAMS})

    def entries(self, row: CheckpointRow, stream: str) -> list[Any]:
        """A stream's entries for ``row``: the prefix already verified, plus the rest."""
        head = row.heads[stream]
        known = self._cache.get(row.lineage_id, stream)
        if known is None or known.count > head.count or self.verify == "chain":
            known = KnownEntries(0, 0, [])
        if known.count == head.count:
            check_stream(row, stream, known.count, known.crc)
            return list(known.entries)
        added = self.read_new(row, stream, known)
        entries = known.entries + added if known.entries else added
        self._cache.put(row.lineage_id, stream, KnownEntries(head.count, head.crc, entries))
        return list(entries)

    def read_new(self, row: CheckpointRow, stream: str, known: KnownEntries) -> list[Any]:
        """The entries of ``stream`` past ``known``, frozen, after checking that all of them together
        are exactly what ``row`` covers (count and running CRC-32): a damaged stream raises and
        nothing of it is returned or kept.

        They are read (``stream_chunks``) and parsed ``CHUNK`` at a time: the buffers of one chunk
        are freed before the next is read, so a long history is not copied whole three times over,
        and each chunk is frozen in one C-level pass. A store that keeps record packs (SQLite) is
        read again from its rows alone when what it gave does not match: a pack is only a copy."""
        try:
            return self._read_new(row, stream, known, packed=True)
        except CheckpointCorruptError:
            if not hasattr(self.store, "read_stream_chunks"):
                raise
        entries = self._read_new(row, stream, known, packed=False)
        log.warning("checkpoint %s: a record pack of %s does not match its rows; read from the rows "
                    "(`kaizen vacuum` rewrites the packs)", row.checkpoint_id, stream)
        return entries

    def _read_new(self, row: CheckpointRow, stream: str, known: KnownEntries, packed: bool) -> list[Any]:
        count, crc = known.count, known.crc
        parsed: list[Any] = []
        freezer = freezer_of(stream)
        unreadable: orjson.JSONDecodeError | None = None
        with collector_paused(row.heads[stream].count - known.count >= _BULK):
            for lineage_id, start, stop in self.segments(row, stream):
                pieces = stream_chunks(self.store, lineage_id, stream, max(start, known.count), stop, CHUNK,
                                       packed)
                with closing(pieces):
                    for n, joined in pieces:
                        if not n:
                            continue
                        crc = zlib.crc32(joined, zlib.crc32(b",", crc) if count else crc)
                        count += n
                        if unreadable is None:
                            try:
                                parsed += map(freezer, orjson.loads(b"".join((b"[", joined, b"]"))))
                            except orjson.JSONDecodeError as exc:
                                unreadable = exc  # the check below says whether the data was damaged
        check_stream(row, stream, count, crc)
        if unreadable is not None:
            raise CheckpointCorruptError(row.checkpoint_id, f"unreadable {stream} ({unreadable})")
        return parsed

    def remember_saved(self, parent: CheckpointRow | None, row: CheckpointRow, records: Sequence[RecordRow],
                       state: AgentState | None = None) -> None:
        """After a save: the new row's verified prefix is the parent's (when known) plus the
        entries just written. Entries of ``state`` (the state saved) that an agent captured frozen
        are kept as they are: they are the very objects whose bytes were written, so the live agent
        and this reader share one copy (and ``extends`` compares them by identity); any other
        entry is read back from its stored bytes, frozen as on a load."""
        written: dict[str, list[bytes]] = {}
        for record in records:
            written.setdefault(record.stream, []).append(record.data)
        for stream in STREAMS:
            data = written.get(stream)
            base = parent.heads[stream].count if parent is not None else 0
            known = None
            if parent is not None:
                known = self._cache.get(parent.lineage_id, stream)
                if parent.lineage_id != row.lineage_id or known is None or known.count < base:
                    continue
                if not data and known.count == base:
                    continue  # nothing new in this stream: what is held already covers the new row
            head = row.heads[stream]
            added = _written_entries(stream, data, state, base, head.count)
            if known is None:  # the agent's first save
                entries: list[Any] = added
            elif len(known.entries) == base:
                # The usual case, saving on the newest checkpoint: grow the cached list in place
                # (it is never handed out, reads get copies), so a save stays O(what it wrote).
                entries = known.entries
                entries.extend(added)
            else:
                entries = known.entries[:base] + added
            self._cache.put(row.lineage_id, stream, KnownEntries(head.count, head.crc, entries))

    def extends(self, entries: Sequence[Any], row: CheckpointRow, stream: str,
                anchor: CheckpointRow | None = None) -> bool:
        """Whether ``entries`` begin with exactly the ``stream`` entries ``row`` covers.

        Cost is what lies past a trusted prefix: the verified prefix this reader holds
        (compared by identity first), else ``anchor`` (a checkpoint of the same lineage the
        entries were taken from, trusted as their save would trust it), else the whole prefix
        hashed against the row's chain head. Nothing is read from the store.
        """
        head = row.heads[stream]
        if len(entries) < head.count:
            return False
        known = self._cache.get(row.lineage_id, stream)
        if known is not None and known.count >= head.count:
            return bool(entries[: head.count] == known.entries[: head.count])
        start = StreamHead(0)
        if anchor is not None and anchor.lineage_id == row.lineage_id and anchor.heads[stream].count <= head.count:
            start = anchor.heads[stream]
        digest = bytes.fromhex(start.head_hash)
        try:
            for seq in range(start.count, head.count):
                digest = hashlib.sha256(digest + canonical(entries[seq])).digest()
        except TypeError:  # not JSON: it cannot match anything stored (the save says why)
            return False
        return digest.hex() == head.head_hash

    def forget_agent(self, agent_id: str, lineage_ids: set[str]) -> None:
        """Drop what is held of ``agent_id``'s lineages (and of ``lineage_ids``): it was deleted."""
        gone = lineage_ids | {lid for lid, lineage in self._lineages.items() if lineage.agent_id == agent_id}
        for lineage_id in gone & set(self._lineages):
            del self._lineages[lineage_id]
        self._cache.forget(gone)

    def lineage(self, lineage_id: str) -> LineageRow:
        # Only the base fields are used here, and those never change: caching is safe.
        lineage = self._lineages.get(lineage_id)
        if lineage is None:
            lineage = self._lineages[lineage_id] = self.store.read_lineage(lineage_id)
        return lineage

    def segment_records(self, row: CheckpointRow, stream: str) -> list[RecordRow]:
        return [record for lineage_id, start, end in self.segments(row, stream)
                for record in self.store.read_records(lineage_id, stream, start, end)]

    def segments(self, row: CheckpointRow, stream: str) -> list[Segment]:
        """(lineage, start, stop) pieces of a stream's first ``count`` entries, oldest first."""
        stop = row.heads[stream].count if stream in row.heads else 0
        segments: list[Segment] = []
        lineage = self.lineage(row.lineage_id)
        while True:
            start = lineage.base_counts.get(stream, 0)
            if stop > start:
                segments.append((lineage.lineage_id, start, stop))
            if lineage.base_lineage_id is None:
                break
            stop = min(stop, start)
            lineage = self.lineage(lineage.base_lineage_id)
        return segments[::-1]
