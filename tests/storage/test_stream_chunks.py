"""Reading a stream in pieces (``base.stream_chunks``), as a load reads a long history: every store,
ours or a plug-in without ``read_stream_chunks``, gives exactly what one ``read_stream`` gives."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.storage import open_store
from kaizen.core.autonomy.state.storage.base import stream_chunks
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

ENTRIES = 40


def saved_lineage(store) -> str:
    """An agent with ENTRIES approval records saved in one checkpoint; its lineage id."""
    records = [make_approval_record("Bash", n % 3 == 0, "once", {"command": f"ls {n}, {{}}]"}, summary_limit=64) for n in range(ENTRIES)]
    SyncStateManager(store).save_checkpoint(AgentState(agent_id="chunks", approval_history=records))
    return store.latest_checkpoint("chunks").lineage_id


class PlugInStore:
    """A user's store offering only the protocol's ``read_stream`` (delegating to one of ours)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def read_stream(self, lineage_id: str, stream: str, start: int, stop: int) -> tuple[int, bytes]:
        return self.inner.read_stream(lineage_id, stream, start, stop)


@pytest.mark.parametrize("plug_in", [False, True], ids=["own", "plug-in"])
def test_pieces_are_the_stream_in_order(store, plug_in):
    lineage_id = saved_lineage(store)
    reader = PlugInStore(store) if plug_in else store
    whole = store.read_stream(lineage_id, "approval_history", 0, ENTRIES)
    assert whole[0] == ENTRIES

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(start=st.integers(0, ENTRIES), length=st.integers(0, ENTRIES), chunk=st.integers(1, ENTRIES + 3))
    def check(start: int, length: int, chunk: int) -> None:
        stop = min(start + length, ENTRIES)
        pieces = list(stream_chunks(reader, lineage_id, "approval_history", start, stop, chunk))
        assert all(0 < count <= chunk for count, _ in pieces)
        assert sum(count for count, _ in pieces) == stop - start
        assert b",".join(joined for _, joined in pieces) == store.read_stream(lineage_id, "approval_history",
                                                                               start, stop)[1]

    check()


def _cache_size(store) -> int:
    """The page cache of the connection this thread's reads use (a per-connection setting)."""
    return int(store._connect().execute("PRAGMA cache_size").fetchone()[0])


def test_sqlite_restores_its_page_cache_after_a_long_read_finished_or_abandoned(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        store.setup()
        lineage_id = saved_lineage(store)
        before = _cache_size(store)
        assert len(list(store.read_stream_chunks(lineage_id, "approval_history", 0, ENTRIES, 4))) == 10
        assert _cache_size(store) == before
        pieces = store.read_stream_chunks(lineage_id, "approval_history", 0, ENTRIES, 4)
        next(pieces)
        assert _cache_size(store) != before  # streaming: a few pages only
        pieces.close()
        assert _cache_size(store) == before
    finally:
        store.close()
