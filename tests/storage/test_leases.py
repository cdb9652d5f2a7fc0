"""Leases: one worker per agent, expiring claims, and many workers racing for interrupted agents."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaizen.agents.autonomous.base import AutonomousConfig, BaseAutonomousAgent
from kaizen.agents.autonomous.loop import AgentLoop
from kaizen.core.autonomy.state.errors import LeaseHeldError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers import ScriptedProvider

WORKER = Path(__file__).with_name("lease_worker.py")
SHARED = ["sqlite", "filesystem", "postgres"]


def test_second_worker_is_told_who_holds_it(manager):
    with manager.claim("agent-1", "worker-a", ttl=30):
        with pytest.raises(LeaseHeldError, match="held by worker-a until"):
            manager.claim("agent-1", "worker-b", ttl=30)
        again = manager.claim("agent-1", "worker-a", ttl=30, keepalive=False)  # renewal by the holder
        assert again.worker_id == "worker-a"
    with manager.claim("agent-1", "worker-b", ttl=30) as lease:  # released: free again
        assert lease.worker_id == "worker-b"


def test_crashed_workers_lease_expires(manager):
    manager.claim("agent-1", "crashed", ttl=0.3, keepalive=False)  # never released, never renewed
    with pytest.raises(LeaseHeldError):
        manager.claim("agent-1", "survivor", ttl=5)
    time.sleep(0.45)
    with manager.claim("agent-1", "survivor", ttl=5) as lease:
        assert lease.worker_id == "survivor"


def test_keepalive_renews_past_the_ttl(manager):
    with manager.claim("agent-1", "busy", ttl=1.0) as lease:
        time.sleep(2.2)  # more than twice the ttl: only renewals keep it
        assert lease.lost is None
        with pytest.raises(LeaseHeldError):
            manager.claim("agent-1", "other", ttl=5)


def test_run_holds_the_lease_while_running(manager):
    config = AutonomousConfig(llm_provider="scripted", model="m", worker_id="runner", lease_ttl=5)
    seen = []

    agent = BaseAutonomousAgent(config, agent_id="leased", state_manager=manager, provider=ScriptedProvider(["ok"]))
    agent.hooks.register("pre_cycle", lambda ctx: seen.append(_held_by_other(manager, "leased")))
    assert agent.run().status == "completed"
    assert seen == [True]
    with manager.claim("leased", "someone-else", ttl=5):  # released at the end of the run
        pass


def _held_by_other(manager, agent_id):
    try:
        manager.claim(agent_id, "intruder", ttl=5, keepalive=False)
    except LeaseHeldError:
        return True
    return False


def _interrupted_agents(url: str, count: int) -> list[str]:
    """Agents whose runs started and were checkpointed, then the process went away."""
    manager = SyncStateManager(url)
    ids = []
    for i in range(count):
        agent = BaseAutonomousAgent(AutonomousConfig(llm_provider="scripted", model="m"), agent_id=f"job-{i}",
                                    state_manager=manager, provider=ScriptedProvider(["unused"]))
        AgentLoop(agent).start({"task": f"job {i}"})
        agent.save_checkpoint()
        ids.append(agent.agent_id)
    manager.close()
    return ids


HOLD_LEASE = """
import sys, time
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
SyncStateManager(sys.argv[1]).claim("held", ttl=60, keepalive=False)  # this process's default worker id
print("HELD", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_a_killed_workers_lease_is_taken_at_once_a_live_ones_never(backend):
    """kill -9 leaves the lease behind for its whole TTL; a process on this host that no longer
    exists cannot be running the agent, so its lease is taken over without waiting."""
    _, url = backend
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LEASE, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "HELD"
        with pytest.raises(LeaseHeldError, match=f":{holder.pid}@"):  # alive: refused
            SyncStateManager(url).claim("held", ttl=5)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    started = time.monotonic()
    with SyncStateManager(url).claim("held", "survivor", ttl=5) as lease:  # dead: taken, no 60 s wait
        assert lease.worker_id == "survivor"
    assert time.monotonic() - started < 30


def test_leases_of_other_hosts_and_custom_ids_are_never_taken_early(manager):
    manager.claim("agent-1", "elsewhere.example:1@2026-01-01T00:00:00Z", ttl=30, keepalive=False)
    manager.claim("agent-2", "my-custom-worker", ttl=30, keepalive=False)
    for agent_id in ("agent-1", "agent-2"):
        with pytest.raises(LeaseHeldError):
            manager.claim(agent_id, "survivor", ttl=5)


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_workers_racing_for_interrupted_agents_resume_each_once(backend):
    _, url = backend
    agents = _interrupted_agents(url, 12)
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), url, f"worker-{w}", *agents[w % 3:], *agents[: w % 3]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(5)
    ]
    resumed: list[str] = []
    for proc in workers:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        resumed += [line.split()[1] for line in out.splitlines() if line.startswith("RESUMED ")]
    assert sorted(resumed) == sorted(agents), "every interrupted agent resumed exactly once"
    manager = SyncStateManager(url)
    for agent_id in agents:
        state = manager.load_latest(agent_id)
        assert state.metadata["run"]["status"] == "completed"
