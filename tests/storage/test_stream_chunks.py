"""Reading a stream in pieces (``base.stream_chunks``), as a load reads a long history: every store,
ours or a plug-in without ``read_stream_chunks``, gives exactly what one ``read_stream`` gives."""

from __future__ import annotations

import sqlite3

import orjson
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


def test_sqlite_reads_a_stream_in_primary_key_order(tmp_path):
    """``SELECT_STREAM`` joins records without ORDER BY: it relies on every plan walking the records'
    primary key (lid, stream, seq). Adding an index on records, or a plan that sorts, breaks that."""
    from kaizen.core.autonomy.state.storage.sqlite import SELECT_STREAM

    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        store.setup()
        lineage_id = saved_lineage(store)
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'").fetchall()
        plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + SELECT_STREAM, (lineage_id, 0, 0, 9)))
        # records 2 and 5 swap places: the answer follows seq, not where a row was written
        conn.execute("UPDATE records SET seq = -seq - 1 WHERE seq IN (2, 5)")
        conn.execute("UPDATE records SET seq = CASE seq WHEN -3 THEN 5 ELSE 2 END WHERE seq < 0")
        swapped = conn.execute(SELECT_STREAM, (lineage_id, 0, 0, ENTRIES)).fetchone()
    assert [name for (name,) in indexes if not name.startswith("sqlite_autoindex_records")] == []
    assert "SEARCH r USING PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan
    assert swapped[0] == ENTRIES
    reopened = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        pieces = b",".join(j for _, j in stream_chunks(reopened, lineage_id, "approval_history", 0, ENTRIES, 7))
        assert pieces == swapped[1]
        summaries = [entry["input_summary"] for entry in orjson.loads(b"[" + pieces + b"]")]
        assert summaries[2] == str({"command": "ls 5, {}]"}) and summaries[5] == str({"command": "ls 2, {}]"})
    finally:
        reopened.close()
