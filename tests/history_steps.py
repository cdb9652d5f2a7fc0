"""A few agent steps saved through a manager: the history most store and manager tests start from."""

from __future__ import annotations

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def run_steps(manager: SyncStateManager, agent_id: str, n: int, start: int = 0) -> BaseAutonomousAgent:
    """Resume ``agent_id`` (or start it) and save ``n`` steps, each adding one approval record."""
    agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    if manager.load_latest(agent_id) is not None:
        agent.resume()
    for i in range(start, start + n):
        agent.record_approval("Bash", True, "once", {"i": i})
        agent.save_checkpoint()
    return agent
