"""Record packs (SQLite): every complete block of a history is also kept as one row, byte for byte
the block's entries joined by commas, and a load reads it instead of the block's rows. A load must
give exactly what the rows give, whatever packs exist, are missing or are damaged."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.storage import open_store
from kaizen.core.autonomy.state.storage.sqlite_packs import PACK, SELECT_FULL_BLOCKS, _BLOCK
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

STREAMS = {0: "approval_history", 1: "conversation_history"}


def url_of(path: Path) -> str:
    return f"sqlite:///{path}?synchronous=OFF"


def run_steps(agent: BaseAutonomousAgent, first: int, count: int, text: str = "") -> list[str]:
    """``count`` agent steps, each adding an approval record and a message, then a save."""
    ids = []
    for n in range(first, first + count):
        agent.record_approval("Bash", n % 3 != 0, "once", {"command": f"ls {n} {text}"})
        agent._append_conversation({"role": "user", "content": f"{text},]{n}"})
        agent.step_number += 1
        ids.append(agent.save_checkpoint())
    return ids


def packs_of(path: Path) -> dict[tuple[int, int, int], bytes]:
    with sqlite3.connect(path) as conn:
        return {(lid, stream, first): data for lid, stream, first, data in
                conn.execute("SELECT lid, stream, first, data FROM record_packs")}


def rows_joined(path: Path, lid: int, stream: int, first: int, stop: int) -> tuple[int, bytes]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT data FROM records WHERE lid = ? AND stream = ? AND seq >= ? AND seq < ? "
                            "ORDER BY seq", (lid, stream, first, stop)).fetchall()
    return len(rows), b",".join(bytes(data) for (data,) in rows)


def complete_blocks(path: Path) -> set[tuple[int, int, int]]:
    """Every block all of whose entries are rows of one lineage."""
    with sqlite3.connect(path) as conn:
        lids = [lid for (lid,) in conn.execute("SELECT lid FROM lineages")]
        if not lids:
            return set()
        candidates = conn.execute(SELECT_FULL_BLOCKS.format(lids=",".join("?" * len(lids))), lids).fetchall()
    return {block for block in candidates if rows_joined(path, *block, block[2] + PACK)[0] == PACK}


def histories(agent: BaseAutonomousAgent) -> tuple[list, list]:
    state = agent._capture_state()
    return list(state.approval_history), list(state.conversation_history)


def loaded(path: Path, checkpoint_id: str) -> tuple[list, list]:
    """The histories of a checkpoint loaded by a new manager (a cold load)."""
    manager = SyncStateManager(url_of(path))
    try:
        state = manager.load_checkpoint(checkpoint_id)
        return list(state.approval_history), list(state.conversation_history)
    finally:
        manager.close()


def assert_packs_are_their_rows(path: Path) -> None:
    packs = packs_of(path)
    for (lid, stream, first), data in packs.items():
        assert first % PACK == 0
        assert rows_joined(path, lid, stream, first, first + PACK) == (PACK, data)
    assert set(packs) == complete_blocks(path)


def test_a_save_that_completes_a_block_packs_it(tmp_path):
    path = tmp_path / "state.db"
    manager = SyncStateManager(url_of(path))
    agent = BaseAutonomousAgent(agent_id="a", state_manager=manager)
    run_steps(agent, 0, PACK - 1)
    assert packs_of(path) == {}
    run_steps(agent, PACK - 1, 1)
    assert {(stream, first) for _, stream, first in packs_of(path)} == {(0, 0), (1, 0)}
    run_steps(agent, PACK, PACK + 10)
    assert {(stream, first) for _, stream, first in packs_of(path)} == {(0, 0), (1, 0), (0, PACK), (1, PACK)}
    assert_packs_are_their_rows(path)
    manager.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.integers(0, 3 * PACK), fork_at=st.integers(0, 3 * PACK), fork_steps=st.integers(0, 2 * PACK),
       text=st.text(max_size=12))
def test_a_load_gives_what_the_rows_give_with_or_without_packs(tmp_path_factory, steps, fork_at, fork_steps, text):
    path = tmp_path_factory.mktemp("packs") / "state.db"
    manager = SyncStateManager(url_of(path))
    agent = BaseAutonomousAgent(agent_id="a", state_manager=manager)
    ids = run_steps(agent, 0, steps + 1, text)
    branch = BaseAutonomousAgent(agent_id="a", state_manager=manager)
    branch._restore_state(manager.fork(ids[min(fork_at, steps)]))
    fork_ids = run_steps(branch, 10_000, fork_steps, text)
    heads = {ids[-1]: histories(agent)}
    if fork_ids:
        heads[fork_ids[-1]] = histories(branch)
    manager.close()
    assert_packs_are_their_rows(path)
    for checkpoint_id, live in heads.items():
        assert loaded(path, checkpoint_id) == live
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM record_packs")
    for checkpoint_id, live in heads.items():
        assert loaded(path, checkpoint_id) == live


@pytest.fixture
def long_agent(tmp_path) -> tuple[Path, str]:
    """A store holding agent "a" with 2.5 blocks of history; its latest checkpoint."""
    path = tmp_path / "state.db"
    manager = SyncStateManager(url_of(path))
    ids = run_steps(BaseAutonomousAgent(agent_id="a", state_manager=manager), 0, 2 * PACK + PACK // 2)
    manager.close()
    return path, ids[-1]


def test_a_damaged_pack_is_read_from_its_rows_and_named(long_agent, caplog):
    path, latest = long_agent
    expected = loaded(path, latest)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE record_packs SET data = CAST(replace(CAST(data AS TEXT), 'ls 3', 'ls 9') AS BLOB) "
                     "WHERE stream = 0 AND first = 0")
    with caplog.at_level(logging.WARNING, logger="kaizen.state"):
        assert loaded(path, latest) == expected
    assert any("record pack of approval_history does not match" in r.getMessage() for r in caplog.records)
    manager = SyncStateManager(url_of(path))
    assert manager.verify_audit("a").ok  # the rows, the record of truth, are intact
    assert manager.storage.fill_packs() == 1  # what the warning says `kaizen vacuum` does
    assert manager.storage.fill_packs() == 0
    manager.close()
    assert_packs_are_their_rows(path)


def test_damaged_rows_under_an_intact_pack_load_as_saved_and_the_audit_names_them(long_agent):
    """The load checks what it read against the checkpoint (count and CRC): the pack's copy of the
    block is exactly what was saved, so the load is right; the audit reads the rows and reports them."""
    from kaizen.core.autonomy.state.errors import CheckpointCorruptError

    path, latest = long_agent
    expected = loaded(path, latest)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE records SET data = CAST(replace(CAST(data AS TEXT), 'ls 3', 'ls 9') AS BLOB) "
                     "WHERE stream = 0 AND seq = 3")
    assert loaded(path, latest) == expected
    manager = SyncStateManager(url_of(path))
    assert not manager.verify_audit("a").ok
    manager.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM record_packs")
    with pytest.raises(CheckpointCorruptError):
        loaded(path, latest)


def test_missing_packs_are_read_from_rows_and_refilled(long_agent):
    path, latest = long_agent
    expected = loaded(path, latest)
    before = packs_of(path)
    with sqlite3.connect(path) as conn:  # as if the process died between a save and its pack
        conn.execute("DELETE FROM record_packs WHERE first = ?", (PACK,))
    assert loaded(path, latest) == expected
    manager = SyncStateManager(url_of(path))
    assert manager.storage.fill_packs() == 2
    manager.close()
    assert packs_of(path) == before


def test_deleting_an_agent_deletes_its_packs(long_agent):
    path, _ = long_agent
    manager = SyncStateManager(url_of(path))
    run_steps(BaseAutonomousAgent(agent_id="b", state_manager=manager), 0, PACK)
    kept = {key for key in packs_of(path)}
    manager.delete("a")
    manager.close()
    assert packs_of(path) and set(packs_of(path)) < kept
    assert_packs_are_their_rows(path)


def test_an_imported_agent_gets_its_packs(long_agent, tmp_path):
    path, latest = long_agent
    source = SyncStateManager(url_of(path))
    document = source.export_agent("a")
    source.close()
    target_path = tmp_path / "imported.db"
    target = SyncStateManager(url_of(target_path))
    target.import_agent(document)
    target.close()
    assert len(packs_of(target_path)) == len(packs_of(path)) == 4
    assert_packs_are_their_rows(target_path)
    assert loaded(target_path, latest) == loaded(path, latest)


def test_a_store_written_before_packs_is_read_then_migrated_and_packed(long_agent):
    path, latest = long_agent
    expected = loaded(path, latest)
    with sqlite3.connect(path) as conn:  # schema 2: no record_packs table
        conn.execute("DROP TABLE record_packs")
        conn.execute("PRAGMA user_version = 2")
    reader = SyncStateManager(open_store(f"sqlite:///{path}", read_only=True))
    assert list(reader.load_checkpoint(latest).approval_history) == expected[0]
    reader.close()
    manager = SyncStateManager(url_of(path))
    assert list(manager.load_checkpoint(latest).approval_history) == expected[0]
    assert manager.storage.fill_packs() == 4
    manager.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert_packs_are_their_rows(path)
    assert loaded(path, latest) == expected


def test_a_pack_is_made_from_its_rows_in_primary_key_order(long_agent):
    """The block's aggregate has no ORDER BY: it relies on the plan walking ``records``' primary key."""
    path, _ = long_agent
    with sqlite3.connect(path) as conn:
        plan = " | ".join(row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN " + _BLOCK.format(lid="?1", stream="?2", first="?3"), (1, 0, 0)))
    assert "USING PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan


def test_saves_committed_together_pack_their_blocks(tmp_path):
    """Agents in threads share transactions (group commit): each block any of them completes is packed."""
    import threading

    path = tmp_path / "state.db"
    managers = [SyncStateManager(url_of(path)) for _ in range(4)]
    agents = [BaseAutonomousAgent(agent_id=f"agent-{n}", state_manager=m) for n, m in enumerate(managers)]
    threads = [threading.Thread(target=run_steps, args=(agent, 0, PACK + 3)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for manager in managers:
        manager.close()
    assert len(packs_of(path)) == 2 * len(agents)
    assert_packs_are_their_rows(path)
