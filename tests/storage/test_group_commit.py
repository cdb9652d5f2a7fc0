"""Group commit on the SQL stores: saves arriving together share one transaction, each caller gets
its own outcome, and kill -9 during batches loses no acknowledged save and leaves no half batch."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kaizen.core.autonomy.state.errors import CheckpointConflictError, StorageError
from kaizen.core.autonomy.state.manager import StateManager
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.storage import STREAMS, open_store
from kaizen.core.autonomy.state.storage.base import CheckpointStore, SavePlan
from kaizen.core.autonomy.state.storage.rows import plan_save
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import AgentState

WORKER = Path(__file__).with_name("group_commit_worker.py")
SQL_STORES = ["sqlite", "postgres"]


@contextmanager
def writes_blocked(url: str) -> Iterator[None]:
    """Hold the database's write lock from outside the store, so saves queue up behind it."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        import psycopg

        from tests.pg import DSN

        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(DSN) as conn:
            conn.execute(f'LOCK TABLE "{schema}".lineages IN EXCLUSIVE MODE')
            try:
                yield
            finally:
                conn.rollback()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def first_saves(url: str, agents: int) -> list[tuple[CheckpointStore, SyncStateManager, AgentState]]:
    """Agents with one checkpoint each, every one on its own store object (as agents opening a URL)."""
    made = []
    for n in range(agents):
        manager = SyncStateManager(url)
        state = AgentState(agent_id=f"agent-{n}", step_number=1)
        manager.save_checkpoint(state)
        made.append((manager.storage, manager, state))
    return made


def second_saves(made: list[tuple[CheckpointStore, SyncStateManager, AgentState]]) -> list[tuple[CheckpointStore, Any]]:
    """(store, plan) of each agent's second save, on top of its first checkpoint."""
    plans = []
    for store, _, state in made:
        parent = store.latest_checkpoint(state.agent_id)
        plans.append((store, plan_save(next_state(state, 2), parent, parent.lineage_id)))
    return plans


def next_state(state: AgentState, step: int, **fields: Any) -> AgentState:
    return AgentState(agent_id=state.agent_id, step_number=step, **fields,
                      approval_history=[*state.approval_history,
                                        make_approval_record("Bash", True, "once", {"step": step},
                                                             summary_limit=200)])


def write_together(url: str, writes: list[tuple[CheckpointStore, SavePlan]]) -> list[BaseException | None]:
    """Start every write while the database is locked, wait until all but the first (which leads,
    blocked on the lock) are queued, then let them go: they commit as two batches."""
    committer = writes[0][0].committer  # type: ignore[attr-defined]
    outcomes: list[BaseException | None] = [None] * len(writes)

    def write(index: int) -> None:
        store, plan = writes[index]
        try:
            store.write(plan)
        except BaseException as exc:  # noqa: BLE001 - the test inspects each caller's own outcome
            outcomes[index] = exc

    before = committer.batches
    with writes_blocked(url):
        threads = [threading.Thread(target=write, args=(i,)) for i in range(len(writes))]
        threads[0].start()
        wait_for(lambda: committer.leading and committer.queued() == 0, "the first save to lead")
        time.sleep(0.1)  # it is now blocked on the lock
        for thread in threads[1:]:
            thread.start()
        wait_for(lambda: committer.queued() == len(writes) - 1, "the other saves to queue")
    for thread in threads:
        thread.join(60)
    assert committer.batches - before == 2, "the queued saves did not share one batch"
    return outcomes


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_saves_that_arrive_together_commit_together(backend):
    _, url = backend
    made = first_saves(url, 12)
    plans = second_saves(made)
    outcomes = write_together(url, plans)
    assert outcomes == [None] * len(plans)
    reader = SyncStateManager(url)
    for _, _, state in made:
        latest = reader.load_latest(state.agent_id)
        assert latest.step_number == 2 and len(latest.approval_history) == 1
        assert reader.verify_audit(state.agent_id).ok


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_one_agents_failure_in_a_batch_fails_only_that_caller(backend):
    """A stale parent (conflict) and a duplicate checkpoint id (an error that fails the whole
    statement) in the same batch as healthy saves: those two callers get their own errors, naming
    their own checkpoints; everyone else's save commits."""
    _, url = backend
    made = first_saves(url, 8)
    writes = second_saves(made)
    # agent-0 continues from its first checkpoint a second time: that parent is stale once
    # writes[0] committed (it leads the first batch)
    store0, _, state0 = made[0]
    first = store0.latest_checkpoint(state0.agent_id)
    stale = plan_save(next_state(state0, 3), first, first.lineage_id)
    # agent-1's second save reuses agent-2's first checkpoint id: a duplicate row
    store1, _, state1 = made[1]
    parent1 = store1.latest_checkpoint(state1.agent_id)
    taken = store1.latest_checkpoint("agent-2").checkpoint_id
    duplicate = plan_save(next_state(state1, 2, checkpoint_id=taken),
                          parent1, parent1.lineage_id)
    writes = [writes[0], (store0, stale), (store1, duplicate)] + writes[2:]
    outcomes = write_together(url, writes)
    assert isinstance(outcomes[1], CheckpointConflictError)
    assert outcomes[1].expected_parent == first.checkpoint_id
    assert outcomes[1].actual_head == writes[0][1].row.checkpoint_id
    assert isinstance(outcomes[2], StorageError) and taken in str(outcomes[2])
    assert [o for i, o in enumerate(outcomes) if i not in (1, 2)] == [None] * (len(writes) - 2)
    reader = SyncStateManager(url)
    assert reader.load_latest("agent-0").checkpoint_id == writes[0][1].row.checkpoint_id
    assert reader.load_latest("agent-1").step_number == 1  # its failed save left nothing
    assert len(reader.list_checkpoints("agent-1")) == 1
    for n in range(2, 8):
        assert reader.load_latest(f"agent-{n}").step_number == 2


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_async_managers_share_the_group_commit(backend):
    """Agents on asyncio (``StateManager``, whose calls run on worker threads) batch as threads do."""
    _, url = backend
    made = first_saves(url, 4)
    committer = made[0][0].committer  # type: ignore[attr-defined]

    async def save_all() -> list[str]:
        managers = [StateManager(url, retention_count=None) for _ in made]
        return await asyncio.gather(*(m.save_checkpoint(next_state(state, 2)) for m, (_, _, state)
                                      in zip(managers, made)))

    before = committer.saves
    with writes_blocked(url):
        result: list[Any] = []
        runner = threading.Thread(target=lambda: result.append(asyncio.run(save_all())))
        runner.start()
        wait_for(lambda: committer.queued() == len(made) - 1, "the async saves to queue")
    runner.join(60)
    assert len(result[0]) == len(made)
    assert committer.saves - before == len(made)
    for _, _, state in made:
        assert SyncStateManager(url).load_latest(state.agent_id).step_number == 2


