"""Entries a ``SyncStateManager`` has already read and verified, so loading again is O(new entries).

Stored history entries never change: the first ``n`` entries of a lineage's stream
are the same for every checkpoint of that lineage that covers at least ``n``. A
reader that loads an agent again (a worker resuming, a dashboard polling) fetches
only the entries past what it has, checks them against the checkpoint's running
CRC-32 continued from the known prefix, and parses only them. Cached entries are
immutable (``FrozenDict``), so handing them to several states is safe.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .frozen import FrozenDict, freeze


@dataclass(frozen=True)
class KnownEntries:
    count: int
    crc: int
    entries: list[Any]


def frozen_entries(stream: str, parsed: list[Any]) -> list[Any]:
    """Approval records are flat (checked on the way in), so one dict copy freezes them."""
    if stream == "approval_history":
        return list(map(FrozenDict, parsed))
    return [freeze(entry) for entry in parsed]


class HistoryCache:
    """A small LRU of (lineage, stream) -> the verified prefix a reader already holds."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._known: OrderedDict[tuple[str, str], KnownEntries] = OrderedDict()

    def get(self, lineage_id: str, stream: str) -> KnownEntries | None:
        known = self._known.get((lineage_id, stream))
        if known is not None:
            self._known.move_to_end((lineage_id, stream))
        return known

    def put(self, lineage_id: str, stream: str, known: KnownEntries) -> None:
        current = self._known.get((lineage_id, stream))
        if current is not None and current.count > known.count:
            return  # an older checkpoint was loaded: keep the longer prefix
        self._known[(lineage_id, stream)] = known
        self._known.move_to_end((lineage_id, stream))
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    def forget(self, lineage_ids: set[str]) -> None:
        for key in [k for k in self._known if k[0] in lineage_ids]:
            del self._known[key]
