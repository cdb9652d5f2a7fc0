"""A writer process for crash and concurrency tests: saves steps of one agent until told to stop.

Usage: python store_worker.py STORE_URL AGENT_ID STEPS [--resume]
Prints "ACK <checkpoint_id> <step>" after each save returns (flushed), so the parent
knows exactly which checkpoints were acknowledged before it killed us.
"""

from __future__ import annotations

import sys

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.errors import CheckpointConflictError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def main() -> int:
    url, agent_id, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    manager = SyncStateManager(url)
    if "--resume" in sys.argv and manager.load_latest(agent_id) is not None:
        agent = BaseAutonomousAgent.resume(agent_id, state_manager=manager)
    else:
        agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    conflicts = 0
    for n in range(steps):
        agent.record_approval("Bash", True, "once", {"command": f"echo {n}", "pad": "x" * 200})
        agent.record_tool_usage("Bash")
        agent.update_workflow_state(current_node=f"node-{agent.step_number}")
        agent.step_number += 1
        try:
            checkpoint_id = agent.save_checkpoint()
        except CheckpointConflictError:
            conflicts += 1
            agent = BaseAutonomousAgent.resume(agent_id, state_manager=manager)
            continue
        print(f"ACK {checkpoint_id} {agent.step_number}", flush=True)
    print(f"DONE conflicts={conflicts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
