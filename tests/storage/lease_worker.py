"""A worker that races others for interrupted agents: claims each one's lease, resumes it if
it is still interrupted, and prints "RESUMED <agent>" for every run it completed.

Usage: python lease_worker.py STORE_URL WORKER_ID AGENT_ID [AGENT_ID ...]
"""

from __future__ import annotations

import sys

from kaizen.agents.autonomous.base import AutonomousConfig, BaseAutonomousAgent
from kaizen.core.autonomy.state.errors import LeaseHeldError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers import ScriptedProvider


def main() -> int:
    url, worker, agents = sys.argv[1], sys.argv[2], sys.argv[3:]
    manager = SyncStateManager(url)
    config = AutonomousConfig(llm_provider="scripted", model="m", storage=url)
    for agent_id in agents:
        try:
            with manager.claim(agent_id, worker, ttl=10):
                state = manager.load_latest(agent_id)
                if state.metadata.get("run", {}).get("status") != "running":
                    continue  # someone else already finished it
                agent = BaseAutonomousAgent(config, agent_id=agent_id, state_manager=manager,
                                            provider=ScriptedProvider([f"done by {worker}"]))
                result = agent.run(resume=True)
                print(f"RESUMED {agent_id} {result.status}", flush=True)
        except LeaseHeldError:
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