def check_intact(url: str, agents: int, acked: dict[str, list[tuple[str, int]]]) -> None:
    """Every acknowledged save (of this trial) is there and verifies; every chain is whole; no row
    beyond a head."""
    manager = SyncStateManager(url)
    store = manager.storage
    for n in range(agents):
        agent_id = f"agent-{n}"
        latest = manager.load_latest(agent_id)
        mine = acked.get(agent_id, [])
        if not mine:
            continue
        assert latest is not None, f"{agent_id}: every checkpoint lost"
        assert latest.step_number >= mine[-1][1], f"{agent_id}: acknowledged step {mine[-1][1]} lost"
        for checkpoint_id, step in mine:
            assert manager.load_checkpoint(checkpoint_id).step_number == step
        assert len(latest.approval_history) == latest.step_number
        assert manager.verify_audit(agent_id).ok
        for lineage in store.list_lineages(agent_id):  # no records or rows past the head: no half batch
            head = store.read_checkpoint(lineage.head_checkpoint_id)
            assert head.checkpoint_id == store.list_rows(agent_id, limit=1)[0].checkpoint_id
            for stream in STREAMS:
                assert len(store.read_records(lineage.lineage_id, stream, 0, 1 << 30)) == head.heads[stream].count
    manager.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_kill_9_during_batches_loses_no_acknowledged_save(backend):
    _, url = backend
    agents = 16
    open_store(url).setup()
    rng = random.Random(int(os.environ.get("KAIZEN_CRASH_SEED", "11")))
    trials = int(os.environ.get("KAIZEN_CRASH_TRIALS", "4"))
    grouped = saves = 0
    for trial in range(trials):
        proc = subprocess.Popen([sys.executable, str(WORKER), url, str(agents)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        deadline = time.monotonic() + 2.0 + rng.uniform(0.3, 1.5)
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
        lines += rest.splitlines()
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
        stats = [line.split() for line in lines if line.startswith("STATS ")]
        if stats and int(stats[-1][2]) > int(stats[-1][1]):
            grouped += 1
        acked: dict[str, list[tuple[str, int]]] = {}
        for line in lines:
            if line.startswith("ACK "):
                _, agent_id, checkpoint_id, step = line.split()
                acked.setdefault(agent_id, []).append((checkpoint_id, int(step)))
        check_intact(url, agents, acked)
        saves += sum(len(mine) for mine in acked.values())
    assert saves > agents * trials, "too few saves to test anything"
    assert grouped > 0, "no trial grouped saves into batches"


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_a_store_dropped_without_close_gives_back_its_committer(backend):
    """A service that opens a store per request and never closes it must not keep one connection
    per database forever: the committer goes with the last store that uses it."""
    import gc
    import weakref

    _, url = backend
    store = open_store(url)
    store.setup()
    SyncStateManager(store).save_checkpoint(AgentState(agent_id="dropped"))
    committer = weakref.ref(store.committer)
    del store
    gc.collect()
    assert committer() is None
    again = open_store(url)  # a later store on the same database gets a working committer of its own
    SyncStateManager(again).save_checkpoint(AgentState(agent_id="again"))
    assert SyncStateManager(again).load_latest("dropped") is not None
    again.close()


@pytest.mark.slow
def test_many_dropped_postgres_stores_do_not_use_up_the_servers_connections():
    """More stores than the server takes connections (max_connections), each on its own schema,
    each saved to and dropped without close: every one of them still saves."""
    import gc

    from pg import drop_schema, new_schema, require_server, store_url

    require_server()
    import psycopg

    with psycopg.connect(os.environ.get("KAIZEN_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")) as conn:
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])
    schemas = [new_schema() for _ in range(limit + 10)]
    try:
        for number, schema in enumerate(schemas):
            store = open_store(store_url(schema))
            store.setup()
            SyncStateManager(store).save_checkpoint(AgentState(agent_id=f"agent-{number}"))
            del store
            gc.collect()
    finally:
        for schema in schemas:
            drop_schema(schema)
