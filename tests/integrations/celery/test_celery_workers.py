"""Agents on real Celery workers (RabbitMQ, PostgreSQL), killed with SIGKILL at random.

What a user relies on: every queued run completes, no tool call is executed twice, and no
agent is ever run by two workers at once, however often workers die mid-run.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from celery_cluster import Cluster, broker_error
from pg import drop_schema, new_schema, require_server, store_url

pytestmark = pytest.mark.slow

RUNS = 100
DEADLINE_S = 300.0


def require_broker() -> None:
    error = broker_error()
    if error is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{error} (CI=true: the Celery tests may not be skipped; .ci/run starts RabbitMQ)")
    pytest.skip(error)


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest):
    require_server()
    require_broker()
    from celery_ledger_app import create_ledger

    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    schema = new_schema()
    url = store_url(schema)
    SyncStateManager(url).storage.list_agents()  # the store's tables exist before workers race to create them
    create_ledger(url)
    made = Cluster(store_url=url, log_dir=tmp_path, **getattr(request, "param", {}))
    yield made
    made.stop()
    try:
        made.delete_queue()
    finally:
        drop_schema(schema)


def ledger(cluster: Cluster, query: str) -> list[tuple[Any, ...]]:
    from celery_ledger_app import connect

    with connect(cluster.store_url) as conn:
        return conn.execute(query).fetchall()


def completed_agents(cluster: Cluster, agent_ids: list[str], done: set[str] | None = None) -> set[str]:
    """The agents whose latest checkpoint says their run completed (the store decides, not the ledger:
    a worker killed after the final save never reaches its post_agent_loop hook)."""
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    manager = SyncStateManager(cluster.store_url)
    done = set(done or ())
    for agent_id in agent_ids:
        if agent_id not in done:
            state = manager.load_latest(agent_id)
            if state is not None and state.status == "completed":
                done.add(agent_id)
    return done


def overlaps(cluster: Cluster, now: float) -> list[str]:
    """Pairs of intervals in which two different workers ran the same agent at once."""
    killed = {w.name: w.killed_at for w in cluster.launches}
    intervals: dict[str, list[tuple[float, float, str]]] = {}
    for agent_id, worker, started, ended in ledger(cluster, "SELECT agent_id, worker, started, ended FROM ledger_runs"):
        end = ended.timestamp() if ended is not None else (killed.get(worker) or now)
        intervals.setdefault(agent_id, []).append((started.timestamp(), end, worker))
    found = []
    for agent_id, spans in intervals.items():
        spans.sort()
        for (s1, e1, w1), (s2, e2, w2) in zip(spans, spans[1:]):
            if w1 != w2 and s2 < e1:
                found.append(f"{agent_id}: {w1} ran it until {e1:.3f} but {w2} started at {s2:.3f}")
    return found


def test_a_redelivered_duplicate_of_a_completed_run_executes_nothing(cluster: Cluster) -> None:
    cluster.start()
    cluster.enqueue(["agent-dup"], {"task": "append the steps"})
    deadline = time.monotonic() + 60
    while not completed_agents(cluster, ["agent-dup"]):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
    cluster.enqueue(["agent-dup", "agent-dup"], {"task": "append the steps"})  # duplicates, as after a redelivery
    cluster.enqueue(["agent-after"], {"task": "append the steps"})  # behind them in the queue: they are done first
    while not completed_agents(cluster, ["agent-after"]):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
    calls = ledger(cluster, "SELECT call_id FROM ledger_calls WHERE agent_id = 'agent-dup' ORDER BY call_id")
    assert [c for (c,) in calls] == ["call_1", "call_2", "call_3"]
    assert len(ledger(cluster, "SELECT 1 FROM ledger_runs WHERE agent_id = 'agent-dup'")) == 1


def test_a_worker_killed_mid_run_is_resumed_where_its_checkpoints_say(cluster: Cluster) -> None:
    cluster.tool_sleep = 0.5  # slow calls: the kill lands inside the run
    victim = cluster.start()
    cluster.enqueue(["agent-k"], {"task": "append the steps"})
    deadline = time.monotonic() + 60
    while not ledger(cluster, "SELECT 1 FROM ledger_calls WHERE agent_id = 'agent-k' AND ended IS NOT NULL"):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.05)
    cluster.kill(victim)
    cluster.start()
    while not completed_agents(cluster, ["agent-k"]):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
    calls = [c for (c,) in ledger(cluster, "SELECT call_id FROM ledger_calls WHERE agent_id = 'agent-k'")]
    assert len(calls) == len(set(calls)), calls
    assert "call_3" in calls and "call_1" in calls  # done before the kill, and after the resume
    assert not overlaps(cluster, time.time())


@pytest.mark.parametrize("cluster", [{"tool_sleep": 0.05, "ttl": 3.0}], indirect=True)
def test_four_workers_killed_at_random_run_every_agent_once(cluster: Cluster) -> None:
    rng = random.Random(os.environ.get("KAIZEN_TEST_SEED", "celery"))
    pools = ["solo", "solo", "prefork", "prefork"]  # prefork: the child runs the task, the parent holds the message
    slots = [cluster.start(pool) for pool in pools]
    agent_ids = [f"agent-{i:03d}" for i in range(RUNS)]
    cluster.enqueue(agent_ids, {"task": "append the steps"})
    kills = 0
    started = time.monotonic()
    done: set[str] = set()
    while len(done := completed_agents(cluster, agent_ids, done)) < RUNS:
        assert time.monotonic() - started < DEADLINE_S, f"{len(done)}/{RUNS} runs completed\n{cluster.logs()}"
        time.sleep(rng.uniform(0.3, 1.0))
        running = {w for (w,) in ledger(cluster, "SELECT worker FROM ledger_runs WHERE ended IS NULL")}
        busy = [i for i, w in enumerate(slots) if w.name in running]  # kill a worker inside a run
        if kills < 12 and len(done) < RUNS - 5 and busy:
            slot = rng.choice(busy)
            cluster.kill(slots[slot])
            kills += 1
            slots[slot] = cluster.start(pools[slot])
    cluster.stop()

    assert kills >= 3
    duplicates = ledger(cluster, "SELECT agent_id, call_id, count(*) FROM ledger_calls "
                                 "GROUP BY agent_id, call_id HAVING count(*) > 1")
    assert duplicates == []
    assert overlaps(cluster, time.time()) == []
    # Every executed call has its durable record: a call killed before its result was saved is
    # reported to the model as interrupted, never re-run; so each agent's ledger is a prefix-free set.
    per_agent = ledger(cluster, "SELECT agent_id, count(*) FROM ledger_calls GROUP BY agent_id")
    assert all(count <= 3 for _, count in per_agent)
    resumed = ledger(cluster, "SELECT agent_id FROM ledger_runs GROUP BY agent_id HAVING count(DISTINCT worker) > 1")
    assert resumed, "no kill landed mid-run: the test did not exercise a takeover"
    print(f"{RUNS} runs in {time.monotonic() - started:.1f} s, {kills} workers killed, {len(cluster.launches)} launches, "
          f"{len(resumed)} runs taken over by another worker, "
          f"{sum(count for _, count in per_agent)} tool calls executed, at "
          f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}")
