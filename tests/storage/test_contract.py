"""The storage contract: every backend passes these unchanged (memory, SQLite, filesystem, PostgreSQL).

Grouped by capability: save, load, list, fork, retention, integrity, concurrency, transfer, read-only
opening, damaged entries, the original's async StorageBackend methods, compression.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import warnings

import pytest
from tamper import tamper_checkpoint, tamper_first_record

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import (
    CheckpointConflictError,
    CheckpointCorruptError,
    CheckpointNotFoundError,
    DamagedCheckpointError,
    DamagedEntryWarning,
    ReadOnlyStoreError,
    StateDivergedError,
    StorageError,
    StoreNotFoundError,
)
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.storage import FilesystemStorage, StorageBackend, open_store
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def make_agent(manager: SyncStateManager, agent_id: str = "agent-1") -> BaseAutonomousAgent:
    return BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)


def step(agent: BaseAutonomousAgent, n: int, approved: bool = True) -> str:
    """One agent step as the benchmark models it: a record, a count, a node, a save."""
    agent.record_approval("Bash", approved, "once", {"command": f"echo {n}"})
    agent.record_tool_usage("Bash")
    agent.update_workflow_state(current_node=f"node-{n}", node_results={f"node-{n}": {"ok": True}})
    agent._append_conversation({"role": "user", "content": f"message {n}"})
    agent.step_number += 1
    return agent.save_checkpoint()


# --- save -----------------------------------------------------------------------------------
class TestSave:
    def test_roundtrip_keeps_every_field(self, manager):
        agent = make_agent(manager)
        agent.record_approval("Write", False, "deny_all", {"path": "/etc/passwd"})
        agent.record_tool_usage("Read", increment=5)
        agent.update_workflow_state(run_id="run_1", status="running", node_results={"a": [1, 2.5, None]})
        agent.memory_contents = {"facts": ["x"]}
        agent.budget_spent_usd = 0.25
        agent.metadata = {"owner": "team-a"}
        agent._append_completed_action({"call_id": "c1", "tool": "Read", "result": "ok"})
        captured = agent._capture_state()
        manager.save_checkpoint(captured)
        loaded = manager.load_checkpoint(captured.checkpoint_id)
        assert loaded.to_dict() == captured.to_dict()

    def test_each_save_writes_only_what_changed(self, manager, store):
        agent = make_agent(manager)
        sizes = []
        for n in range(60):
            checkpoint_id = step(agent, n)
            sizes.append(manager.list_checkpoints(agent.agent_id, limit=1)[0].size_bytes)
        assert sizes[-1] <= sizes[1] + 64, "a save's size must not grow with the history"
        lineage = store.list_lineages(agent.agent_id)[0]
        assert len(store.read_records(lineage.lineage_id, "approval_history", 0, 10**9)) == 60
        assert len(manager.load_checkpoint(checkpoint_id).approval_history) == 60

    def test_second_writer_on_same_parent_conflicts(self, manager):
        writer = make_agent(manager)
        step(writer, 0)
        other = make_agent(SyncStateManager(manager.storage)).resume()
        first = step(writer, 1)
        with pytest.raises(CheckpointConflictError, match="agent-1"):
            step(other, 2)  # resumed from the same checkpoint, then diverged
        assert manager.load_latest("agent-1").checkpoint_id == first

    def test_fresh_agent_with_existing_history_conflicts(self, manager):
        step(make_agent(manager), 0)
        with pytest.raises(CheckpointConflictError):
            step(make_agent(manager), 0)

    def test_shrunk_history_is_refused(self, manager):
        agent = make_agent(manager)
        step(agent, 0)
        state = agent._capture_state()
        state.approval_history = []
        with pytest.raises(StateDivergedError):
            manager.save_checkpoint(state)

    def test_invalid_state_is_refused_and_nothing_written(self, manager):
        agent = make_agent(manager)
        first = step(agent, 0)
        state = agent._capture_state()
        state.tool_usage_counts = {"Bash": -1}
        with pytest.raises(ValueError, match="tool_usage_counts"):
            manager.save_checkpoint(state)
        assert [c.checkpoint_id for c in manager.list_checkpoints("agent-1")] == [first]

    def test_duplicate_checkpoint_id_is_refused(self, manager):
        agent = make_agent(manager)
        step(agent, 0)
        state = agent._capture_state()
        manager.save_checkpoint(state)
        clone = AgentState.from_dict({**state.to_dict(), "parent_checkpoint_id": state.checkpoint_id})
        with pytest.raises(StorageError):
            manager.save_checkpoint(clone)


# --- load -----------------------------------------------------------------------------------
class TestLoad:
    def test_time_travel_to_every_checkpoint(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(12)]
        for n, checkpoint_id in enumerate(ids):
            state = manager.load_checkpoint(checkpoint_id)
            assert len(state.approval_history) == n + 1
            assert state.workflow_state["current_node"] == f"node-{n}"
            assert state.tool_usage_counts == {"Bash": n + 1}

    def test_missing_checkpoint_names_it(self, manager):
        with pytest.raises(CheckpointNotFoundError, match="ckpt_000000000000"):
            manager.load_checkpoint("ckpt_000000000000")

    def test_latest_of_unknown_agent_is_none(self, manager):
        assert manager.load_latest("nobody") is None

    def test_resume_restores_the_agent(self, manager):
        agent = make_agent(manager)
        for n in range(3):
            step(agent, n)
        resumed = BaseAutonomousAgent.resume("agent-1", state_manager=manager)
        assert resumed._get_approval_history() == agent._get_approval_history()
        assert resumed._get_tool_usage_counts() == {"Bash": 3}
        step(resumed, 3)  # continues the same lineage without conflict
        assert len(manager.load_latest("agent-1").approval_history) == 4

    def test_path_like_ids_are_rejected(self, manager):
        for bad in ("../x", "a/b", "x\x00y", "/etc/passwd", "", "a" * 200):
            with pytest.raises(ValueError):
                manager.load_checkpoint(bad)


# --- list -----------------------------------------------------------------------------------
class TestList:
    def test_newest_first_with_limit_and_before(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(5)]
        listed = manager.list_checkpoints("agent-1")
        assert [m.checkpoint_id for m in listed] == ids[::-1]
        assert [m.step_number for m in listed] == [5, 4, 3, 2, 1]
        assert listed[0].parent_checkpoint_id == ids[-2]
        assert [m.checkpoint_id for m in manager.list_checkpoints("agent-1", limit=2)] == ids[:2:-1]
        before = listed[1].timestamp
        assert [m.checkpoint_id for m in manager.list_checkpoints("agent-1", before=before)] == ids[:3][::-1]

    def test_agents_are_separate(self, manager):
        step(make_agent(manager, "a"), 0)
        step(make_agent(manager, "b"), 0)
        assert manager.list_agents() == ["a", "b"]
        assert {m.agent_id for m in manager.list_checkpoints()} == {"a", "b"}
        assert len(manager.list_checkpoints("a")) == 1


# --- fork -----------------------------------------------------------------------------------
class TestFork:
    def test_fork_shares_history_and_diverges(self, manager, store):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(6)]
        forked = manager.fork(ids[2])
        assert forked.parent_checkpoint_id == ids[2]
        assert len(forked.approval_history) == 3
        branch = make_agent(manager)
        branch._restore_state(forked)
        step(branch, 100, approved=False)
        step(agent, 6)
        assert len(manager.load_latest("agent-1").approval_history) in (4, 7)
        assert len(manager.load_checkpoint(branch.last_checkpoint_id).approval_history) == 4
        assert len(manager.load_checkpoint(agent.last_checkpoint_id).approval_history) == 7
        assert manager.load_checkpoint(ids[5]).approval_history[-1]["approved"] is True
        fork_lineage = [l for l in store.list_lineages("agent-1") if l.base_lineage_id][0]
        assert len(store.read_records(fork_lineage.lineage_id, "approval_history", 0, 100)) == 1

    def test_resume_from_older_checkpoint_forks(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(4)]
        other = make_agent(manager)
        other.resume_from_checkpoint(ids[1])
        step(other, 50)
        assert len(manager.load_checkpoint(ids[3]).approval_history) == 4
        assert len(manager.load_checkpoint(other.last_checkpoint_id).approval_history) == 3

    def test_fork_into_new_agent_and_delete_protection(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(3)]
        forked = manager.fork(ids[1], new_agent_id="agent-2")
        assert forked.agent_id == "agent-2" and len(forked.approval_history) == 2
        with pytest.raises(StorageError, match="agent-2"):
            manager.delete("agent-1")
        assert manager.delete("agent-2") == 1
        assert manager.delete("agent-1") == 3
        assert manager.load_latest("agent-1") is None

    def test_checkpoint_tree(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(3)]
        forked = manager.fork(ids[0])
        tree = manager.get_checkpoint_tree("agent-1")
        assert tree[None] == [ids[0]]
        assert sorted(tree[ids[0]]) == sorted([ids[1], forked.checkpoint_id])


# --- retention ------------------------------------------------------------------------------
class TestRetention:
    def test_keep_last_never_deletes_heads_or_fork_points(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(10)]
        forked = manager.fork(ids[2])
        deleted = manager.apply_retention("agent-1", keep_last=3)
        remaining = {m.checkpoint_id for m in manager.list_checkpoints("agent-1")}
        assert ids[-1] in remaining and ids[2] in remaining and forked.checkpoint_id in remaining
        assert set(deleted) == set(ids) - remaining
        assert len(remaining) == 4  # 3 newest (fork, ids[9], ids[8]) + the fork point
        assert len(manager.load_checkpoint(ids[-1]).approval_history) == 10

    def test_max_age(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(4)]
        assert sorted(manager.apply_retention("agent-1", max_age=0)) == sorted(ids[:-1])
        assert manager.load_latest("agent-1").checkpoint_id == ids[-1]

    def test_delete_checkpoint_refuses_head(self, manager):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(2)]
        with pytest.raises(StorageError):
            manager.delete_checkpoint(ids[-1])
        manager.delete_checkpoint(ids[0])
        assert [m.checkpoint_id for m in manager.list_checkpoints("agent-1")] == [ids[1]]

    def test_automatic_retention_count(self, store):
        manager = SyncStateManager(store, retention_count=4)
        agent = make_agent(manager)
        for n in range(20):
            step(agent, n)
        assert len(manager.list_checkpoints("agent-1")) <= 5
        assert len(manager.load_latest("agent-1").approval_history) == 20


# --- integrity ------------------------------------------------------------------------------
class TestIntegrity:
    def test_damaged_checkpoint_is_named_and_latest_falls_back(self, manager, store):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(3)]
        tamper_checkpoint(store, ids[-1])
        fresh = SyncStateManager(store)
        with pytest.raises(CheckpointCorruptError, match=ids[-1]):
            fresh.load_checkpoint(ids[-1])
        with pytest.warns(RuntimeWarning, match=ids[-1]):
            state = fresh.load_latest("agent-1")
        assert state.checkpoint_id == ids[-2]
        with pytest.raises(DamagedCheckpointError, match=ids[-1]) as refused:  # continuing would repeat work
            fresh.resume_from_latest("agent-1")
        assert refused.value.intact_checkpoint_id == ids[-2]
        resumed = fresh.load_for_resume(ids[-2])  # continuing deliberately: a fork of the intact one
        assert len(resumed.approval_history) == 2

    @pytest.mark.parametrize("verify", ["crc", "chain"])
    def test_changed_record_breaks_the_chain(self, manager, store, verify):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(3)]
        assert SyncStateManager(store, verify=verify).load_checkpoint(ids[-1]).to_dict() == \
            manager.load_checkpoint(ids[-1]).to_dict()
        tamper_first_record(store, "agent-1")
        with pytest.raises(CheckpointCorruptError, match="hash chain"):
            SyncStateManager(store, verify=verify).load_checkpoint(ids[-1])
        assert not SyncStateManager(store).verify_audit("agent-1").ok


# --- concurrency ----------------------------------------------------------------------------
class TestConcurrency:
    def test_threads_saving_different_agents(self, manager):
        errors: list[BaseException] = []

        def run(agent_id: str) -> None:
            try:
                agent = make_agent(manager, agent_id)
                for n in range(15):
                    step(agent, n)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for i in range(6):
            assert len(manager.load_latest(f"t{i}").approval_history) == 15

    def test_racing_threads_on_one_parent_one_wins(self, manager):
        agent = make_agent(manager)
        step(agent, 0)
        states = [agent._capture_state() for _ in range(6)]
        for n, state in enumerate(states):  # each writer continues differently
            state.approval_history = [*state.approval_history,
                                      make_approval_record("Bash", True, "once", {"n": n}, summary_limit=200)]
        outcomes: list[str] = []

        def save(state: AgentState) -> None:
            try:
                manager.save_checkpoint(state)
                outcomes.append("saved")
            except CheckpointConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=save, args=(s,)) for s in states]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["saved"]


# --- transfer -------------------------------------------------------------------------------
class TestTransfer:
    def test_export_import_between_backends(self, manager, tmp_path):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(5)]
        forked = manager.fork(ids[1])
        document = manager.export_agent("agent-1")
        target = SyncStateManager(open_store(f"sqlite:///{tmp_path}/copy.db"))
        assert target.import_agent(document) == "agent-1"
        for checkpoint_id in ids + [forked.checkpoint_id]:
            assert target.load_checkpoint(checkpoint_id).to_dict() == manager.load_checkpoint(checkpoint_id).to_dict()
        with pytest.raises(StorageError, match="already exists"):
            target.import_agent(document)

    def test_damaged_export_is_refused_whole(self, manager, tmp_path):
        agent = make_agent(manager)
        for n in range(3):
            step(agent, n)
        document = manager.export_agent("agent-1")
        document["records"][1][3]["approved"] = False
        target = SyncStateManager(open_store(f"sqlite:///{tmp_path}/copy.db"))
        with pytest.raises(ValueError, match="hash"):
            target.import_agent(document)
        assert target.list_agents() == []


# --- warm loads -----------------------------------------------------------------------------
class TestWarmLoads:
    """A reader that already holds part of a history reads only what is new, with the same result."""

    def test_reloads_after_other_writers_match_a_fresh_reader(self, manager, store):
        reader = SyncStateManager(store)
        writer = make_agent(SyncStateManager(store))
        for n in range(3):
            step(writer, n)
        assert len(reader.load_latest("agent-1").approval_history) == 3
        for n in range(3, 7):
            step(writer, n)
            warm = reader.load_latest("agent-1")
            assert warm.to_dict() == SyncStateManager(store).load_latest("agent-1").to_dict()
        ids = [m.checkpoint_id for m in reader.list_checkpoints("agent-1")]
        assert len(reader.load_checkpoint(ids[-1]).approval_history) == 1  # time travel after a warm load
        assert len(reader.load_latest("agent-1").approval_history) == 7

    def test_loaded_entries_cannot_corrupt_the_next_load(self, manager):
        agent = make_agent(manager)
        step(agent, 0)
        first = manager.load_latest("agent-1")
        with pytest.raises(TypeError):
            first.approval_history[0]["approved"] = False
        first.approval_history.append({"forged": True})
        assert manager.load_latest("agent-1").approval_history == agent._get_approval_history()

    def test_forks_and_damage_after_a_warm_load(self, manager, store):
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(4)]
        manager.load_latest("agent-1")
        forked = manager.fork(ids[1])
        assert len(forked.approval_history) == 2
        step(agent, 4)
        tamper_checkpoint(store, agent.last_checkpoint_id)
        with pytest.raises(CheckpointCorruptError):
            SyncStateManager(store).load_checkpoint(agent.last_checkpoint_id)


def test_automatic_retention_by_keep_last_and_max_age(store):
    manager = SyncStateManager(store, keep_last=3, max_age=3600)
    agent = make_agent(manager)
    for n in range(16):
        step(agent, n)
    assert len(manager.list_checkpoints("agent-1")) <= 4
    aged = SyncStateManager(store, max_age=0)
    step(agent, 16)
    aged.cleanup_old_checkpoints("agent-1")
    assert [m.checkpoint_id for m in aged.list_checkpoints("agent-1")] == [agent.last_checkpoint_id]
    with pytest.raises(ValueError, match="not both"):
        SyncStateManager(store, retention_count=2, keep_last=3)


# --- read-only opening ----------------------------------------------------------------------
class TestReadOnly:
    """A store opened with ``read_only=True`` serves every read and refuses every write."""

    def test_reads_work_and_every_write_is_refused(self, backend, manager, store):
        name, url = backend
        if name == "memory":
            pytest.skip("a memory store lives in one object: opening memory:// again gives a new, empty store")
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(3)]
        reader = SyncStateManager(open_store(url, read_only=True))
        assert [m.checkpoint_id for m in reader.list_checkpoints("agent-1")] == ids[::-1]
        assert reader.load_latest("agent-1").to_dict() == manager.load_latest("agent-1").to_dict()
        assert reader.verify_audit("agent-1").ok
        assert reader.export_agent("agent-1")["agent_id"] == "agent-1"
        writes = [
            lambda: reader.save_checkpoint(reader.load_latest("agent-1")),
            lambda: reader.fork(ids[0]),
            lambda: reader.delete("agent-1"),
            lambda: reader.storage.delete_checkpoints("agent-1", [ids[0]]),
            lambda: reader.storage.acquire_lease("agent-1", "w", 5.0),
            lambda: reader.storage.release_lease("agent-1", "w"),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyStoreError, match="read-only"):
                write()
        assert [m.checkpoint_id for m in manager.list_checkpoints("agent-1")] == ids[::-1]
        reader.close()

    def test_a_memory_store_opened_read_only_is_empty_and_refuses_writes(self):
        reader = SyncStateManager(open_store("memory://", read_only=True))
        assert reader.list_agents() == []
        with pytest.raises(ReadOnlyStoreError):
            make_agent(reader).save_checkpoint()

    def test_a_missing_store_is_named_and_not_created(self, backend, tmp_path):
        name, url = backend
        if name == "memory":
            pytest.skip("memory:// always exists: there is nothing that could be missing")
        if name == "postgres":
            missing = url.replace("schema=", "schema=missing_")
        else:
            missing = url.replace(str(tmp_path), str(tmp_path / "absent"))
        with pytest.raises(StoreNotFoundError, match="does not exist"):
            open_store(missing, read_only=True)
        assert not (tmp_path / "absent").exists()
        if name == "postgres":
            with pytest.raises(StoreNotFoundError):  # and the schema was not created meanwhile
                open_store(missing, read_only=True)


# --- damaged entries ------------------------------------------------------------------------
class TestDamagedEntries:
    """One unreadable checkpoint document does not hide the intact ones beside it."""

    def test_a_zero_length_checkpoint_is_skipped_and_named(self, backend, manager, store):
        name, _ = backend
        if not isinstance(store, FilesystemStorage):
            pytest.skip(f"the {name} store writes each checkpoint as rows in one transaction; only the "
                        "filesystem store keeps one document per checkpoint that a power loss can leave empty")
        agent = make_agent(manager)
        ids = [step(agent, n) for n in range(4)]
        damaged = store.base_dir / "agent-1" / "checkpoints" / f"{3:012d}.json"
        assert manager.load_checkpoint(ids[2]).step_number == 3
        damaged.write_bytes(b"")  # what a disk that lied about fsync leaves after a power loss
        fresh = SyncStateManager(open_store(store.url))
        with pytest.warns(DamagedEntryWarning, match=str(damaged)):
            listed = [m.checkpoint_id for m in fresh.list_checkpoints("agent-1")]
        assert listed == [ids[3], ids[1], ids[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedEntryWarning)
            for checkpoint_id in (ids[3], ids[1], ids[0]):
                assert fresh.load_checkpoint(checkpoint_id).checkpoint_id == checkpoint_id
            assert fresh.load_latest("agent-1").checkpoint_id == ids[3]
            assert fresh.list_agents() == ["agent-1"]
        with pytest.raises(CheckpointCorruptError, match=ids[2]):
            fresh.load_checkpoint(ids[2])
        assert [str(damaged) in line for line in fresh.storage.list_damaged("agent-1")] == [True]
        read_only = open_store(store.url, read_only=True)
        with pytest.warns(DamagedEntryWarning):
            assert len(read_only.list_rows("agent-1")) == 3


# --- the original's StorageBackend ----------------------------------------------------------
class TestStorageBackend:
    """Every store is also the original Kailash Kaizen's async ``StorageBackend``."""

    def test_save_load_list_exists_delete(self, store, manager):
        assert isinstance(store, StorageBackend)

        async def scenario() -> None:
            agent = make_agent(manager, "plug-in")
            step(agent, 0)
            state = agent._capture_state()
            state.step_number = 7
            saved = await store.save(state)
            assert saved == state.checkpoint_id
            loaded = await store.load(saved)
            assert loaded.to_dict() == state.to_dict()
            listed = await store.list_checkpoints("plug-in")
            assert [m.checkpoint_id for m in listed] == [saved, agent.last_checkpoint_id]
            assert {m.agent_id for m in await store.list_checkpoints()} == {"plug-in"}
            assert await store.exists(saved) and not await store.exists("ckpt_000000000000")
            with pytest.raises(CheckpointNotFoundError, match="ckpt_000000000000"):
                await store.load("ckpt_000000000000")
            with pytest.raises(StorageError):  # a later checkpoint builds on it
                await store.delete(saved)
            await store.delete(agent.last_checkpoint_id)
            assert not await store.exists(agent.last_checkpoint_id)
            assert (await store.load(saved)).step_number == 7

        asyncio.run(scenario())

    def test_deleting_an_agents_only_checkpoint_removes_it(self, store):
        from kaizen.core.autonomy.state import AgentState

        async def scenario() -> None:
            saved = await store.save(AgentState(agent_id="single"))
            await store.delete(saved)
            assert not await store.exists(saved)
            assert await store.list_checkpoints("single") == []
            with pytest.raises(CheckpointNotFoundError):
                await store.delete(saved)

        asyncio.run(scenario())


# --- compression ----------------------------------------------------------------------------
def test_compressed_files_round_trip_and_read_without_the_option(tmp_path):
    """``compress=True`` (the filesystem store's option) really compresses, and any store object reads it."""
    compressed = FilesystemStorage(tmp_path / "gz", compress=True)
    plain = FilesystemStorage(tmp_path / "plain")
    checkpoints = {}
    for store in (compressed, plain):
        agent = make_agent(SyncStateManager(store))
        for n in range(30):
            agent._append_conversation({"role": "user", "content": "the same long sentence again " * 20})
            step(agent, n)
        checkpoints[store] = agent.last_checkpoint_id
    documents = sorted((tmp_path / "gz" / "agent-1" / "checkpoints").iterdir())
    assert all(path.read_bytes().startswith(b"\x1f\x8b") for path in documents)
    assert gzip.decompress(documents[0].read_bytes()).startswith(b"{")

    def size(root):
        return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())

    assert size(tmp_path / "gz") < size(tmp_path / "plain") / 2
    expected = SyncStateManager(plain).load_checkpoint(checkpoints[plain]).conversation_history
    for reader in (compressed, FilesystemStorage(tmp_path / "gz"), open_store(f"file://{tmp_path}/gz",
                                                                               read_only=True)):
        loaded = SyncStateManager(reader).load_checkpoint(checkpoints[compressed])
        assert loaded.conversation_history == expected
        assert SyncStateManager(reader).verify_audit("agent-1").ok
